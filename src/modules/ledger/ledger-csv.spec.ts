import { csvField, csvLine, parseCsv } from './ledger-csv';

describe('ledger csv', () => {
  it('quotes only what RFC 4180 requires', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField(-1250)).toBe('-1250');
    expect(csvField(null)).toBe('');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
  });

  it('parses back what it writes', () => {
    const rows = [
      ['1', 'INV, "7"', 'line\r\nbreak', ''],
      ['2', 'plain', '', '-5'],
    ];
    const text = rows.map((r) => csvLine(r)).join('');
    expect(text.endsWith('\r\n')).toBe(true);
    expect(parseCsv(text)).toEqual(rows);
  });
});
