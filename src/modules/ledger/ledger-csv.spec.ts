import { csvField, csvLine, csvUserText, parseCsv } from './ledger-csv';

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

describe('ledger csv: formula cells', () => {
  it('user text a spreadsheet would run as a formula gets a leading quote', () => {
    for (const v of ['=1+1', '+x', '-x', '@x', '\tx', '\rx', '=HYPERLINK("http://e.vil")']) {
      expect(csvUserText(v)).toBe(`'${v}`);
    }
    expect(csvField(csvUserText('=1+1'))).toBe("'=1+1");
    expect(csvField(csvUserText('\rx'))).toBe('"\'\rx"');
    expect(csvField(csvUserText('=SUM(A1,B1)'))).toBe('"\'=SUM(A1,B1)"');
  });

  it('leaves other text, nulls and amounts alone', () => {
    for (const v of ['INV-118', 'Wheat, 10 t', '1+1', ' =x', 'a=b', '']) expect(csvUserText(v)).toBe(v);
    expect(csvUserText(null)).toBeNull();
    expect(csvLine([1, csvUserText('-x'), -500, 1250n])).toBe("1,'-x,-500,1250\r\n");
  });
});
