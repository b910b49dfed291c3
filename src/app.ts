import compress from '@fastify/compress';
import { RequestMethod } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { cleanupOpenApiDoc } from 'nestjs-zod';
import { LogController } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { AppModule } from './app.module';
import { requestContext } from './common/context/request-context';
import { AppConfig } from './infra/config/config';
import { createPino, PinoLoggerService } from './infra/observability/logger';

export const API_PREFIX = 'api/v1';

/** A client-sent X-Request-Id is echoed when it looks like an id; anything else gets a fresh one. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Builds the whole service (not yet listening): used by main.ts and by the e2e tests. */
export async function createApp(config: AppConfig): Promise<NestFastifyApplication> {
  const pino = createPino(config.logLevel);
  const adapter = new FastifyAdapter({
    loggerInstance: pino,
    // No log line per request: the ping hot path would drown the logs.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: true,
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
  const fastify = app.getHttpAdapter().getInstance();

  // Everything that serves this request, to the last log line, sees its context.
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.header('X-Request-Id', request.id);
    requestContext.run({ requestId: String(request.id), wrote: false, pinnedToPrimary: false }, done);
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    if (reply.statusCode >= 500) pino.warn({ reqId: request.id, status: reply.statusCode, url: request.url }, 'request failed');
    done();
  });

  await app.register(compress, { threshold: 1024, encodings: ['br', 'gzip', 'deflate'] });
  app.setGlobalPrefix(API_PREFIX, {
    exclude: [
      { path: 'health/live', method: RequestMethod.GET },
      { path: 'health/ready', method: RequestMethod.GET },
    ],
  });

  const doc = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Waybill API')
      .setDescription('Real-time logistics tracking: trips, GPS ingest, ledger, QR tags, chat. Envelope: {success, data, meta?} / {success:false, error:{code, message, details?}}.')
      .setVersion('1')
      .addBearerAuth()
      .build(),
  );
  SwaggerModule.setup('docs', app, cleanupOpenApiDoc(doc), { useGlobalPrefix: false, jsonDocumentUrl: 'docs/openapi.json' });

  app.enableShutdownHooks();
  return app;
}
