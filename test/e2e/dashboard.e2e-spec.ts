import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Scrape } from '../support/prometheus';
import { startTestApp, TestApp } from '../support/test-app';

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

const dashboard = JSON.parse(readFileSync(join(__dirname, '../../docs/dashboards/waybill.json'), 'utf8')) as {
  panels: Panel[];
  templating: { list: { query?: unknown; definition?: string }[] };
};

/** PromQL words that are not metric names. */
const PROMQL = new Set([
  'sum',
  'max',
  'min',
  'avg',
  'count',
  'by',
  'without',
  'rate',
  'irate',
  'increase',
  'histogram_quantile',
  'label_values',
  'le',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
]);

/** Metric names a PromQL expression reads: identifiers outside braces, strings and `[ranges]` that are not PromQL words or label names of a `by (...)`. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/label_values\(([^,()]+),[^)]*\)/g, '$1')
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(?:by|without|on|ignoring)\s*\([^)]*\)/g, '');
  return [...stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)]
    .map((m) => m[0])
    .filter((w) => !PROMQL.has(w) && !/^\d/.test(w));
}

function allExprs(): { panel: string; expr: string }[] {
  const out: { panel: string; expr: string }[] = [];
  const walk = (panels: Panel[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) out.push({ panel: p.title, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(dashboard.panels);
  for (const v of dashboard.templating.list) if (v.definition) out.push({ panel: 'variable', expr: v.definition });
  return out;
}

/** A histogram's series carry its family name plus one of these. */
const HISTOGRAM_SUFFIXES = ['_bucket', '_count', '_sum'];

describe('docs/dashboards/waybill.json', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('reads its metric names from the expressions (the parser itself)', () => {
    expect(
      metricNames('histogram_quantile(0.95, sum by (le, route) (rate(waybill_x_bucket{instance=~"$i",a="b"}[5m])))'),
    ).toEqual(['waybill_x_bucket']);
    expect(metricNames('label_values(waybill_y_count, instance)')).toEqual(['waybill_y_count']);
    expect(metricNames('sum(rate(a_total{x="y"}[1m])) / sum(rate(b_total[1m]))')).toEqual(['a_total', 'b_total']);
  });

  it('queries only metrics that /metrics of a running app exposes', async () => {
    const res = await t.root.get('/metrics');
    expect(res.status).toBe(200);
    const scrape = Scrape.parse(String(res.body));
    const exposed = (name: string) =>
      scrape.types.has(name) ||
      scrape.samples.some((s) => s.name === name) ||
      HISTOGRAM_SUFFIXES.some(
        (sfx) => name.endsWith(sfx) && scrape.types.get(name.slice(0, -sfx.length)) === 'histogram',
      );
    const exprs = allExprs();
    expect(exprs.length).toBeGreaterThan(20);
    const missing = exprs.flatMap(({ panel, expr }) =>
      metricNames(expr)
        .filter((n) => !exposed(n))
        .map((n) => `${panel}: ${n}`),
    );
    expect(missing).toEqual([]);
  });

  it('has a panel for every waybill_ metric the app exposes', async () => {
    const scrape = Scrape.parse(String((await t.root.get('/metrics')).body));
    const used = new Set(allExprs().flatMap(({ expr }) => metricNames(expr)));
    const family = (n: string) =>
      HISTOGRAM_SUFFIXES.reduce((f, sfx) => (f.endsWith(sfx) ? f.slice(0, -sfx.length) : f), n);
    const usedFamilies = new Set([...used].map(family));
    const unused = [...scrape.types.keys()].filter((n) => n.startsWith('waybill_') && !usedFamilies.has(n));
    expect(unused).toEqual([]);
  });
});
