// Turning history responses into chart series: x modes, smoothing, colours.
import { toNumber } from './format';
import type { History } from './types';

export type XMode = 'step' | 'time' | 'rel';

export interface Line {
  runId: string;
  label: string;
  color: string;
  xs: number[]; // ascending
  ys: (number | null)[];
  lows: (number | null)[] | null; // the envelope when downsampled
  highs: (number | null)[] | null;
  steps: number[];
  downsampled: boolean;
  total: number;
}

const PALETTE = [
  '#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf',
  '#7f7f7f', '#bcbd22', '#3366cc', '#dc3912', '#109618', '#990099', '#0099c6', '#dd4477',
];

export function colorOf(index: number): string {
  if (index < PALETTE.length) return PALETTE[index];
  return `hsl(${(index * 137.508) % 360}, 60%, 45%)`;
}

function numbers(values: (number | string | null)[] | undefined): (number | null)[] {
  return (values ?? []).map((v) => {
    const n = toNumber(v);
    return n === null || Number.isNaN(n) ? null : n;
  });
}

/** One run's line for one metric, its x in the chosen mode. */
export function lineOf(
  history: History,
  label: string,
  color: string,
  xMode: XMode,
  runStart: number | null,
): Line {
  const start = runStart ?? history.timestamps[0] ?? 0;
  let xs: number[] =
    xMode === 'step'
      ? history.steps.slice()
      : xMode === 'time'
        ? history.timestamps.map((t) => t / 1000)
        : history.timestamps.map((t) => (t - start) / 1000);
  let ys = numbers(history.values);
  let lows = history.downsampled ? numbers(history.min) : null;
  let highs = history.downsampled ? numbers(history.max) : null;
  let steps = history.steps.slice();
  if (!ascending(xs)) {
    const order = xs.map((_, i) => i).sort((a, b) => xs[a] - xs[b]);
    const pick = <T,>(a: T[]) => order.map((i) => a[i]);
    xs = pick(xs);
    ys = pick(ys);
    steps = pick(steps);
    if (lows) lows = pick(lows);
    if (highs) highs = pick(highs);
  }
  dedupe(xs, [ys, steps, lows, highs]);
  return { runId: history.run_id, label, color, xs, ys, lows, highs, steps, downsampled: history.downsampled, total: history.total };
}

function ascending(xs: number[]): boolean {
  for (let i = 1; i < xs.length; i++) if (xs[i] < xs[i - 1]) return false;
  return true;
}

/** uPlot needs strictly increasing x: the last of equal x values wins (as a logged re-try). */
function dedupe(xs: number[], columns: (unknown[] | null)[]): void {
  let w = 0;
  for (let r = 0; r < xs.length; r++) {
    if (w > 0 && xs[r] === xs[w - 1]) w--;
    xs[w] = xs[r];
    for (const c of columns) if (c) c[w] = c[r];
    w++;
  }
  xs.length = w;
  for (const c of columns) if (c) c.length = w;
}

/** Append newer points (live); points at or before the last x already held are ignored. */
export function extend(line: Line, more: Line): Line {
  const last = line.steps.length ? line.steps[line.steps.length - 1] : -Infinity;
  const from = more.steps.findIndex((s) => s > last);
  if (from < 0) return line;
  const n = more.steps.length - from;
  const tail = (a: (number | null)[] | null) => (a ?? more.ys).slice(from);
  return {
    ...line,
    xs: [...line.xs, ...more.xs.slice(from)],
    ys: [...line.ys, ...more.ys.slice(from)],
    steps: [...line.steps, ...more.steps.slice(from)],
    lows: line.lows ? [...line.lows, ...tail(more.lows)] : null,
    highs: line.highs ? [...line.highs, ...tail(more.highs)] : null,
    total: line.total + n,
  };
}

/** Exponential moving average with TensorBoard's debiasing; nulls stay gaps. */
export function smooth(ys: (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) return ys;
  const out: (number | null)[] = new Array(ys.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null || !Number.isFinite(y)) {
      out[i] = y;
      continue;
    }
    last = last * weight + (1 - weight) * y;
    n++;
    out[i] = last / (1 - Math.pow(weight, n));
  }
  return out;
}

/** The y at the last x <= `x` in a line (binary search), or null before its first point. */
export function valueAt(line: Line, x: number): { y: number | null; step: number } | null {
  let lo = 0;
  let hi = line.xs.length - 1;
  if (hi < 0 || x < line.xs[0]) return null;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (line.xs[mid] <= x) lo = mid;
    else hi = mid - 1;
  }
  return { y: line.ys[lo], step: line.steps[lo] };
}

/** The step range a run's points cover between two x values (for re-asking the server). */
export function stepRange(line: Line, lo: number, hi: number): [number, number] | null {
  let first = -1;
  let last = -1;
  for (let i = 0; i < line.xs.length; i++) {
    if (line.xs[i] >= lo && first < 0) first = i;
    if (line.xs[i] <= hi) last = i;
  }
  if (first < 0 || last < first) return null;
  // one point beyond each edge, so lines run to the chart's borders
  return [line.steps[Math.max(0, first - 1)], line.steps[Math.min(line.steps.length - 1, last + 1)]];
}
