/** How many leading bytes the type sniffing looks at (file-type needs up to 4100). */
export const SNIFF_BYTES = 4100;

export const TEXT_PLAIN = 'text/plain';
export const UNKNOWN_TYPE = 'application/octet-stream';

/**
 * Whether bytes read as plain text: valid UTF-8 (a multi-byte character cut
 * at the end of the sample is allowed) and no NUL. Plain text has no magic
 * bytes, so this is the only way to tell it from an unknown binary.
 */
export function looksLikeText(sample: Buffer): boolean {
  if (sample.length === 0 || sample.includes(0)) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(sample, { stream: true });
    return true;
  } catch {
    return false;
  }
}

/**
 * The content type of an upload, from its bytes only (never from its name or
 * the client's header): what file-type recognised from the magic bytes, else
 * `text/plain` for UTF-8 text without NUL, else `application/octet-stream`.
 */
export function sniffedContentType(sample: Buffer, magic: string | undefined): string {
  if (magic) return magic;
  return looksLikeText(sample) ? TEXT_PLAIN : UNKNOWN_TYPE;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * A file name safe for a Content-Disposition header and for any file system
 * the user saves to: no folder part, no control or quote characters, at most
 * 120 characters; `attachment` when nothing is left.
 */
export function safeFilename(name: string | undefined): string {
  const wellFormed = (name ?? '').replace(LONE_SURROGATE, '');
  const base = wellFormed.split(/[\\/]/).pop() ?? '';
  const cleaned = [...base.normalize('NFC')]
    .filter((c) => !/[\p{Cc}\p{Cf}"\\<>:|?*]/u.test(c))
    .join('')
    .replace(/^[.\s]+|\s+$/g, '')
    .slice(0, 120);
  return cleaned || 'attachment';
}

/** `attachment; filename="<ascii>"; filename*=UTF-8''<encoded>` (RFC 6266) for a name made by safeFilename. */
export function contentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]/g, '_').replace(/%/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}
