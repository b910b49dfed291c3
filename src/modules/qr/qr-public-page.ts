import { RAW_RESPONSE } from '../../common/http/envelope';
import { strongEtag } from '../../common/http/etag';
import { escapeHtml } from './qr-rules';
import type { PublicTagSummary } from './qr.schemas';

/** One finished answer of the public page: its bytes (sent as they are, outside the envelope), content type and strong ETag. */
export interface PublicPageBody {
  body: Buffer & { [RAW_RESPONSE]: true };
  contentType: string;
  etag: string;
}

/** Both answers of a tag's public page, made once per summary: the JSON envelope and the small HTML page. */
export interface PublicPage {
  summary: PublicTagSummary;
  json: PublicPageBody;
  html: PublicPageBody;
}

function answer(text: string, contentType: string): PublicPageBody {
  const body = Object.assign(Buffer.from(text, 'utf8'), { [RAW_RESPONSE]: true as const });
  return { body, contentType, etag: strongEtag(body) };
}

/**
 * The public page of a tag as sent: the JSON envelope for `Accept:
 * application/json`, else an HTML page with every field escaped. Built once
 * per summary and kept with it, so a cached page costs no serialization or
 * hashing per request.
 */
export function renderPublicPage(summary: PublicTagSummary): PublicPage {
  const html =
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>${escapeHtml(summary.title)}</title></head><body><main><h1>${escapeHtml(summary.title)}</h1>` +
    `<p>${escapeHtml(summary.entityType)} of ${escapeHtml(summary.orgName)}</p><p>Code: <code>${escapeHtml(summary.code)}</code></p>` +
    `<p>Status: ${escapeHtml(summary.status)}</p></main></body></html>`;
  return {
    summary,
    json: answer(JSON.stringify({ success: true, data: summary }), 'application/json; charset=utf-8'),
    html: answer(html, 'text/html; charset=utf-8'),
  };
}

/** Whether an Accept header asks for the JSON answer (anything else gets the HTML page). */
export function wantsJson(accept: string | undefined): boolean {
  return accept !== undefined && accept.includes('application/json');
}
