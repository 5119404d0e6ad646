// Under the test flag (localStorage "autolog.debug" = "1"), charts register themselves on
// window.__autolog so browser tests and the benchmark can read what is drawn.
import type uPlot from 'uplot';
import type { Line } from './series';

export interface ChartEntry {
  id: string;
  uplot: uPlot;
  lines: () => { label: string; runId: string; steps: number[]; values: (number | null)[]; highs: (number | null)[] | null; lows: (number | null)[] | null; downsampled: boolean }[];
  draws: number;
  drawn: { t: number; lines: number }[]; // performance.now() of each draw (the first 100)
}

interface Registry {
  charts: Record<string, ChartEntry>;
  draws: number;
  media?: Record<string, () => unknown>; // what each media view shows (registerView)
}

declare global {
  interface Window {
    __autolog?: Registry;
  }
}

let enabled: boolean | null = null;

function on(): boolean {
  if (enabled === null) {
    try {
      enabled = localStorage.getItem('autolog.debug') === '1';
    } catch {
      enabled = false;
    }
  }
  return enabled;
}

export function registerChart(id: string, plot: uPlot, lines: () => Line[]): ChartEntry | null {
  if (!on()) return null;
  const registry = (window.__autolog ??= { charts: {}, draws: 0 });
  const entry: ChartEntry = {
    id,
    uplot: plot,
    draws: 0,
    drawn: [],
    lines: () =>
      lines().map((l) => ({ label: l.label, runId: l.runId, steps: l.steps, values: l.ys, highs: l.highs, lows: l.lows, downsampled: l.downsampled })),
  };
  registry.charts[id] = entry;
  return entry;
}

export function unregisterChart(id: string, entry: ChartEntry | null): void {
  if (entry && window.__autolog?.charts[id] === entry) delete window.__autolog.charts[id];
}

export function countDraw(entry: ChartEntry | null): void {
  if (!entry || !window.__autolog) return;
  entry.draws++;
  if (entry.drawn.length < 100) entry.drawn.push({ t: performance.now(), lines: entry.lines().length });
  window.__autolog.draws++;
}

/** Under the test flag, `read()` says what the view `id` shows (window.__autolog.media[id]);
 * returns the function that takes it away again. */
export function registerView(id: string, read: () => unknown): () => void {
  if (!on()) return () => {};
  const registry = (window.__autolog ??= { charts: {}, draws: 0 });
  const views = (registry.media ??= {});
  views[id] = read;
  return () => {
    if (views[id] === read) delete views[id];
  };
}
