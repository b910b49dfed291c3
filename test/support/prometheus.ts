/** One sample line of the Prometheus text format: `name{label="value",...} 12.5`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

const unescape = (v: string) => v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

/** A parsed scrape of GET /metrics, queried by metric name and a subset of labels. */
export class Scrape {
  private constructor(
    readonly samples: readonly Sample[],
    /** Metric families announced by `# TYPE` lines, with their type. */
    readonly types: ReadonlyMap<string, string>,
  ) {}

  static parse(text: string): Scrape {
    const samples: Sample[] = [];
    const types = new Map<string, string>();
    for (const line of text.split('\n')) {
      if (line.startsWith('# TYPE ')) {
        const [, , name, type] = line.split(' ');
        types.set(name, type);
        continue;
      }
      if (line === '' || line.startsWith('#')) continue;
      const m = SAMPLE.exec(line);
      if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
      const labels: Record<string, string> = {};
      for (const [, k, v] of (m[2] ?? '').matchAll(LABEL)) labels[k] = unescape(v);
      samples.push({ name: m[1], labels, value: parseValue(m[3]) });
    }
    return new Scrape(samples, types);
  }

  /** Samples of that name whose labels include all of `labels`. */
  series(name: string, labels: Record<string, string> = {}): Sample[] {
    return this.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  }

  /** The sum of the matching samples; 0 when there are none (a counter not yet incremented). */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.series(name, labels).reduce((sum, s) => sum + s.value, 0);
  }

  /** How much the matching samples grew since an earlier scrape. */
  delta(before: Scrape, name: string, labels: Record<string, string> = {}): number {
    return this.value(name, labels) - before.value(name, labels);
  }

  /** Distinct values of one label among the samples of that name. */
  labelValues(name: string, label: string): string[] {
    return [...new Set(this.series(name).map((s) => s.labels[label]))].filter((v) => v !== undefined).sort();
  }
}
