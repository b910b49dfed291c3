import pino from 'pino';
import { Writable } from 'node:stream';
import { createPino, lazyRequestLogger } from './logger';

function memoryPino(): { logger: pino.Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = createPino('info', sink as unknown as pino.DestinationStream);
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('lazyRequestLogger', () => {
  it('makes no child until the request logs', () => {
    const { logger } = memoryPino();
    const child = jest.spyOn(logger, 'child');
    const log = lazyRequestLogger(logger, { reqId: 'r-1' }, {});
    expect(log.level).toBe('info');
    expect(child).not.toHaveBeenCalled();
  });

  it('writes what the eager child would: the bindings, the redaction, the level', () => {
    const { logger, lines } = memoryPino();
    const log = lazyRequestLogger(logger, { reqId: 'r-2' }, {});
    log.info({ user: { password: 'secret' } }, 'hello');
    log.debug('not written at info');
    log.error('bad');
    const written = lines();
    expect(written).toHaveLength(2);
    expect(written[0]).toMatchObject({ reqId: 'r-2', service: 'waybill', msg: 'hello', user: { password: '[redacted]' } });
    expect(written[1]).toMatchObject({ reqId: 'r-2', level: 50, msg: 'bad' });
  });

  it('keeps its own level and makes grandchildren', () => {
    const { logger, lines } = memoryPino();
    const log = lazyRequestLogger(logger, { reqId: 'r-3' }, { level: 'warn' });
    expect(log.level).toBe('warn');
    log.info('below warn');
    log.child({ part: 'x' }).warn('from the grandchild');
    expect(lines()).toEqual([expect.objectContaining({ reqId: 'r-3', part: 'x', msg: 'from the grandchild' })]);
    log.level = 'info';
    log.info('now written');
    expect(lines()).toHaveLength(2);
  });
});
