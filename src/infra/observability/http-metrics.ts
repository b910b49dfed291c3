import type { FastifyInstance, FastifyReply, FastifyRequest, onResponseHookHandler, RouteOptions } from 'fastify';
import { Histogram } from 'prom-client';
import { httpRequestDuration } from './metrics';

/** The route label of requests that matched no route (404s, 405s, bad URLs): never the raw URL. */
export const UNMATCHED_ROUTE = 'unmatched';

type Child = Histogram.Internal<'method' | 'route' | 'status_code'>;

/**
 * The latency series of one route pattern, bound per method and status code
 * on first use, so that the hot path only looks up a number in a small map
 * and observes.
 */
class RouteSeries {
  private readonly byMethod = new Map<string, Map<number, Child>>();
  constructor(private readonly route: string) {}

  observe(method: string, status: number, seconds: number): void {
    let byStatus = this.byMethod.get(method);
    if (!byStatus) this.byMethod.set(method, (byStatus = new Map()));
    let child = byStatus.get(status);
    if (!child) byStatus.set(status, (child = httpRequestDuration.labels(method, this.route, String(status))));
    child.observe(seconds);
  }
}

function record(series: RouteSeries, request: FastifyRequest, reply: FastifyReply): void {
  // elapsedTime: ms from the start of routing to the end of the response, on the monotonic clock.
  series.observe(request.method, reply.statusCode, reply.elapsedTime / 1000);
}

/**
 * Records `waybill_http_request_duration_seconds` for every request. Each route
 * gets its own onResponse hook holding its pattern (`/api/v1/trips/:tripId`),
 * added as the route is declared, so a request never builds `routeOptions`
 * to find it; requests that matched no route are caught by one global hook.
 * Call before any route is declared (Nest declares its routes at init).
 */
export function instrumentHttp(fastify: FastifyInstance): void {
  fastify.addHook('onRoute', (route: RouteOptions) => {
    const series = new RouteSeries(route.url || '/');
    const hook: onResponseHookHandler = (request, reply, done) => {
      record(series, request, reply);
      done();
    };
    // A new array, never a push: Fastify copies the options of a GET for its HEAD twin
    // before this hook runs, and the twin gets its own call here.
    const existing = route.onResponse;
    route.onResponse = existing ? [...(Array.isArray(existing) ? existing : [existing]), hook] : [hook];
  });

  const unmatched = new RouteSeries(UNMATCHED_ROUTE);
  fastify.addHook('onResponse', (request, reply, done) => {
    if (request.is404) record(unmatched, request, reply);
    done();
  });
}
