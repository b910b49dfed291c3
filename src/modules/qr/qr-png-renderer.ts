import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Worker } from 'node:worker_threads';

export interface PngOptions {
  width: number;
  margin: number;
  errorCorrectionLevel: string;
}

/** The worker's code: `qrcode` renders there, its module path handed over at start. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const QRCode = require(workerData.qrcode);
parentPort.on('message', ({ id, text, opts }) => {
  QRCode.toBuffer(text, { ...opts, type: 'png' }).then(
    (body) => parentPort.postMessage({ id, body }),
    (err) => parentPort.postMessage({ id, error: String((err && err.message) || err) }),
  );
});
`;

interface Pending {
  resolve(body: Buffer): void;
  reject(err: Error): void;
}

/**
 * Renders QR PNGs on a worker thread. Encoding a 2,000 px PNG is about half a
 * second of JavaScript (pixel loops and PNG filtering in `pngjs`): on the main
 * thread every other request of the node would wait that long, and a client
 * could keep the node busy by asking for new sizes and margins. The worker is
 * started on the first image and again after a crash; SVG stays inline (it
 * costs a string per module).
 */
@Injectable()
export class QrPngRenderer implements OnApplicationShutdown {
  private readonly logger = new Logger(QrPngRenderer.name);
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  /** Renders sent to the worker and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  render(text: string, opts: PngOptions): Promise<Buffer> {
    const worker = this.worker ?? this.start();
    const id = ++this.nextId;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, text, opts });
    });
  }

  private start(): Worker {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { qrcode: require.resolve('qrcode') } });
    // An idle renderer does not keep the process alive.
    worker.unref();
    worker.on('message', (msg: { id: number; body?: Uint8Array; error?: string }) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.body) p.resolve(Buffer.from(msg.body.buffer, msg.body.byteOffset, msg.body.byteLength));
      else p.reject(new Error(msg.error ?? 'QR rendering failed'));
    });
    const fail = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.logger.warn(`QR renderer stopped: ${err.message}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`worker exited with ${code}`)));
    this.worker = worker;
    return worker;
  }

  async onApplicationShutdown(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    for (const p of this.pending.values()) p.reject(new Error('shutting down'));
    this.pending.clear();
    await worker?.terminate();
  }
}
