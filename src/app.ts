import compress from '@fastify/compress';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import { RequestMethod } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { cleanupOpenApiDoc } from 'nestjs-zod';
import { LogController } from 'fastify';
import type { DestinationStream } from 'pino';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { AppModule } from './app.module';
import { requestContext } from './common/context/request-context';
import { AppConfig } from './infra/config/config';
import { RedisIoAdapter } from './infra/realtime/redis-io.adapter';
import { REDIS, RedisClient } from './infra/redis/redis.module';
import { instrumentHttp } from './infra/observability/http-metrics';
import { installAsyncResourceBind } from './infra/runtime/async-resource-bind';
import { EnvelopeFastifyAdapter } from './common/http/envelope';
import { frameworkErrorHandler } from './common/http/framework-errors';
import { helmetDefaultHeaders } from './common/http/security-headers';
import { registerLivePage } from './common/http/live-page';
import { installRouteRateLimits } from './common/rate-limit/route-rate-limits';
import { FallbackRateLimitCounter, RATE_LIMIT_REDIS_RETRY_MS } from './common/rate-limit/rate-limit-store';
import { createPino, lazyRequestLogger, PinoLoggerService } from './infra/observability/logger';
import { logSafeUrl } from './infra/observability/log-safe-url';
import { installBullBoard } from './infra/queue/bull-board';

export const API_PREFIX = 'api/v1';

