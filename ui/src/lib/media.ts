// Media of a run: its keys, each key's items, and the items' files (JSON or text), fetched
// through the file routes. A media file never changes once written, so files are cached.
import { useEffect, useState } from 'preact/hooks';
import { api, fileUrl, getJSON, getText } from './api';
import { useFetch } from './hooks';
import type { MediaItem } from './types';

const CACHE_SIZE = 400;
const cache = new Map<string, Promise<unknown>>();

function cached<T>(id: string, load: () => Promise<T>): Promise<T> {
  const found = cache.get(id);
  if (found) {
    cache.delete(id); // most recently used last
    cache.set(id, found);
    return found as Promise<T>;
  }
  const loading = load();
  cache.set(id, loading);
  loading.catch(() => cache.get(id) === loading && cache.delete(id));
  while (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  return loading;
}

/** A media file's JSON (histogram, table, plot data): the whole file, not a preview. */
export function fileJSON<T>(runId: string, path: string): Promise<T> {
  return cached(`json ${runId} ${path}`, () => getJSON<T>(fileUrl(runId, path)));
}

export function fileText(runId: string, path: string): Promise<string> {
  return cached(`text ${runId} ${path}`, async () => (await getText(fileUrl(runId, path))).text);
}

/** The items of one key, by step; asked again when `count` (from the key list) changes. */
export function useMediaItems(runId: string, key: string, count: number) {
  return useFetch((signal) => api.media(runId, { key }, signal).then((r) => r.media), [runId, key, count]);
}

/** The data of `items` (loaded together; the previous data stays while the next loads). */
export function useFiles<T>(runId: string, paths: string[]): { data: Map<string, T>; error: unknown } {
  const [state, setState] = useState<{ data: Map<string, T>; error: unknown }>({ data: new Map(), error: null });
  const id = paths.join('\n');
  useEffect(() => {
    let current = true;
    Promise.all(paths.map((p) => fileJSON<T>(runId, p).then((d) => [p, d] as const))).then(
      (pairs) => current && setState({ data: new Map(pairs), error: null }),
      (error) => current && setState((s) => ({ data: s.data, error })),
    );
    return () => {
      current = false;
    };
  }, [runId, id]);
  return state;
}

/** The step slider's position: the last item, following new ones, until a step is chosen. */
export function useStepIndex(count: number): [number, (index: number) => void] {
  const [chosen, setChosen] = useState<number | null>(null);
  const index = chosen === null ? count - 1 : Math.min(chosen, count - 1);
  const choose = (i: number) => setChosen(i >= count - 1 ? null : Math.max(0, i));
  return [Math.max(0, index), choose];
}

/** `n` indices of `length`, evenly spaced, the first and the last included. */
export function spread(length: number, n: number): number[] {
  if (length <= n) return Array.from({ length }, (_, i) => i);
  const out = new Set<number>();
  for (let i = 0; i < n; i++) out.add(Math.round((i * (length - 1)) / (n - 1)));
  return [...out];
}

export function stepLabel(items: MediaItem[], index: number): string {
  const item = items[index];
  if (!item) return '';
  const same = items.filter((m) => m.step === item.step);
  return same.length > 1 ? `step ${item.step} (${same.indexOf(item) + 1} of ${same.length})` : `step ${item.step}`;
}
