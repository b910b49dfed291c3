import { DatabaseError } from 'pg';
import { statementRefused } from '../errors/database-errors';
import { GroupRunner, settleApart, Settled } from './group-runner';

/** A pg error as PostgreSQL reports it, e.g. 22021 for a NUL in text. */
function pgError(code: string, message: string): DatabaseError {
  const err = new DatabaseError(message, message.length, 'error');
  err.code = code;
  err.severity = 'ERROR';
  return err;
}

const BAD = 6;

describe('settleApart', () => {
  it('runs a refused group again in halves: only the faulty item fails, with its own error', async () => {
    const statements: number[][] = [];
    const run = async (items: number[]): Promise<Settled<number>[]> => {
      statements.push(items);
      if (items.includes(BAD)) throw pgError('22021', 'invalid byte sequence for encoding "UTF8": 0x00');
      return items.map((i) => ({ ok: true, value: i * 10 }));
    };
    const outcomes = await settleApart([1, 2, 3, 4, 5, 6, 7, 8], run, statementRefused);
    expect(outcomes.map((o) => (o.ok ? o.value : 'failed'))).toEqual([10, 20, 30, 40, 50, 'failed', 70, 80]);
    expect((outcomes[5] as { error: DatabaseError }).error.code).toBe('22021');
    // 8, then its halves, then the refused half's halves, then the refused pair's singles.
    expect(statements.map((s) => s.length)).toEqual([8, 4, 4, 2, 2, 1, 1]);
  });

  it('fails the whole group, running nothing again, when the outcome is unknown (connection lost)', async () => {
    let calls = 0;
    const lost = new Error('Connection terminated unexpectedly');
    const outcomes = await settleApart(
      [1, 2, 3],
      async () => {
        calls++;
        throw lost;
      },
      statementRefused,
    );
    expect(calls).toBe(1);
    expect(outcomes).toEqual([1, 2, 3].map(() => ({ ok: false, error: lost })));
    // A connection error PostgreSQL reported (class 08), an admin shutdown (57) or a resource error (53): the same.
    for (const code of ['08006', '57P01', '53300']) expect(statementRefused(pgError(code, 'x'))).toBe(false);
  });
});

describe('GroupRunner', () => {
  it('splits a refused group when given the rule, and counts what it ran again', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const runner = new GroupRunner<number, number>({
      maxGroup: 10,
      maxInFlight: 1,
      run: async (items) => {
        if (items[0] === 0) await gate; // the first item holds the slot, the others queue into one group
        if (items.includes(BAD)) throw pgError('23514', 'new row violates check constraint');
        return items.map((i) => ({ ok: true, value: i }));
      },
      refused: statementRefused,
    });
    const pending = [0, 5, 6, 7, 8].map((i) => runner.submit(i));
    release();
    const settled = await Promise.allSettled(pending);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(runner.stats.retriedApart).toBe(4 + 2);
  });
});
