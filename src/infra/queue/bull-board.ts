import { createBullBoard } from '@bull-board/api';
import type { IServerAdapter } from '@bull-board/api/typings/app';
import { BullAdapter } from '@bull-board/api/bullAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { INestApplicationContext } from '@nestjs/common';
import { getQueueToken } from '@nestjs/bull';
import type { Queue } from 'bull';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { UnauthenticatedError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { toErrorResponse } from '../../common/errors/error-response';
import { adminCredential } from './admin-credential';
import { QUEUES } from './queue.module';

export const BULL_BOARD_PATH = '/admin/queues';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Every queue of `QUEUES` that a module registered in this app. */
export function registeredQueues(app: Pick<INestApplicationContext, 'get'>): Queue[] {
  const queues: Queue[] = [];
  for (const name of Object.values(QUEUES)) {
    try {
      queues.push(app.get<Queue>(getQueueToken(name), { strict: false }));
    } catch {
      // not registered in this app: nothing to show
    }
  }
  return queues;
}

/**
 * Bull Board at /admin/queues, listing every registered queue (jobs by state,
 * failed jobs with their error and stack, retry and clean), behind
 * `ADMIN_TOKEN`; with no token configured nothing is mounted (404). The
 * credential's digest is compared in constant time.
 */
export async function installBullBoard(
  fastify: FastifyInstance,
  app: Pick<INestApplicationContext, 'get'>,
  adminToken: string | undefined,
): Promise<void> {
  if (!adminToken) return;
  const expected = digest(adminToken);
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  // @bull-board/fastify carries its own copy of @bull-board/api's types (a patch version apart): same shape.
  createBullBoard({
    queues: registeredQueues(app).map((q) => new BullAdapter(q)),
    serverAdapter: serverAdapter as unknown as IServerAdapter,
  });

  const refuse = (request: FastifyRequest, reply: FastifyReply, err: UnauthenticatedError) => {
    const res = toErrorResponse(err, String(request.id));
    return reply
      .status(res.status)
      .header('www-authenticate', 'Basic realm="Waybill queues", charset="UTF-8"')
      .header('cache-control', 'no-store')
      .send(res.body);
  };
  await fastify.register(
    async (scope) => {
      scope.addHook('onRequest', async (request, reply) => {
        const given = adminCredential(request.headers.authorization);
        if (given === undefined) return refuse(request, reply, new UnauthenticatedError());
        if (!timingSafeEqual(digest(given), expected))
          return refuse(request, reply, new UnauthenticatedError(ErrorCode.INVALID_TOKEN, 'The admin token is not valid'));
        void reply.header('cache-control', 'no-store');
      });
      await scope.register(serverAdapter.registerPlugin());
    },
    { prefix: BULL_BOARD_PATH },
  );
}
