// One histogram key over steps: a heatmap (a column per step, the values up the side, the
// colour each bin's count within its step, as TensorBoard's distributions), and the histogram
// of the chosen step as bars. Up to MAX_COLUMNS steps, evenly spread, are drawn.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ErrorBox } from '../common';
import { registerView } from '../../lib/debug';
import { fmtNumber } from '../../lib/format';
import { spread, stepLabel, useFiles, useMediaItems, useStepIndex } from '../../lib/media';
import type { MediaItem, MediaKey } from '../../lib/types';
import { Card, hasSlider, Pending, SliderSpace } from './Card';
import { StepSlider } from './StepSlider';

const MAX_COLUMNS = 64;
const ROWS = 48;
const VIRIDIS = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

export interface Histogram {
  counts: number[];
  edges: number[];
}

function viridis(t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const c = VIRIDIS[i].map((v, k) => Math.round(v + (VIRIDIS[i + 1][k] - v) * f));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/** The value range every histogram shown spans. */
function extent(hists: Histogram[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const h of hists)
    if (h.edges.length > 1) {
      lo = Math.min(lo, h.edges[0]);
      hi = Math.max(hi, h.edges[h.edges.length - 1]);
    }
  if (!Number.isFinite(lo)) return [0, 1];
  return lo === hi ? [lo - 0.5, hi + 0.5] : [lo, hi];
}

/** A histogram's counts spread over `rows` equal bins of [lo, hi] (each bin's count shared by
 * the rows it overlaps). */
export function rebin(h: Histogram, lo: number, hi: number, rows: number): number[] {
  const out = new Array<number>(rows).fill(0);
  const size = (hi - lo) / rows;
  for (let k = 0; k < h.counts.length; k++) {
    const a = h.edges[k];
    const b = h.edges[k + 1];
    const count = h.counts[k];
    if (!count) continue;
    if (!(b > a)) {
      out[Math.min(rows - 1, Math.max(0, Math.floor((a - lo) / size)))] += count;
      continue;
    }
    const first = Math.max(0, Math.floor((a - lo) / size));
    const last = Math.min(rows - 1, Math.floor((b - lo) / size));
    for (let r = first; r <= last; r++) {
      const overlap = Math.min(b, lo + (r + 1) * size) - Math.max(a, lo + r * size);
      if (overlap > 0) out[r] += (count * overlap) / (b - a);
    }
  }
  return out;
}

function useCanvas(draw: (ctx: CanvasRenderingContext2D, width: number, height: number) => void, deps: unknown[]) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const canvas = ref.current!;
    const paint = () => {
      const width = canvas.clientWidth;
      const height = canvas.clientHeight;
      if (!width || !height) return;
      canvas.width = Math.round(width * devicePixelRatio);
      canvas.height = Math.round(height * devicePixelRatio);
      const ctx = canvas.getContext('2d')!;
      ctx.setTransform(devicePixelRatio, 0, 0, devicePixelRatio, 0, 0);
      ctx.clearRect(0, 0, width, height);
      draw(ctx, width, height);
    };
    paint();
    const observer = new ResizeObserver(paint);
    observer.observe(canvas);
    return () => observer.disconnect();
  }, deps);
  return ref;
}

function Heatmap({ columns, selected, onPick, range }: { columns: { item: MediaItem; hist: Histogram }[]; selected: number; onPick: (column: number) => void; range: [number, number] }) {
  const [hover, setHover] = useState<string>('');
  const ref = useCanvas(
    (ctx, width, height) => {
      const n = columns.length;
      const w = width / n;
      const h = height / ROWS;
      columns.forEach(({ hist }, c) => {
        const rows = rebin(hist, range[0], range[1], ROWS);
        const top = Math.max(...rows);
        rows.forEach((v, r) => {
          if (v <= 0 || top <= 0) return;
          ctx.fillStyle = viridis(Math.sqrt(v / top));
          ctx.fillRect(c * w, height - (r + 1) * h, Math.ceil(w), Math.ceil(h));
        });
      });
      ctx.strokeStyle = cssVar('--fg', '#000');
      ctx.lineWidth = 2;
      ctx.strokeRect(selected * w + 1, 1, Math.max(2, w - 2), height - 2);
    },
    [columns, selected, range[0], range[1]],
  );
  const at = (event: MouseEvent) => {
    const box = (event.currentTarget as HTMLCanvasElement).getBoundingClientRect();
    const column = Math.min(columns.length - 1, Math.max(0, Math.floor(((event.clientX - box.left) / box.width) * columns.length)));
    const value = range[1] - ((event.clientY - box.top) / box.height) * (range[1] - range[0]);
    return { column, value };
  };
  return (
    <div class="heatmap">
      <div class="heatmap-y mono">
        <span>{fmtNumber(range[1], 3)}</span>
        <span>{fmtNumber(range[0], 3)}</span>
      </div>
      <div class="heatmap-main">
        <canvas
          ref={ref}
          class="heatmap-canvas"
          aria-label="Counts per bin (up) for each step (across); click a step to show it"
          onClick={(e) => onPick(at(e as unknown as MouseEvent).column)}
          onMouseMove={(e) => {
            const { column, value } = at(e as unknown as MouseEvent);
            setHover(`step ${columns[column]?.item.step} · value ${fmtNumber(value, 3)}`);
          }}
          onMouseLeave={() => setHover('')}
        />
        <div class="heatmap-x mono muted">
          <span>step {columns[0]?.item.step}</span>
          <span class="heatmap-hover">{hover}</span>
          <span>step {columns[columns.length - 1]?.item.step}</span>
        </div>
      </div>
    </div>
  );
}

