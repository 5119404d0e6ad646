// A uPlot chart of x/y series that each have their own x values, in any order (uPlot's mode 2):
// curves (ROC, precision-recall: x repeats where the curve steps) and scatters
// (predicted-vs-true, residuals). One per evaluation plot; several runs overlay in one.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { registerView } from '../../lib/debug';
import { fmtNumber, fmtTicks } from '../../lib/format';

export interface XYSeries {
  label: string;
  color: string;
  xs: number[];
  ys: number[];
  style?: 'line' | 'dots' | 'guide'; // guide: a faint dashed reference (the diagonal)
  runId?: string;
}

export interface XYChartProps {
  id: string; // in the test registry: window.__autolog.media[id]
  title: string;
  series: XYSeries[];
  xLabel: string;
  yLabel: string;
  xRange?: [number, number];
  yRange?: [number, number];
  height?: number;
  children?: preact.ComponentChildren; // under the chart: a legend, a summary
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/** Filled dots at each point (uPlot's own points assume one shared x). */
function dots(radius: number): uPlot.Series.PathBuilder {
  return (u, seriesIdx) => {
    const [xs, ys] = u.data[seriesIdx] as unknown as [number[], number[]];
    const fill = new Path2D();
    const r = radius * devicePixelRatio;
    for (let i = 0; i < xs.length; i++) {
      if (!Number.isFinite(ys[i]) || !Number.isFinite(xs[i])) continue;
      const x = u.valToPos(xs[i], 'x', true);
      const y = u.valToPos(ys[i], 'y', true);
      fill.moveTo(x + r, y);
      fill.arc(x, y, r, 0, 2 * Math.PI);
    }
    return { stroke: null, fill, clip: null, flags: 0 };
  };
}

function alpha(color: string, a: number): string {
  if (!color.startsWith('#')) return color;
  const n = parseInt(color.slice(1), 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

function seriesOf(s: XYSeries): uPlot.Series {
  const common = { label: s.label, points: { show: false } } as uPlot.Series;
  if (s.style === 'dots')
    return { ...common, stroke: s.color, fill: alpha(s.color, 0.55), width: 0, paths: dots(2.5) };
  if (s.style === 'guide') return { ...common, stroke: cssVar('--muted', '#888'), width: 1, dash: [5, 5], paths: uPlot.paths.linear!() };
  return { ...common, stroke: s.color, width: 2, paths: uPlot.paths.linear!() };
}

function range(fixed: [number, number] | undefined): uPlot.Scale.Range | undefined {
  if (fixed) return () => fixed;
  return (_u, lo, hi) => {
    if (lo === null || hi === null || !Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
    const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.1 || 1;
    return [lo - pad, hi + pad];
  };
}

export function XYChart(props: XYChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const latest = useRef(props);
  latest.current = props;
  const shape = JSON.stringify([props.series.map((s) => [s.label, s.color, s.style, s.xs.length, s.xs[0], s.ys[s.ys.length - 1]]), props.xRange, props.yRange, props.height]);

  useEffect(() => {
    const el = box.current!;
    const p = latest.current;
    const fg = cssVar('--muted', '#666');
    const grid = cssVar('--grid', 'rgba(128,128,128,0.15)');
    const axis = (label: string): uPlot.Axis => ({
      label,
      stroke: fg,
      grid: { stroke: grid, width: 1 },
      ticks: { stroke: grid, width: 1 },
      values: (_u, ticks) => fmtTicks(ticks, fmtNumber),
      labelSize: 18,
    });
    const opts: uPlot.Options = {
      mode: 2,
      width: Math.max(200, el.clientWidth),
      height: p.height ?? 260,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false, auto: !p.xRange, range: range(p.xRange) }, y: { auto: !p.yRange, range: range(p.yRange) } },
      axes: [axis(p.xLabel), { ...axis(p.yLabel), size: 56 }],
      series: [{}, ...p.series.map(seriesOf)],
    };
    const data = [null, ...p.series.map((s) => [s.xs, s.ys])] as unknown as uPlot.AlignedData;
    const plot = new uPlot(opts, data, el);
    const unregister = registerView(p.id, () => ({
      title: latest.current.title,
      series: latest.current.series.filter((s) => s.style !== 'guide').map((s) => ({ label: s.label, runId: s.runId ?? null, xs: s.xs, ys: s.ys })),
    }));
    const observer = new ResizeObserver(() => {
      if (el.clientWidth > 0 && Math.abs(plot.width - el.clientWidth) > 1) plot.setSize({ width: el.clientWidth, height: plot.height });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      unregister();
      plot.destroy();
    };
  }, [props.id, shape]);

  return (
    <figure class="chart xy-chart" aria-label={`chart of ${props.title}`} data-view={props.id}>
      <figcaption class="chart-title" title={props.title}>
        {props.title}
      </figcaption>
      <div class="chart-plot" ref={box} />
      {props.children}
    </figure>
  );
}
