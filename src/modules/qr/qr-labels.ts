import PDFDocument from 'pdfkit';
import QRCode from 'qrcode';
import type { TagView } from './qr.schemas';

/** An A4 sheet: 3 columns by 7 rows of labels, each a QR with its title and code beneath. */
export const LABELS = { columns: 3, rows: 7, quietModules: 2 } as const;
const A4 = { width: 595.28, height: 841.89 };
const MARGIN = 24;
const CELL_W = (A4.width - 2 * MARGIN) / LABELS.columns;
const CELL_H = (A4.height - 2 * MARGIN) / LABELS.rows;
const QR_SIDE = Math.min(CELL_W, CELL_H) - 34;
/** Past this many bytes waiting in the sheet's stream (a slow reader), the next page waits for it to drain. */
const MAX_BUFFERED = 4 * 1024 * 1024;

/** Where label `slot` (0..20) of a page sits, in PDF points from the page's top left: its cell and its QR square. */
export function labelBox(slot: number): { x: number; y: number; w: number; h: number; qr: { x: number; y: number; side: number } } {
  const x = MARGIN + (slot % LABELS.columns) * CELL_W;
  const y = MARGIN + Math.floor(slot / LABELS.columns) * CELL_H;
  return { x, y, w: CELL_W, h: CELL_H, qr: { x: x + (CELL_W - QR_SIDE) / 2, y: y + 4, side: QR_SIDE } };
}

/**
 * The dark modules of a QR code as rectangles in module units: each row's runs
 * of dark modules merged into one rectangle (a 33-module code is about 200
 * rectangles, not 500 squares).
 */
export function qrRuns(url: string): { size: number; runs: { x: number; y: number; w: number }[] } {
  const { modules } = QRCode.create(url, { errorCorrectionLevel: 'M' });
  const size = modules.size;
  const data = modules.data;
  const runs: { x: number; y: number; w: number }[] = [];
  for (let y = 0; y < size; y++) {
    let x = 0;
    while (x < size) {
      if (!data[y * size + x]) {
        x++;
        continue;
      }
      const start = x;
      while (x < size && data[y * size + x]) x++;
      runs.push({ x: start, y, w: x - start });
    }
  }
  return { size, runs };
}

/**
 * Streams a label sheet: the PDF is written as the tags arrive, a page at a
 * time, and the returned stream is what the client reads, so a 10,000-label
 * sheet never sits whole in memory. Each QR is drawn as vector rectangles
 * (one filled path per label, from the code's modules) with the same quiet
 * zone as the PNG (2 modules): no image to encode or embed. The loop yields
 * to the event loop after each page, and waits while a slow reader leaves
 * more than MAX_BUFFERED bytes unread.
 */
export function labelSheet(tags: AsyncIterable<TagView>): PDFKit.PDFDocument {
  const doc = new PDFDocument({ size: 'A4', margin: MARGIN, autoFirstPage: false, info: { Title: 'QR labels' } });
  void (async () => {
    let n = 0;
    try {
      for await (const tag of tags) {
        const slot = n % (LABELS.columns * LABELS.rows);
        if (slot === 0) {
          if (n > 0) await breathe(doc);
          if (doc.destroyed) return;
          doc.addPage();
        }
        const box = labelBox(slot);
        drawQr(doc, tag.url, box.qr.x, box.qr.y, box.qr.side);
        doc
          .fontSize(8)
          .text(tag.title, box.x + 4, box.qr.y + QR_SIDE + 2, {
            width: CELL_W - 8,
            height: 10,
            align: 'center',
            ellipsis: true,
            lineBreak: false,
          })
          .fontSize(7)
          .text(tag.code, box.x + 4, box.qr.y + QR_SIDE + 13, { width: CELL_W - 8, align: 'center', lineBreak: false });
        n++;
      }
      if (n === 0) doc.addPage();
      doc.end();
    } catch (err) {
      doc.destroy(err as Error);
    }
  })();
  return doc;
}

function drawQr(doc: PDFKit.PDFDocument, url: string, x: number, y: number, side: number): void {
  const { size, runs } = qrRuns(url);
  const unit = side / (size + 2 * LABELS.quietModules);
  const ox = x + LABELS.quietModules * unit;
  const oy = y + LABELS.quietModules * unit;
  for (const r of runs) doc.rect(ox + r.x * unit, oy + r.y * unit, r.w * unit, unit);
  doc.fill('#000000');
}

/** Lets other work run between pages, and waits for a slow reader to take what is buffered. */
async function breathe(doc: PDFKit.PDFDocument): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  while (!doc.destroyed && doc.readableLength > MAX_BUFFERED) await new Promise((resolve) => setTimeout(resolve, 10));
}
