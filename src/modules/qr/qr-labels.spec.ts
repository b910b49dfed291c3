import QRCode from 'qrcode';
import { labelBox, LABELS, qrRuns } from './qr-labels';

describe('qrRuns', () => {
  it('covers exactly the dark modules, each row run once and maximal', () => {
    const url = 'https://waybill.example/q/AbCdEfGhIjKlMnOp';
    const { modules } = QRCode.create(url, { errorCorrectionLevel: 'M' });
    const { size, runs } = qrRuns(url);
    expect(size).toBe(modules.size);
    const painted = new Uint8Array(size * size);
    for (const r of runs) {
      expect(r.w).toBeGreaterThan(0);
      // Maximal: the modules either side of a run are light (or the edge).
      if (r.x > 0) expect(modules.get(r.y, r.x - 1)).toBeFalsy();
      if (r.x + r.w < size) expect(modules.get(r.y, r.x + r.w)).toBeFalsy();
      for (let x = r.x; x < r.x + r.w; x++) painted[r.y * size + x]++;
    }
    for (let i = 0; i < size * size; i++) expect(painted[i]).toBe(modules.data[i] ? 1 : 0);
  });
});

describe('labelBox', () => {
  it('puts the 21 labels of a page in a 3 × 7 grid inside the page, each QR square inside its cell', () => {
    const boxes = Array.from({ length: LABELS.columns * LABELS.rows }, (_, slot) => labelBox(slot));
    for (const b of boxes) {
      expect(b.qr.x).toBeGreaterThanOrEqual(b.x);
      expect(b.qr.x + b.qr.side).toBeLessThanOrEqual(b.x + b.w);
      expect(b.qr.y + b.qr.side).toBeLessThan(b.y + b.h);
      expect(b.x + b.w).toBeLessThanOrEqual(595.28);
      expect(b.y + b.h).toBeLessThanOrEqual(841.89);
    }
    expect(new Set(boxes.map((b) => `${b.x},${b.y}`)).size).toBe(21);
  });
});
