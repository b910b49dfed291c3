import { Client } from 'pg';
import { numberArray, textArray } from '../../src/infra/db/pg-array';
import { databaseUrlFor, templateDb } from '../support/env';

/** The literals against PostgreSQL itself: what goes in comes back element for element. */
describe('pg array literals', () => {
  let sql: Client;
  beforeAll(async () => {
    sql = new Client({ connectionString: databaseUrlFor(templateDb()) });
    await sql.connect();
  });
  afterAll(() => sql.end());

  it('builds the literal PostgreSQL expects', () => {
    expect(numberArray([1.5, null, -3, undefined])).toBe('{1.5,NULL,-3,NULL}');
    expect(numberArray([])).toBe('{}');
    expect(textArray(['a', null, 'b "c"', 'd\\e'])).toBe('{"a",NULL,"b \\"c\\"","d\\\\e"}');
  });

  it('round-trips numbers through float8[]', async () => {
    const values = [0, -0.000001, 1e-7, 26.91234567890123, -75.8, 1e21, null, 180];
    const res = await sql.query<{ a: (number | null)[] }>('SELECT $1::float8[] AS a', [numberArray(values)]);
    expect(res.rows[0].a).toEqual(values.map((v) => (v === null ? null : v)));
  });

  it('round-trips any text through text[] and uuid[]', async () => {
    const values = ['plain', '', 'NULL', 'with "quotes"', 'back\\slash', '{braces},commas', ' spaced ', 'ünï €', null];
    const res = await sql.query<{ a: (string | null)[] }>('SELECT $1::text[] AS a', [textArray(values)]);
    expect(res.rows[0].a).toEqual(values);
    const ids = ['5f0c6a1e-8b7d-4c1a-9e2f-3a4b5c6d7e8f', '00000000-0000-0000-0000-000000000000'];
    const uuids = await sql.query<{ a: string[] }>('SELECT $1::uuid[]::text[] AS a', [textArray(ids)]);
    expect(uuids.rows[0].a).toEqual(ids);
  });
});
