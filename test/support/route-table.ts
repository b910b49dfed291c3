import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import { ModulesContainer } from '@nestjs/core';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ZodType } from 'zod';
import { IS_PUBLIC } from '../../src/common/auth/decorators';

/** One route of the running app, as Nest declared it and Fastify serves it. */
export interface RouteInfo {
  method: string;
  /** The path Fastify serves, e.g. `/api/v1/trips/:tripId` or `/q/:code`. */
  url: string;
  /** `Controller.method`, for messages. */
  handler: string;
  isPublic: boolean;
  /** Path parameter names, in order. */
  params: string[];
  /** The zod schemas of the handler's `@Param()`, `@Query()` and `@Body()` DTOs, when typed with one. */
  paramSchema?: ZodType;
  querySchema?: ZodType;
  bodySchema?: ZodType;
  /** The handler reads the raw request (`@Req()`): its input has no DTO (OsmAnd, multipart uploads). */
  readsRequest: boolean;
  /** The handler takes a body or query without a DTO (`@Body() body: unknown`). */
  untypedInput: boolean;
}

/** Records every route Fastify registers: install before `listen` (see startTestApp's `beforeListen`). */
export function recordFastifyRoutes(app: NestFastifyApplication): Set<string> {
  const seen = new Set<string>();
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const m of methods) if (m !== 'HEAD' && m !== 'OPTIONS') seen.add(`${m} ${route.url}`);
    });
  return seen;
}

const joinPath = (...parts: (string | undefined)[]) =>
  '/' +
  parts
    .flatMap((p) => (p ?? '').split('/'))
    .filter(Boolean)
    .join('/');

const schemaOf = (type: unknown): ZodType | undefined => {
  const s = (type as { schema?: unknown } | undefined)?.schema;
  return s && typeof (s as ZodType).safeParse === 'function' ? (s as ZodType) : undefined;
};

/**
 * Every controller route of the app, read from Nest's metadata (path, method,
 * `@Public()`, the DTO classes of `@Param`/`@Query`/`@Body`: `createZodDto`
 * classes expose `.schema`), matched to the URL Fastify serves (with or without
 * the global prefix). `served` is what `recordFastifyRoutes` saw; a served route
 * under `/api/v1` that no controller declares is an error, so nothing escapes
 * the sweeps.
 */
export function routeTable(app: NestFastifyApplication, served: Set<string>, prefix = '/api/v1'): RouteInfo[] {
  const routes: RouteInfo[] = [];
  const matched = new Set<string>();
  for (const mod of app.get(ModulesContainer).values()) {
    for (const wrapper of mod.controllers.values()) {
      const ctrl = wrapper.metatype as (new (...args: unknown[]) => unknown) | null;
      if (!ctrl) continue;
      const base = Reflect.getMetadata(PATH_METADATA, ctrl) as string | string[] | undefined;
      const proto = ctrl.prototype as Record<string, unknown>;
      for (const name of Object.getOwnPropertyNames(proto)) {
        if (name === 'constructor') continue;
        const fn = proto[name];
        if (typeof fn !== 'function') continue;
        const sub = Reflect.getMetadata(PATH_METADATA, fn) as string | string[] | undefined;
        if (sub === undefined) continue;
        const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, fn) as number];
        const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, ctrl, name) ?? {}) as Record<string, { index: number }>;
        const types = (Reflect.getMetadata('design:paramtypes', proto, name) ?? []) as unknown[];
        const argOf = (kind: RouteParamtypes) =>
          Object.entries(args).find(([key]) => key.split(':')[0] === String(kind))?.[1];
        const dto = (kind: RouteParamtypes) => {
          const a = argOf(kind);
          return a ? schemaOf(types[a.index]) : undefined;
        };
        const isPublic = Boolean(Reflect.getMetadata(IS_PUBLIC, fn) ?? Reflect.getMetadata(IS_PUBLIC, ctrl));
        const body = argOf(RouteParamtypes.BODY);
        const query = argOf(RouteParamtypes.QUERY);
        for (const b of [base].flat()) {
          for (const s of [sub].flat()) {
            const path = joinPath(b, s);
            const candidates = [joinPath(prefix, path), path];
            const url = candidates.find((c) => served.has(`${method} ${c}`));
            if (!url) throw new Error(`${ctrl.name}.${name}: ${method} ${path} is not served by Fastify`);
            matched.add(`${method} ${url}`);
            routes.push({
              method,
              url,
              handler: `${ctrl.name}.${name}`,
              isPublic,
              params: [...url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]),
              paramSchema: dto(RouteParamtypes.PARAM),
              querySchema: dto(RouteParamtypes.QUERY),
              bodySchema: dto(RouteParamtypes.BODY),
              readsRequest: argOf(RouteParamtypes.REQUEST) !== undefined,
              untypedInput:
                (body !== undefined && !schemaOf(types[body.index])) ||
                (query !== undefined && !schemaOf(types[query.index])),
            });
          }
        }
      }
    }
  }
  const orphans = [...served].filter((r) => r.split(' ')[1].startsWith(prefix + '/') && !matched.has(r));
  if (orphans.length) throw new Error(`served but declared by no controller: ${orphans.join(', ')}`);
  return routes.sort((a, b) => `${a.url} ${a.method}`.localeCompare(`${b.url} ${b.method}`));
}

/** `/api/v1/trips/:tripId` with `{tripId: 'x'}` → `/api/v1/trips/x` (values URL-encoded unless `raw`). */
export function fillPath(url: string, values: Record<string, string>, raw = false): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, (_, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`no value for :${name} in ${url}`);
    return raw ? v : encodeURIComponent(v);
  });
}
