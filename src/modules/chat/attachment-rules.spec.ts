import { contentDisposition, looksLikeText, safeFilename, sniffedContentType } from './attachment-rules';

describe('attachment rules', () => {
  it('takes the magic-byte type when there is one, whatever the bytes look like', () => {
    expect(sniffedContentType(Buffer.from('abc'), 'image/png')).toBe('image/png');
  });

  it('calls UTF-8 without NUL plain text, anything else unknown', () => {
    expect(sniffedContentType(Buffer.from('héllo, wörld\n'), undefined)).toBe('text/plain');
    expect(sniffedContentType(Buffer.from([0x68, 0x00, 0x69]), undefined)).toBe('application/octet-stream');
    expect(sniffedContentType(Buffer.from([0xff, 0xfe, 0x41]), undefined)).toBe('application/octet-stream');
    expect(sniffedContentType(Buffer.alloc(0), undefined)).toBe('application/octet-stream');
  });

  it('allows a multi-byte character cut at the end of the sample', () => {
    const euro = Buffer.from('price €');
    expect(looksLikeText(euro.subarray(0, euro.length - 1))).toBe(true);
  });

  it('makes file names safe for a header and a file system', () => {
    expect(safeFilename('../../etc/passwd')).toBe('passwd');
    expect(safeFilename('C:\\Users\\me\\invoice "final".pdf')).toBe('invoice final.pdf');
    expect(safeFilename('a\r\nb\u0000c.png')).toBe('abc.png');
    expect(safeFilename('...')).toBe('attachment');
    expect(safeFilename(undefined)).toBe('attachment');
    expect(safeFilename('x\uD800y.pdf')).toBe('xy.pdf');
    expect(safeFilename('a'.repeat(300))).toHaveLength(120);
  });

  it('writes an ASCII name and the UTF-8 name in Content-Disposition', () => {
    expect(contentDisposition('bill.pdf')).toBe(`attachment; filename="bill.pdf"; filename*=UTF-8''bill.pdf`);
    expect(contentDisposition('बिल 5%.pdf')).toBe(
      `attachment; filename="___ 5_.pdf"; filename*=UTF-8''${encodeURIComponent('बिल 5%.pdf')}`,
    );
  });
});
