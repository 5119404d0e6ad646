// One uPlot chart of one metric: a line per run (smoothed over its faint raw line), the
// min/max envelope when the server downsampled, a legend naming each run and its value under
// the cursor, cursors synced across charts, zoom by drag (the page re-asks the server for the
// range), double-click to reset.
import { useEffect, useLayoutEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { countDraw, registerChart, unregisterChart, type ChartEntry } from '../lib/debug';
import { fmtDuration, fmtNumber, fmtTicks, fmtTime, type Formatter } from '../lib/format';
import { smooth, valueAt, type Line, type XMode } from '../lib/series';

/** A chart's plot height (axes included) unless told otherwise. */
export const CHART_HEIGHT = 220;

export interface ChartProps {
  id: string;
  title: string;
  lines: Line[];
  xMode?: XMode;
  logY?: boolean;
  smoothing?: number;
  syncKey?: string;
  zoom?: [number, number] | null;
  onZoom?: (range: [number, number] | null) => void;
  format?: Formatter;
  height?: number;
}

function alpha(color: string, a: number): string {
  if (color.startsWith('#')) {
    const n = parseInt(color.slice(1), 16);
    return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
  }
  return color.replace('hsl(', 'hsla(').replace(')', `, ${a})`);
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function xLabel(x: number, mode: XMode): string {
  if (mode === 'step') return `step ${fmtNumber(x)}`;
  if (mode === 'time') return fmtTime(x * 1000);
  return `+${fmtDuration(x * 1000)}`;
}

/** The y axis's width: its longest label measured in its own font (uPlot's recipe). */
function axisSize(u: uPlot, values: string[] | null, axisIdx: number, cycleNum: number): number {
  const axis = u.axes[axisIdx] as uPlot.Axis & { _size?: number; font?: [string] };
  if (cycleNum > 1 && axis._size) return axis._size;
  let size = ((axis.ticks as { size?: number } | undefined)?.size ?? 10) + (axis.gap ?? 5) + 4;
  const longest = (values ?? []).reduce((a, v) => (String(v).length > a.length ? String(v) : a), '');
  if (longest) {
    u.ctx.font = axis.font?.[0] ?? '12px system-ui';
    size += u.ctx.measureText(longest).width / devicePixelRatio;
  }
  return Math.ceil(size);
}

interface Built {
  data: uPlot.AlignedData;
  series: uPlot.Series[];
  bands: uPlot.Band[];
  main: number[]; // the series index of each line's main series
}

function build(lines: Line[], smoothing: number, logY: boolean): Built {
  const tables: uPlot.AlignedData[] = [];
  const series: uPlot.Series[] = [{}];
  const bands: uPlot.Band[] = [];
  const main: number[] = [];
  const positive = (ys: (number | null)[]) => (logY ? ys.map((y) => (y !== null && y > 0 ? y : null)) : ys);
  for (const line of lines) {
    const columns: (number | null)[][] = [];
    const first = series.length;
    columns.push(positive(smooth(line.ys, smoothing)));
    series.push({ label: line.label, stroke: line.color, width: 1.75, spanGaps: true });
    main.push(first);
    if (smoothing > 0) {
      columns.push(positive(line.ys));
      series.push({ label: line.label + ' (raw)', stroke: alpha(line.color, 0.25), width: 1, spanGaps: true, points: { show: false } });
    }
    if (line.lows && line.highs) {
      columns.push(positive(line.highs), positive(line.lows));
      const hi = series.length;
      series.push(
        { label: line.label + ' (max)', stroke: 'transparent', width: 0, spanGaps: true, points: { show: false } },
        { label: line.label + ' (min)', stroke: 'transparent', width: 0, spanGaps: true, points: { show: false } },
      );
      bands.push({ series: [hi, hi + 1], fill: alpha(line.color, 0.15) });
    }
    tables.push([line.xs, ...columns] as uPlot.AlignedData);
  }
  const data = tables.length === 1 ? tables[0] : tables.length ? uPlot.join(tables) : ([[]] as uPlot.AlignedData);
  return { data, series, bands, main };
}

function shapeOf(p: ChartProps): string {
  const lines = p.lines.map((l) => `${l.runId}:${l.color}:${l.lows ? 1 : 0}`).join(',');
  return `${p.xMode}|${p.logY}|${(p.smoothing ?? 0) > 0}|${p.height}|${lines}`;
}

export function Chart(props: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const legend = useRef<HTMLDivElement>(null);
  const state = useRef<{ plot: uPlot | null; shape: string; entry: ChartEntry | null; props: ChartProps; main: number[] }>({
    plot: null,
    shape: '',
    entry: null,
    props,
    main: [],
  });
  state.current.props = props;

  // built before the page is painted: a frame with the plot's box still empty would be shorter,
  // and what is under the chart would move when the plot came
  useLayoutEffect(() => {
    const s = state.current;
    const p = props;
    const xMode = p.xMode ?? 'step';
    const built = build(p.lines, p.smoothing ?? 0, !!p.logY);
    const shape = shapeOf(p);
    if (s.plot && s.shape === shape) {
      s.plot.setData(built.data, !p.zoom);
      if (p.zoom) s.plot.setScale('x', { min: p.zoom[0], max: p.zoom[1] });
      s.main = built.main;
      updateLegend(s.plot);
      return;
    }
    s.plot?.destroy();
    unregisterChart(p.id, s.entry);
    s.shape = shape;
    s.main = built.main;
    const el = box.current!;
    const fg = cssVar('--muted', '#666');
    const grid = cssVar('--grid', 'rgba(128,128,128,0.15)');
    const fmt = p.format ?? fmtNumber;
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: p.height ?? CHART_HEIGHT,
      series: built.series,
      bands: built.bands,
      legend: { show: false },
      scales: { x: { time: xMode === 'time' }, y: { distr: p.logY ? 3 : 1 } },
      axes: [
        {
          stroke: fg,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid, width: 1 },
          values: xMode === 'rel' ? (_u, ticks) => ticks.map((t) => fmtDuration(t * 1000)) : undefined,
        },
        {
          stroke: fg,
          grid: { stroke: grid, width: 1 },
          ticks: { stroke: grid, width: 1 },
          values: (_u, ticks) => fmtTicks(ticks, fmt),
          size: axisSize,
        },
      ],
      cursor: {
        sync: p.syncKey ? { key: p.syncKey, setSeries: false } : undefined,
        drag: { x: true, y: false, setScale: !p.onZoom },
        points: { size: 6 },
      },
      hooks: {
        setCursor: [(u) => updateLegend(u)],
        setSelect: [
          (u) => {
            const onZoom = state.current.props.onZoom;
            if (!onZoom || u.select.width < 3) return;
            const lo = u.posToVal(u.select.left, 'x');
            const hi = u.posToVal(u.select.left + u.select.width, 'x');
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            onZoom([lo, hi]);
          },
        ],
        draw: [() => countDraw(state.current.entry)],
      },
    };
    const plot = new uPlot(opts, built.data, el);
    s.plot = plot;
    if (p.zoom) plot.setScale('x', { min: p.zoom[0], max: p.zoom[1] });
    plot.over.addEventListener('dblclick', () => state.current.props.onZoom?.(null));
    s.entry = registerChart(p.id, plot, () => state.current.props.lines);
    buildLegend();
    updateLegend(plot);
  });

  useEffect(() => {
    const el = box.current!;
    const observer = new ResizeObserver(() => {
      const plot = state.current.plot;
      if (plot && el.clientWidth > 0 && Math.abs(plot.width - el.clientWidth) > 1)
        plot.setSize({ width: el.clientWidth, height: plot.height });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      const s = state.current;
      s.plot?.destroy();
      unregisterChart(s.props.id, s.entry);
      s.plot = null;
    };
  }, []);

  function buildLegend() {
    const el = legend.current!;
    el.textContent = '';
    const head = document.createElement('div');
    head.className = 'legend-x';
    el.append(head);
    for (const line of state.current.props.lines) {
      const row = document.createElement('div');
      row.className = 'legend-row';
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = line.color;
      const name = document.createElement('span');
      name.className = 'legend-name';
      name.textContent = line.label;
      name.title = line.label;
      const value = document.createElement('span');
      value.className = 'legend-value';
      row.append(swatch, name, value);
      el.append(row);
    }
  }

  function updateLegend(u: uPlot) {
    const el = legend.current;
    if (!el) return;
    const p = state.current.props;
    const fmt = p.format ?? fmtNumber;
    const idx = u.cursor.idx;
    const x = idx !== null && idx !== undefined ? (u.data[0][idx] as number) : null;
    const head = el.firstElementChild as HTMLElement | null;
    if (head) head.textContent = x === null ? 'last' : xLabel(x, p.xMode ?? 'step');
    const rows = el.querySelectorAll<HTMLElement>('.legend-value');
    p.lines.forEach((line, i) => {
      const cell = rows[i];
      if (!cell) return;
      let text = '';
      if (x === null) {
        const n = line.ys.length;
        text = n ? (line.ys[n - 1] === null ? 'NaN' : fmt(line.ys[n - 1] as number)) : '';
      } else {
        const at = valueAt(line, x);
        if (at) {
          const smoothed = state.current.main[i] !== undefined ? (u.data[state.current.main[i]][idx!] as number | null | undefined) : undefined;
          const shown = (p.smoothing ?? 0) > 0 && smoothed !== undefined && smoothed !== null ? smoothed : at.y;
          text = shown === null ? 'NaN' : fmt(shown);
        }
      }
      cell.textContent = text;
    });
  }

  return (
    <figure class="chart" aria-label={`chart of ${props.title}`}>
      <figcaption class="chart-title" title={props.title}>
        {props.title}
      </figcaption>
      <div class="chart-plot" ref={box} />
      <div class="legend" ref={legend} />
    </figure>
  );
}
