import { escapeHtml, isWellFormedTagCode, newTagCode, scanRefusal, tagStatus, tagUrl } from './qr-rules';

describe('newTagCode', () => {
  it('is 16 base64url characters (96 random bits)', () => {
    for (let i = 0; i < 100; i++) {
      const c = newTagCode();
      expect(c).toMatch(/^[A-Za-z0-9_-]{16}$/);
      expect(isWellFormedTagCode(c)).toBe(true);
      expect(Buffer.from(c, 'base64url')).toHaveLength(12);
    }
  });

  it('never repeats over 10,000 codes and shows no sequential pattern', () => {
    const codes = Array.from({ length: 10_000 }, newTagCode);
    expect(new Set(codes).size).toBe(10_000);
    // Consecutive codes share no common prefix beyond chance (a counter or a time prefix would).
    let sharedPrefix3 = 0;
    for (let i = 1; i < codes.length; i++) if (codes[i].slice(0, 3) === codes[i - 1].slice(0, 3)) sharedPrefix3++;
    expect(sharedPrefix3).toBeLessThan(5);
    // Every position uses most of the 64-character alphabet.
    for (let pos = 0; pos < 16; pos++) {
      const seen = new Set(codes.map((c) => c[pos]));
      expect(seen.size).toBeGreaterThan(pos === 15 ? 3 : 60);
    }
    // Sorted order is not creation order.
    const sorted = [...codes].sort();
    expect(sorted.slice(0, 100)).not.toEqual(codes.slice(0, 100));
  });

  it('refuses shapes it never issues', () => {
    for (const bad of ['', 'short', 'a'.repeat(65), 'abc/def+ghi=jklmnop', 'ünïcode-ünïcode-xx']) {
      expect(isWellFormedTagCode(bad)).toBe(false);
    }
  });
});

describe('tagUrl', () => {
  it('is PUBLIC_BASE_URL/q/<code>', () => {
    expect(tagUrl('https://waybill.example/', 'abc')).toBe('https://waybill.example/q/abc');
  });
});

describe('tagStatus', () => {
  const now = new Date('2026-12-06T10:00:00Z');
  it('derives EXPIRED from expiresAt and lets DISABLED win', () => {
    expect(tagStatus('ACTIVE', null, now)).toBe('ACTIVE');
    expect(tagStatus('ACTIVE', new Date('2026-12-06T10:00:01Z'), now)).toBe('ACTIVE');
    expect(tagStatus('ACTIVE', new Date('2026-12-06T10:00:00Z'), now)).toBe('EXPIRED');
    expect(tagStatus('DISABLED', new Date('2026-12-01T00:00:00Z'), now)).toBe('DISABLED');
    expect(tagStatus('DISABLED', null, now)).toBe('DISABLED');
  });

  it('names why a scan was refused', () => {
    const base = { status: 'ACTIVE' as const, expiresAt: null, scanCount: 3, maxScans: 3 };
    expect(scanRefusal(base, now)).toBe('FULL');
    expect(scanRefusal({ ...base, maxScans: null }, now)).toBeNull();
    expect(scanRefusal({ ...base, maxScans: 4 }, now)).toBeNull();
    expect(scanRefusal({ ...base, status: 'DISABLED' }, now)).toBe('DISABLED');
    expect(scanRefusal({ ...base, expiresAt: new Date('2026-12-05T00:00:00Z') }, now)).toBe('EXPIRED');
  });
});

describe('escapeHtml', () => {
  it('escapes markup and quotes', () => {
    expect(escapeHtml(`<script>alert("x")</script> & 'y'`)).toBe(
      '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;',
    );
  });
});
