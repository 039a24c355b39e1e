// Prometheus text exposition (format 0.0.4), as much as the lab reads: samples with their
// labels. Enough to compare a node's metrics with what its socket and the ToRs say.

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export class Metrics {
  constructor(readonly samples: readonly Sample[]) {}

  /** Samples of one metric whose labels include `match`. */
  find(name: string, match: Readonly<Record<string, string>> = {}): Sample[] {
    return this.samples.filter(
      (s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v),
    );
  }

  /** The one value of a metric with these labels, or undefined. */
  value(name: string, match: Readonly<Record<string, string>> = {}): number | undefined {
    const f = this.find(name, match);
    if (f.length > 1) throw new Error(`${name} ${JSON.stringify(match)}: ${f.length} samples`);
    return f[0]?.value;
  }
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): Metrics {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (m === null) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL))
      labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
    const v = m[3]!;
    out.push({ name: m[1]!, labels, value: v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v) });
  }
  return new Metrics(out);
}
