import { renderPublicPage, wantsJson } from './qr-public-page';
import type { PublicTagSummary } from './qr.schemas';

const summary: PublicTagSummary = {
  code: 'AbC123xyz_-0',
  entityType: 'TRUCK',
  title: 'Truck <7> & "co"',
  orgName: "O'Brien Haulage",
  status: 'ACTIVE',
};

describe('renderPublicPage', () => {
  const page = renderPublicPage(summary);

  it('answers JSON in the envelope, every field as given', () => {
    expect(JSON.parse(page.json.body.toString('utf8'))).toEqual({ success: true, data: summary });
    expect(page.json.contentType).toBe('application/json; charset=utf-8');
  });

  it('answers HTML with every field escaped', () => {
    const html = page.html.body.toString('utf8');
    expect(page.html.contentType).toBe('text/html; charset=utf-8');
    expect(html).toContain('<title>Truck &lt;7&gt; &amp; &quot;co&quot;</title>');
    expect(html).toContain('TRUCK of O&#39;Brien Haulage');
    expect(html).not.toContain('<7>');
  });

  it('gives each answer a strong ETag of its own bytes, changed by any field', () => {
    expect(page.json.etag).toMatch(/^"[A-Za-z0-9_-]{32}"$/);
    expect(page.html.etag).not.toBe(page.json.etag);
    expect(renderPublicPage(summary).json.etag).toBe(page.json.etag);
    const renamed = renderPublicPage({ ...summary, orgName: 'Other' });
    expect(renamed.json.etag).not.toBe(page.json.etag);
    expect(renamed.html.etag).not.toBe(page.html.etag);
  });
});

describe('wantsJson', () => {
  it('is JSON only when the Accept header names application/json', () => {
    expect(wantsJson('application/json')).toBe(true);
    expect(wantsJson('text/html, application/json;q=0.9')).toBe(true);
    expect(wantsJson('text/html')).toBe(false);
    expect(wantsJson(undefined)).toBe(false);
  });
});
