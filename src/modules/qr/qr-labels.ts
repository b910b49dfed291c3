import PDFDocument from 'pdfkit';
import QRCode from 'qrcode';
import type { TagView } from './qr.schemas';

/** An A4 sheet: 3 columns by 7 rows of labels, each a QR with its title and code beneath. */
export const LABELS = { columns: 3, rows: 7, qrPixels: 240 } as const;
const A4 = { width: 595.28, height: 841.89 };
const MARGIN = 24;

/**
 * Streams a label sheet: the PDF is written as the tags arrive (one page of
 * QR images in memory at a time), and the returned stream is what the client
 * reads, so a 10,000-label sheet never sits whole in memory.
 */
export function labelSheet(tags: AsyncIterable<TagView>): PDFKit.PDFDocument {
  const doc = new PDFDocument({ size: 'A4', margin: MARGIN, autoFirstPage: false, info: { Title: 'QR labels' } });
  const cellW = (A4.width - 2 * MARGIN) / LABELS.columns;
  const cellH = (A4.height - 2 * MARGIN) / LABELS.rows;
  const qrSide = Math.min(cellW, cellH) - 34;
  void (async () => {
    let n = 0;
    try {
      for await (const tag of tags) {
        const slot = n % (LABELS.columns * LABELS.rows);
        if (slot === 0) doc.addPage();
        const x = MARGIN + (slot % LABELS.columns) * cellW;
        const y = MARGIN + Math.floor(slot / LABELS.columns) * cellH;
        const png = await QRCode.toBuffer(tag.url, {
          type: 'png',
          width: LABELS.qrPixels,
          margin: 2,
          errorCorrectionLevel: 'M',
        });
        doc.image(png, x + (cellW - qrSide) / 2, y + 4, { width: qrSide, height: qrSide });
        doc
          .fontSize(8)
          .text(tag.title, x + 4, y + qrSide + 6, {
            width: cellW - 8,
            height: 10,
            align: 'center',
            ellipsis: true,
            lineBreak: false,
          })
          .fontSize(7)
          .text(tag.code, x + 4, y + qrSide + 17, { width: cellW - 8, align: 'center', lineBreak: false });
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
