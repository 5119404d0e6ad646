// Metric histories for a set of runs and keys: fetched once per (run, key) through
// /histories, downsampled by the server to BUCKETS points with a min/max envelope; a zoom
// (a step range) asks the server again for that range; while a run is RUNNING its series are
// extended every second with only the steps after the last one held.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api';
import type { History } from './types';
import { usePoll } from './hooks';

export const BUCKETS = 1000;
// the index follows journals every second: polling every second keeps a logged point's way to
// the screen under 3 s (the contract's 2 s poll made it up to ~3 s)
const LIVE_MS = 1000;
const MAX_KEYS = 20;
const MAX_RUNS = 50;

export interface RunRef {
  id: string;
  running: boolean;
}

const pairKey = (run: string, key: string) => `${run}\u0000${key}`;

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function merge(held: History, more: History): History {
  const last = held.steps.length ? held.steps[held.steps.length - 1] : -Infinity;
  const from = more.steps.findIndex((s) => s > last);
  if (from < 0) return held;
  const tail = <T,>(a: T[] | undefined, fallback: T[]) => (a ?? fallback).slice(from);
  return {
    ...held,
    total: held.total + (more.steps.length - from),
    steps: held.steps.concat(more.steps.slice(from)),
    values: held.values.concat(more.values.slice(from)),
    timestamps: held.timestamps.concat(more.timestamps.slice(from)),
    min: held.min ? held.min.concat(tail(more.min, more.values)) : held.min,
    max: held.max ? held.max.concat(tail(more.max, more.values)) : held.max,
  };
}

export interface Histories {
  get: (run: string, key: string) => History | null | undefined; // undefined: not yet; null: none
  error: unknown;
  pending: number;
  version: number;
}

export function useHistories(runs: RunRef[], keys: string[], zoom: [number, number] | null, buckets = BUCKETS): Histories {
  const store = useRef(new Map<string, History | null>());
  const inFlight = useRef(new Set<string>());
  const zoomKey = zoom ? zoom.join(',') : '';
  const lastZoom = useRef(zoomKey);
  const [version, setVersion] = useState(0);
  const [error, setError] = useState<unknown>(null);
  const [pending, setPending] = useState(0);
  const bump = () => setVersion((v) => v + 1);

  const range = zoom ? { min_step: Math.floor(zoom[0]), max_step: Math.ceil(zoom[1]) } : {};

  useEffect(() => {
    if (lastZoom.current !== zoomKey) {
      lastZoom.current = zoomKey;
      store.current.clear();
      inFlight.current.clear();
    }
    const missing = new Map<string, string[]>(); // run -> keys
    for (const run of runs)
      for (const key of keys) {
        const k = pairKey(run.id, key);
        if (!store.current.has(k) && !inFlight.current.has(k)) {
          if (!missing.has(run.id)) missing.set(run.id, []);
          missing.get(run.id)!.push(key);
        }
      }
    if (!missing.size) return;
    // group runs that miss the same keys: one request for a compare view's runs x key chunk
    const groups = new Map<string, string[]>();
    for (const [run, ks] of missing) {
      const g = ks.join('\u0000');
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g)!.push(run);
    }
    const requests: [string[], string[]][] = [];
    for (const [g, rs] of groups) for (const rc of chunks(rs, MAX_RUNS)) for (const kc of chunks(g.split('\u0000'), MAX_KEYS)) requests.push([rc, kc]);
    const mark = zoomKey;
    setPending((n) => n + requests.length);
    for (const [rs, ks] of requests) {
      rs.forEach((r) => ks.forEach((k) => inFlight.current.add(pairKey(r, k))));
      api
        .histories(rs, ks, { buckets, ...range })
        .then(
          (reply) => {
            if (mark !== lastZoom.current) return;
            for (const r of rs) for (const k of ks) if (!store.current.has(pairKey(r, k))) store.current.set(pairKey(r, k), null);
            for (const h of reply.series) {
              const run = rs.find((r) => h.run_id === r || h.run_id.startsWith(r) || r.startsWith(h.run_id)) ?? h.run_id;
              store.current.set(pairKey(run, h.key), h);
            }
            setError(null);
          },
          (err) => mark === lastZoom.current && setError(err),
        )
        .finally(() => {
          rs.forEach((r) => ks.forEach((k) => inFlight.current.delete(pairKey(r, k))));
          setPending((n) => n - 1);
          bump();
        });
    }
  }, [runs.map((r) => r.id).join(','), keys.join('\u0000'), zoomKey]);

  // live: only the steps after the last one held, for the runs still running
  const running = runs.filter((r) => r.running);
  usePoll(
    async () => {
      for (const run of running) {
        for (const ks of chunks(keys, MAX_KEYS)) {
          let from = Infinity;
          for (const k of ks) {
            const h = store.current.get(pairKey(run.id, k));
            const last = h && h.steps.length ? h.steps[h.steps.length - 1] + 1 : 0;
            from = Math.min(from, last);
          }
          const reply = await api.histories([run.id], ks, { buckets, min_step: Number.isFinite(from) ? from : 0 });
          for (const h of reply.series) {
            const k = pairKey(run.id, h.key);
            const held = store.current.get(k);
            const next = held ? merge(held, h) : h;
            // past 4x the buckets, ask again for the whole range, downsampled
            store.current.set(k, next.steps.length > 4 * buckets ? (await api.histories([run.id], [h.key], { buckets })).series[0] ?? next : next);
          }
        }
      }
      bump();
    },
    LIVE_MS,
    running.length > 0 && keys.length > 0 && !zoom,
  );

  return { get: (run, key) => store.current.get(pairKey(run, key)), error, pending, version };
}
