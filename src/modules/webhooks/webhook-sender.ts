import { lookup as dnsLookup, LookupAddress } from 'node:dns';
import * as http from 'node:http';
import * as https from 'node:https';
import type { LookupFunction } from 'node:net';
import { checkWebhookUrl, isPublicAddress } from './webhook-address';

/** What one POST to an endpoint gave. */
export interface SendResult {
  statusCode: number | null;
  /** timeout | network | refused (SSRF rule) | null when an answer came. */
  failure: 'timeout' | 'network' | 'refused' | null;
  error: string | null;
  /** The first 1 KiB of the answer's body. */
  responseSnippet: string | null;
  durationMs: number;
}

const SNIPPET_BYTES = 1024;

export class RefusedAddressError extends Error {}

/**
 * A `lookup` for http.request that resolves the name once, refuses it when
 * any of its addresses is not public (unless allowed), and hands the socket
 * exactly the addresses it checked: a DNS answer that changes between the
 * check and the connection (rebinding) cannot reach a private address.
 */
export function checkedLookup(allowPrivate: boolean): LookupFunction {
  return ((hostname: string, options: { all?: boolean; family?: number }, callback: (...args: unknown[]) => void) => {
    dnsLookup(hostname, { all: true, family: options.family ?? 0 }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err);
      if (addresses.length === 0) return callback(new Error(`${hostname} has no address`));
      if (!allowPrivate && addresses.some((a) => !isPublicAddress(a.address))) {
        return callback(new RefusedAddressError(`${hostname} resolves to a private, loopback or link-local address`));
      }
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  }) as LookupFunction;
}

/** Resolves a host name as a delivery would and says whether the SSRF rule lets it through. */
export function resolvesToPublic(hostname: string): Promise<{ ok: boolean; error?: string }> {
  return new Promise((resolve) => {
    checkedLookup(false)(hostname, { all: true }, (err) =>
      resolve(
        err
          ? { ok: false, error: err instanceof RefusedAddressError ? err.message : 'host does not resolve' }
          : { ok: true },
      ),
    );
  });
}

/** POSTs the body with the headers; never throws. The whole attempt (connect, answer, body) is bounded by `timeoutMs`. */
export function sendWebhook(
  rawUrl: string,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
  allowPrivate: boolean,
): Promise<SendResult> {
  const started = performance.now();
  const done = (r: Omit<SendResult, 'durationMs'>): SendResult => ({
    ...r,
    durationMs: Math.round(performance.now() - started),
  });
  const check = checkWebhookUrl(rawUrl, allowPrivate);
  if (!check.ok) {
    return Promise.resolve(done({ statusCode: null, failure: 'refused', error: check.reason, responseSnippet: null }));
  }
  const url = check.url;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (r: Omit<SendResult, 'durationMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(done(r));
    };
    const client = url.protocol === 'https:' ? https : http;
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: checkedLookup(allowPrivate),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on('data', (c: Buffer) => {
          if (kept < SNIPPET_BYTES) {
            chunks.push(c.subarray(0, SNIPPET_BYTES - kept));
            kept += Math.min(c.length, SNIPPET_BYTES - kept);
          }
        });
        res.on('end', () =>
          finish({
            statusCode: res.statusCode ?? null,
            failure: null,
            error: null,
            responseSnippet: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', (err) =>
          finish({ statusCode: res.statusCode ?? null, failure: 'network', error: err.message, responseSnippet: null }),
        );
      },
    );
    const timer = setTimeout(() => {
      finish({
        statusCode: null,
        failure: 'timeout',
        error: `no answer within ${timeoutMs} ms`,
        responseSnippet: null,
      });
      req.destroy();
    }, timeoutMs);
    req.on('error', (err) =>
      finish({
        statusCode: null,
        failure: err instanceof RefusedAddressError ? 'refused' : 'network',
        error: err.message.slice(0, 500),
        responseSnippet: null,
      }),
    );
    req.end(body);
  });
}
