// A grid of charts, one per metric key, each overlaying the given runs. Shared by the run
// page (one run) and the compare page (2 to 50 runs).
import { useMemo } from 'preact/hooks';
import { Chart, CHART_HEIGHT } from './Chart';
import { ErrorBox } from './common';
import { formatterFor } from '../lib/format';
import type { Histories } from '../lib/histories';
import { lineOf, stepRange, type Line, type XMode } from '../lib/series';

export interface ShownRun {
  id: string;
  label: string;
  color: string;
  start: number | null;
}

export interface View {
  xMode: XMode;
  logY: boolean;
  smoothing: number;
  zoom: [number, number] | null;
  setZoom: (steps: [number, number] | null) => void;
}

export function linesFor(histories: Histories, runs: ShownRun[], key: string, xMode: XMode): Line[] | null {
  const lines: Line[] = [];
  let waiting = false;
  for (const run of runs) {
    const h = histories.get(run.id, key);
    if (h === undefined) waiting = true;
    else if (h && h.steps.length) lines.push(lineOf(h, run.label, run.color, xMode, run.start));
  }
  return lines.length || !waiting ? lines : null;
}

export function MetricChart({ metric, runs, histories, view, syncKey, height }: { metric: string; runs: ShownRun[]; histories: Histories; view: View; syncKey: string; height?: number }) {
  const lines = useMemo(() => linesFor(histories, runs, metric, view.xMode), [histories.version, runs, metric, view.xMode]);
  if (lines === null)
    // while the histories load: the chart's frame at its final size (the plot's height, a
    // legend row per run), so the charts and what is under them do not move when they come
    return (
      <figure class="chart" aria-busy="true">
        <figcaption class="chart-title">{metric}</figcaption>
        <div class="chart-plot chart-pending" style={{ height: `${height ?? CHART_HEIGHT}px` }}>
          <span class="skeleton" />
        </div>
        <div class="legend" aria-hidden="true">
          <div class="legend-x">&nbsp;</div>
          {runs.map((run) => (
            <div class="legend-row" key={run.id}>
              <span class="swatch" style={{ background: run.color }} />
              <span class="legend-name">{run.label}</span>
            </div>
          ))}
        </div>
      </figure>
    );
  if (!lines.length) return null;
  const onZoom = (range: [number, number] | null) => {
    if (!range) return view.setZoom(null);
    if (view.xMode === 'step') return view.setZoom([Math.floor(range[0]), Math.ceil(range[1])]);
    let lo = Infinity;
    let hi = -Infinity;
    for (const line of lines) {
      const r = stepRange(line, range[0], range[1]);
      if (r) {
        lo = Math.min(lo, r[0]);
        hi = Math.max(hi, r[1]);
      }
    }
    if (Number.isFinite(lo)) view.setZoom([lo, hi]);
  };
  return (
    <Chart
      id={metric}
      title={metric}
      lines={lines}
      xMode={view.xMode}
      logY={view.logY}
      smoothing={view.smoothing}
      syncKey={syncKey}
      onZoom={onZoom}
      format={formatterFor(metric)}
      height={height}
    />
  );
}

export function MetricGrid({ keys, runs, histories, view, syncKey = 'metrics', height }: { keys: string[]; runs: ShownRun[]; histories: Histories; view: View; syncKey?: string; height?: number }) {
  return (
    <>
      {histories.error !== null && <ErrorBox what="load the metric histories" error={histories.error} />}
      <div class="chart-grid">
        {keys.map((k) => (
          <MetricChart key={k} metric={k} runs={runs} histories={histories} view={view} syncKey={syncKey} height={height} />
        ))}
      </div>
    </>
  );
}

export function ViewControls({ view, set, zoomed }: { view: View; set: (patch: Record<string, string | null>) => void; zoomed: boolean }) {
  return (
    <div class="controls" role="group" aria-label="Chart options">
      <label>
        x-axis
        <select value={view.xMode} onChange={(e) => set({ x: (e.target as HTMLSelectElement).value, zoom: null })}>
          <option value="step">step</option>
          <option value="time">wall time</option>
          <option value="rel">relative time</option>
        </select>
      </label>
      <label>
        <input type="checkbox" checked={view.logY} onChange={() => set({ log: view.logY ? null : '1' })} /> log y
      </label>
      <label>
        smoothing
        <input
          type="range"
          min="0"
          max="0.99"
          step="0.01"
          value={view.smoothing}
          onInput={(e) => {
            const v = Number((e.target as HTMLInputElement).value);
            set({ smooth: v > 0 ? v.toFixed(2) : null });
          }}
          aria-label="smoothing (exponential moving average weight)"
        />
        <output class="mono">{view.smoothing.toFixed(2)}</output>
      </label>
      {zoomed ? (
        <button type="button" class="small" onClick={() => view.setZoom(null)}>
          Reset zoom (steps {view.zoom?.join('–')})
        </button>
      ) : (
        <span class="muted">drag on a chart to zoom, double-click to reset</span>
      )}
    </div>
  );
}

export function viewFromParams(params: URLSearchParams, setZoom: (z: [number, number] | null) => void, defaultX: XMode = 'step'): View {
  const x = params.get('x');
  const zoomText = params.get('zoom');
  const zoomParts = zoomText ? zoomText.split(',').map(Number) : null;
  const smoothing = Math.min(0.99, Math.max(0, Number(params.get('smooth') ?? 0) || 0));
  return {
    xMode: x === 'time' || x === 'rel' || x === 'step' ? x : defaultX,
    logY: params.get('log') === '1',
    smoothing,
    zoom: zoomParts && zoomParts.length === 2 && zoomParts.every(Number.isFinite) ? [zoomParts[0], zoomParts[1]] : null,
    setZoom,
  };
}
