// Parallel coordinates (SVG): one vertical axis per param that varies, the chosen metric on
// the last axis, one line per run coloured by that metric (low blue to high red).
import type { RefObject } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { fmtValue } from '../lib/format';
import type { Value } from '../lib/types';

export interface PcRun {
  id: string;
  label: string;
  params: Record<string, Value>;
  metric: number | null;
}

interface Axis {
  key: string;
  label: string;
  pos: (v: Value | number | null | undefined) => number | null; // 0 (bottom) .. 1 (top)
  ticks: { at: number; text: string }[];
}

function numericAxis(key: string, label: string, values: number[]): Axis {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const log = lo > 0 && hi / lo >= 100;
  const f = (v: number) => (log ? Math.log10(v) : v);
  const span = f(hi) - f(lo) || 1;
  const pos = (v: Value | number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) && (!log || v > 0) ? (f(v) - f(lo)) / span : null);
  const ticks = lo === hi ? [{ at: 0.5, text: fmtValue(lo) }] : [{ at: 0, text: fmtValue(lo) }, { at: 1, text: fmtValue(hi) }];
  return { key, label: label + (log ? ' (log)' : ''), pos: (v) => (lo === hi && typeof v === 'number' ? 0.5 : pos(v)), ticks };
}

function categoricalAxis(key: string, label: string, values: string[]): Axis {
  const cats = [...new Set(values)].sort();
  const at = (i: number) => (cats.length === 1 ? 0.5 : i / (cats.length - 1));
  return {
    key,
    label,
    pos: (v) => (v === null || v === undefined ? null : cats.indexOf(String(v)) >= 0 ? at(cats.indexOf(String(v))) : null),
    ticks: cats.slice(0, 12).map((c, i) => ({ at: at(i), text: c.length > 14 ? c.slice(0, 13) + '…' : c })),
  };
}

function heat(t: number): string {
  // blue (low) -> red (high), readable on light and dark
  const hue = 220 - 220 * Math.max(0, Math.min(1, t));
  return `hsl(${hue}, 75%, 50%)`;
}

/** The params that take two values or more among the runs: an axis of one value (or of one
 * value and runs without the param, as when an estimator's runs meet a pipeline's) shows no
 * spread. */
export function varyingParams(runs: { params: Record<string, Value> }[]): string[] {
  const keys = new Set(runs.flatMap((r) => Object.keys(r.params)));
  const values = (k: string) => runs.map((r) => r.params[k]).filter((v) => v !== null && v !== undefined);
  return [...keys].filter((k) => new Set(values(k).map((v) => JSON.stringify(v))).size > 1).sort();
}

function useWidth(): [RefObject<HTMLDivElement | null>, number] {
  const ref = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(900);
  useEffect(() => {
    const el = ref.current!;
    const observer = new ResizeObserver(() => el.clientWidth > 0 && setWidth(el.clientWidth));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}

export function ParallelCoords({ runs, metric, height = 300 }: { runs: PcRun[]; metric: string; height?: number }) {
  const [box, width] = useWidth();
  return (
    <div ref={box} class="parcoords-box">
      <Drawing runs={runs} metric={metric} width={width} height={height} />
    </div>
  );
}

function Drawing({ runs, metric, width, height }: { runs: PcRun[]; metric: string; width: number; height: number }) {
  const keys = varyingParams(runs).slice(0, 16);
  const axes: Axis[] = keys.map((k) => {
    const values = runs.map((r) => r.params[k]).filter((v) => v !== null && v !== undefined);
    return values.every((v) => typeof v === 'number') ? numericAxis(k, k, values as number[]) : categoricalAxis(k, k, values.map(String));
  });
  const scores = runs.map((r) => r.metric).filter((v): v is number => v !== null && Number.isFinite(v));
  if (scores.length) axes.push(numericAxis('metric', metric, scores));
  if (axes.length < 2) return <p class="muted">No param takes two values among these runs: nothing to draw across.</p>;
  const top = 34;
  const bottom = 26;
  const left = 60;
  const right = 60;
  const plotH = height - top - bottom;
  const x = (i: number) => left + (i * (width - left - right)) / (axes.length - 1);
  // a label as wide as the space between axes (about 7 px a character), whole on hover
  const chars = Math.max(6, Math.floor((width - left - right) / (axes.length - 1) / 7));
  const y = (p: number) => top + (1 - p) * plotH;
  const metricAxis = scores.length ? axes[axes.length - 1] : null;
  return (
    <svg class="parcoords" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`Parallel coordinates of ${keys.length} params against ${metric}`}>
      {runs.map((r) => {
        const points: string[] = [];
        axes.forEach((a, i) => {
          const p = a.pos(a.key === 'metric' ? r.metric : r.params[a.key]);
          if (p !== null) points.push(`${x(i).toFixed(1)},${y(p).toFixed(1)}`);
        });
        const t = metricAxis ? metricAxis.pos(r.metric) : null;
        return (
          <polyline key={r.id} class="pc-line" points={points.join(' ')} stroke={t === null ? '#888' : heat(t)}>
            <title>
              {r.label}: {metric} = {fmtValue(r.metric)}
            </title>
          </polyline>
        );
      })}
      {axes.map((a, i) => (
        <g class="axis" key={a.key}>
          <line x1={x(i)} x2={x(i)} y1={top} y2={top + plotH} />
          <text x={x(i)} y={top - 14} text-anchor="middle" font-weight="600">
            {a.label.length > chars ? a.label.slice(0, chars - 1) + '…' : a.label}
            <title>{a.label}</title>
          </text>
          {a.ticks.map((t) => (
            <text key={t.text + t.at} x={x(i) + 4} y={y(t.at) + 4}>
              {t.text}
            </text>
          ))}
        </g>
      ))}
    </svg>
  );
}