/** Routes whose attempts are limited per client address (one budget for all of them). */
const AUTH_ROUTES = ['register', 'login', 'code-login'].map((r) => `POST /${API_PREFIX}/auth/${r}`);
/** Routes whose attempts are also limited per phone number of the body. */
const PHONE_LOGIN_ROUTES = [`POST /${API_PREFIX}/auth/login`];
/** Routes whose attempts are also limited per access code of the body. */
const CODE_LOGIN_ROUTES = [`POST /${API_PREFIX}/auth/code-login`];
/** Methods whose request body Fastify never reads (nothing for the request decompression to do). */
const BODILESS_METHODS = new Set(['GET', 'HEAD']);
/** A client-sent X-Request-Id is echoed when it looks like an id; anything else gets a fresh one. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Builds the whole service (not yet listening): used by main.ts and by the e2e tests. */
export async function createApp(
  config: AppConfig,
  opts: {
    logDestination?: DestinationStream;
    /** Processes of this node's cluster (main.ts): more than one takes Socket.IO clients over websocket only. */
    clusterWorkers?: number;
  } = {},
): Promise<NestFastifyApplication> {
  installAsyncResourceBind();
  const pino = createPino(config.logLevel, opts.logDestination);
  const adapter = new EnvelopeFastifyAdapter({
    loggerInstance: pino,
    // No log line per request: the ping hot path would drown the logs.
    logController: new LogController({ disableRequestLogging: true }),
    // A request's child logger is made only if the request logs (see lazyRequestLogger).
    childLoggerFactory: lazyRequestLogger,
    // No Nest middleware is used (hooks and guards do that work): no middie pass on every request.
    skipMiddie: true,
    bodyLimit: config.bodyLimitBytes,
    // Fastify's default (100) answers a longer path parameter with its own 414: a long `/q/<code>`
    // must be the public tag page's 404 like any other unknown code.
    routerOptions: { maxParamLength: 2048 },
    // The router's own refusals (a path that is not valid UTF-8, a parameter over that length) in the envelope.
    frameworkErrors: frameworkErrorHandler,
    // Only the configured proxies may name the client (X-Forwarded-For); by default the peer is the client.
    trustProxy: config.trustProxy,
    forceCloseConnections: 'idle',
    requestIdHeader: false,
    genReqId: (req: IncomingMessage) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    logger: new PinoLoggerService(pino),
    bufferLogs: false,
  });
  // Socket.IO on the same server and port, nodes joined through Redis.
  app.useWebSocketAdapter(new RedisIoAdapter(app, config, (opts.clusterWorkers ?? 1) > 1));
  const fastify = app.getHttpAdapter().getInstance();
  // Before any route is declared: each route's latency series is bound as it is.
  instrumentHttp(fastify);

  // Everything that serves this request, to the last log line, sees its context.
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.header('X-Request-Id', request.id);
    requestContext.run({ requestId: String(request.id), wrote: false, pinnedToPrimary: false }, done);
  });
  // While closing, answer the requests in flight with `Connection: close`, so
  // keep-alive sockets end with their last response instead of holding the
  // shutdown open until they time out.
  let closing = false;
  fastify.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) void reply.header('connection', 'close');
    done(null, payload);
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    if (reply.statusCode >= 500)
      pino.warn({ reqId: request.id, status: reply.statusCode, url: logSafeUrl(request.url) }, 'request failed');
    done();
  });

  // A request without a body has nothing to decompress: routes of those methods get no decompression hooks
  // (an onRoute hook added before the plugin's own runs first).
  fastify.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (methods.every((m) => BODILESS_METHODS.has(m.toUpperCase()))) route.decompress = false;
  });
  await app.register(compress, { threshold: 1024, encodings: ['br', 'gzip', 'deflate'] });
  // Helmet's defaults: its CSP (scripts from 'self' only) fits /docs, whose Swagger UI loads every script from a file.
  // Worked out once (see helmetDefaultHeaders) and set on every reply as it starts.
  const securityHeaders = await helmetDefaultHeaders();
  fastify.addHook('onRequest', (_request, reply, done) => {
    void reply.headers(securityHeaders);
    done();
  });
  // Attachments: one file part, streamed (never buffered). The part is cut one byte past the limit, so the
  // upload's own byte count sees it is too large and answers 413 with nothing stored.
  await app.register(multipart, {
    limits: { files: 1, fields: 0, parts: 1, fileSize: config.chatAttachmentMaxBytes + 1 },
  });
  if (config.corsOrigins.length > 0) app.enableCors({ origin: config.corsOrigins, credentials: false });
  // Password and code guessing is throttled per client address, per phone and per code, counted in
  // Redis so the limits hold across nodes, and in memory while Redis is down.
  const rateLimitCounter = new FallbackRateLimitCounter(app.get<RedisClient>(REDIS), {
    namespace: 'rate-limit:',
    localMaxKeys: config.rateLimitFallbackMaxKeys,
    retryMs: RATE_LIMIT_REDIS_RETRY_MS,
  });
  await app.register(rateLimit, { global: false, store: rateLimitCounter.asStore() });
  installRouteRateLimits(fastify, [
    { name: 'auth-address', perMinute: config.authRateLimitPerMinute, routes: AUTH_ROUTES, by: 'address' },
    { name: 'auth-phone', perMinute: config.authRateLimitPerPhonePerMinute, routes: PHONE_LOGIN_ROUTES, by: 'phone' },
    { name: 'qr-public', perMinute: config.qrPublicRateLimitPerMinute, routes: ['GET /q/:code'], by: 'address' },
    { name: 'auth-code', perMinute: config.authRateLimitPerCodePerMinute, routes: CODE_LOGIN_ROUTES, by: 'code' },
  ]);
  // Per-user limits (pings per driver, reads per user) are counted by the auth guard (UserRateLimits); test sends
  // per org by the webhooks service, once the caller may manage the org's webhooks.
  // Bull Board at /admin/queues behind ADMIN_TOKEN (not mounted without it).
  await installBullBoard(fastify, app, config.adminToken);
  app.setGlobalPrefix(API_PREFIX, {
    exclude: [
      { path: 'health/live', method: RequestMethod.GET },
      { path: 'health/ready', method: RequestMethod.GET },
      { path: 'metrics', method: RequestMethod.GET },
      // The page a printed QR opens: its URL is PUBLIC_BASE_URL/q/<code>.
      { path: 'q/:code', method: RequestMethod.GET },
    ],
  });

  const doc = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Waybill API')
      .setDescription(
        'Real-time logistics tracking: trips, GPS ingest, ledger, QR tags, chat. Envelope: {success, data, meta?} / {success:false, error:{code, message, details?}}.',
      )
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
  // The live map (`/live`), outside the API prefix like /docs.
  await registerLivePage(fastify);
  SwaggerModule.setup('docs', app, cleanupOpenApiDoc(doc), {
    useGlobalPrefix: false,
    jsonDocumentUrl: 'docs/openapi.json',
  });

  app.enableShutdownHooks();
  return app;
}