function Bars({ hist }: { hist: Histogram }) {
  const [hover, setHover] = useState('');
  const [lo, hi] = extent([hist]);
  const top = Math.max(1, ...hist.counts);
  const ref = useCanvas(
    (ctx, width, height) => {
      ctx.fillStyle = cssVar('--accent', '#2563eb');
      hist.counts.forEach((count, k) => {
        const x0 = ((hist.edges[k] - lo) / (hi - lo)) * width;
        const x1 = ((hist.edges[k + 1] - lo) / (hi - lo)) * width;
        const h = (count / top) * (height - 2);
        ctx.fillRect(x0, height - h, Math.max(1, x1 - x0 - (x1 - x0 > 3 ? 1 : 0)), h);
      });
    },
    [hist],
  );
  return (
    <div class="histogram-bars">
      <canvas
        ref={ref}
        class="bars-canvas"
        aria-label="The chosen step's histogram"
        onMouseMove={(e) => {
          const box = (e.currentTarget as HTMLCanvasElement).getBoundingClientRect();
          const value = lo + ((e.clientX - box.left) / box.width) * (hi - lo);
          const k = hist.edges.findIndex((edge, i) => i < hist.counts.length && value >= edge && value <= hist.edges[i + 1]);
          setHover(k >= 0 ? `[${fmtNumber(hist.edges[k], 3)}, ${fmtNumber(hist.edges[k + 1], 3)}): ${fmtNumber(hist.counts[k])}` : '');
        }}
        onMouseLeave={() => setHover('')}
      />
      <div class="heatmap-x mono muted">
        <span>{fmtNumber(lo, 3)}</span>
        <span class="heatmap-hover">{hover || `max ${fmtNumber(top)}`}</span>
        <span>{fmtNumber(hi, 3)}</span>
      </div>
    </div>
  );
}

function Stats({ meta }: { meta: Record<string, unknown> }) {
  const parts: string[] = [];
  const num = (k: string) => (typeof meta[k] === 'number' ? (meta[k] as number) : null);
  if (num('count') !== null) parts.push(`${fmtNumber(num('count')!)} values`);
  if (num('mean') !== null) parts.push(`mean ${fmtNumber(num('mean')!, 4)}`);
  if (num('min') !== null) parts.push(`min ${fmtNumber(num('min')!, 4)}`);
  if (num('max') !== null) parts.push(`max ${fmtNumber(num('max')!, 4)}`);
  if (num('nan')) parts.push(`${fmtNumber(num('nan')!)} NaN`);
  if (num('inf')) parts.push(`${fmtNumber(num('inf')!)} ±inf`);
  if (num('sampled') !== null && num('sampled') !== num('count')) parts.push(`${fmtNumber(num('sampled')!)} sampled`);
  return <p class="media-stats muted">{parts.join(' · ')}</p>;
}

export function HistogramCard({ runId, entry }: { runId: string; entry: MediaKey }) {
  const items = useMediaItems(runId, entry.key, entry.count);
  const list = items.data ?? [];
  const [index, setIndex] = useStepIndex(list.length);
  const shown = useMemo(() => [...new Set([...spread(list.length, MAX_COLUMNS), index])].sort((a, b) => a - b), [list, index]);
  const files = useFiles<Histogram>(runId, shown.map((i) => list[i]?.path).filter(Boolean));
  const columns = useMemo(
    () => shown.filter((i) => files.data.has(list[i]?.path)).map((i) => ({ index: i, item: list[i], hist: files.data.get(list[i].path)! })),
    [shown.join(), files.data, list],
  );
  const range = useMemo(() => extent(columns.map((c) => c.hist)), [columns]);
  const selected = columns.findIndex((c) => c.index === index);
  const current = selected >= 0 ? columns[selected] : null;
  useEffect(
    () =>
      registerView(`histogram:${entry.key}`, () => ({
        steps: columns.map((c) => c.item.step),
        counts: columns.map((c) => c.hist.counts),
        edges: columns.map((c) => c.hist.edges),
        selected: current ? { step: current.item.step, counts: current.hist.counts, edges: current.hist.edges } : null,
      })),
    [entry.key, columns.length, current],
  );
  let body;
  if ((items.error && !items.data) || files.error)
    body = <ErrorBox what={`load the histograms of ${entry.key}`} error={items.error ?? files.error} retry={items.reload} />;
  else if (!columns.length) body = <Pending entry={entry} />;
  else
    body = (
      <div class="media-body media-body-histogram">
        <Heatmap columns={columns} selected={Math.max(0, selected)} onPick={(c) => setIndex(columns[c].index)} range={range} />
        {current && <Bars hist={current.hist} />}
        {current && <Stats meta={current.item.meta} />}
      </div>
    );
  return (
    <Card entry={entry} aside={list.length ? `${stepLabel(list, index)} · ${list.length} step${list.length === 1 ? '' : 's'}${list.length > MAX_COLUMNS ? `, ${MAX_COLUMNS} drawn` : ''}` : ''}>
      {body}
      {list.length > 0 ? <StepSlider steps={list.map((m) => m.step)} index={index} onChange={setIndex} label={entry.key} /> : hasSlider(entry) && <SliderSpace />}
    </Card>
  );
}
