// How values read: short, aligned, never "NaN" without saying so.
import type { Value } from './types';

/** A number in 5 significant digits (or `digits`), exponent form when very small or large. */
export function fmtNumber(value: number, digits = 5): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value) && Math.abs(value) < 1e15) return value.toLocaleString('en-US');
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(digits - 2).replace(/\.?0+e/, 'e');
  return String(Number(value.toPrecision(digits)));
}

/** Tick labels that differ from each other: more digits until they do. */
export function fmtTicks(ticks: number[], format: Formatter): string[] {
  let labels = ticks.map((t) => format(t));
  for (let digits = 3; digits <= 10 && new Set(labels).size < labels.length; digits++)
    labels = ticks.map((t) => format(t, digits));
  return labels;
}

export type Formatter = (v: number, digits?: number) => string;

export function fmtValue(value: Value | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return fmtNumber(value);
  if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') return value;
  return String(value);
}

export function toNumber(value: unknown): number | null {
  if (typeof value === 'number') return value;
  if (value === 'Infinity') return Infinity;
  if (value === '-Infinity') return -Infinity;
  return null;
}

const pad = (n: number) => String(n).padStart(2, '0');

export function fmtTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad(Math.floor(s % 60))}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${pad(m % 60)}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function runDuration(run: { start_time: number | null; end_time: number | null; status: string }): number | null {
  if (run.start_time === null) return null;
  if (run.end_time !== null) return run.end_time - run.start_time;
  return run.status === 'RUNNING' ? Date.now() - run.start_time : null;
}

/** Bytes in binary units; `digits` significant digits when given (tick labels). */
export function fmtBytes(n: number, digits?: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  if (i === 0) return `${digits ? Number(n.toPrecision(digits)) : n} B`;
  return `${digits ? Number(n.toPrecision(digits)) : n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
}

/** A unit-aware formatter for a metric key (system metrics carry their unit in the name). */
export function formatterFor(key: string): Formatter {
  const unit = (suffix: string, decimals: number) => (v: number, digits?: number) =>
    `${digits ? fmtNumber(v, digits) : fmtNumber(Number(v.toFixed(decimals)))} ${suffix}`;
  if (key.endsWith('_bytes_per_s')) return (v, digits) => fmtBytes(v, digits) + '/s';
  if (key.endsWith('_bytes')) return fmtBytes;
  if (key.endsWith('_percent')) return unit('%', 1);
  if (key.endsWith('_watts')) return unit('W', 1);
  if (key.endsWith('_celsius')) return unit('°C', 1);
  if (key.endsWith('_mhz')) return unit('MHz', 0);
  return fmtNumber;
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}
