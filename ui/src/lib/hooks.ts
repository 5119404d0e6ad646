import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Fetched<T> {
  data?: T;
  error: unknown;
  loading: boolean;
  reload: () => void;
  set: (data: T) => void;
}

/** Data from `load`, fetched again whenever `deps` change; the previous data stays shown
 * while the next loads (no flash of empty content). */
export function useFetch<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Fetched<T> {
  const [state, setState] = useState<{ data?: T; error: unknown; loading: boolean }>({ error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    load(controller.signal).then(
      (data) => !controller.signal.aborted && setState({ data, error: null, loading: false }),
      (error) => !controller.signal.aborted && setState((s) => ({ data: s.data, error, loading: false })),
    );
    return () => controller.abort();
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const set = useCallback((data: T) => setState({ data, error: null, loading: false }), []);
  return { ...state, reload, set };
}

/** Calls `tick` every `ms` while `active` and the page is visible; one call at a time. */
export function usePoll(tick: () => Promise<unknown> | void, ms: number, active: boolean): void {
  const latest = useRef(tick);
  latest.current = tick;
  useEffect(() => {
    if (!active) return;
    let busy = false;
    const id = setInterval(async () => {
      if (busy || document.visibilityState === 'hidden') return;
      busy = true;
      try {
        await latest.current();
      } catch {
        // a failed poll is retried at the next tick; the page keeps what it shows
      } finally {
        busy = false;
      }
    }, ms);
    return () => clearInterval(id);
  }, [active, ms]);
}

export function useDebounced<T>(value: T, ms: number): T {
  const [out, setOut] = useState(value);
  useEffect(() => {
    const id = setTimeout(() => setOut(value), ms);
    return () => clearTimeout(id);
  }, [value, ms]);
  return out;
}
