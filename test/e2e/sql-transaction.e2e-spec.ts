import { Db } from '../../src/infra/db/db.service';
import { startTestApp, TestApp } from '../support/test-app';

describe('Db.sqlTransaction', () => {
  let t: TestApp;
  let db: Db;
  beforeAll(async () => {
    t = await startTestApp();
    db = t.app.get(Db);
    await t.sql.query('CREATE TABLE after_commit_probe (n int NOT NULL)');
  });
  afterAll(() => t.close());

  const visibleElsewhere = async (n: number) =>
    (await t.sql.query('SELECT count(*)::int AS c FROM after_commit_probe WHERE n = $1', [n])).rows[0].c as number;

  it('runs afterCommit handlers once the transaction has committed, in order, before it returns', async () => {
    const seen: string[] = [];
    const result = await db.sqlTransaction(async (tx) => {
      await tx.query('INSERT INTO after_commit_probe (n) VALUES (1)');
      tx.afterCommit(() => seen.push('first'));
      tx.afterCommit(() => seen.push('second'));
      // Not yet: the transaction is still open.
      expect(seen).toEqual([]);
      return 'done';
    });
    expect(result).toBe('done');
    expect(seen).toEqual(['first', 'second']);
    expect(await visibleElsewhere(1)).toBe(1);
  });

  it('never runs afterCommit handlers of a transaction that rolled back', async () => {
    let ran = false;
    await expect(
      db.sqlTransaction(async (tx) => {
        await tx.query('INSERT INTO after_commit_probe (n) VALUES (2)');
        tx.afterCommit(() => (ran = true));
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(ran).toBe(false);
    expect(await visibleElsewhere(2)).toBe(0);
  });

  it('sees the committed rows from another connection when a handler runs', async () => {
    let countAtHandler: Promise<number> | undefined;
    await db.sqlTransaction(async (tx) => {
      await tx.query('INSERT INTO after_commit_probe (n) VALUES (3)');
      tx.afterCommit(() => (countAtHandler = visibleElsewhere(3)));
    });
    expect(await countAtHandler).toBe(1);
  });
});
