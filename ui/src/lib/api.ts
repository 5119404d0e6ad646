// One fetch wrapper: same-origin only, cookie credential, CSRF header on writes, errors that
// say what failed. A 401 sends the browser to the login page (served by `autolog server`).
import type { History, Keys, MediaItem, MediaKey, Project, RunDetail, RunPage, Session, FileEntry } from './types';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly detail: unknown = null,
  ) {
    super(message);
  }
}

let session: Session | null = null;

export function currentSession(): Session | null {
  return session;
}

function describe(detail: unknown): string {
  if (typeof detail === 'string') return detail;
  if (detail && typeof detail === 'object' && 'message' in detail)
    return String((detail as { message: unknown }).message);
  if (Array.isArray(detail))
    return detail.map((d) => (d && typeof d === 'object' && 'msg' in d ? String(d.msg) : String(d))).join('; ');
  return detail == null ? '' : JSON.stringify(detail);
}

export function toLogin(): void {
  if (location.pathname === '/login') return;
  const next = location.pathname + location.search;
  location.assign('/login?next=' + encodeURIComponent(next));
}

async function request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && session) headers['X-CSRF-Token'] = session.csrf;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      signal,
    });
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error;
    throw new ApiError(0, `the server did not answer (${(error as Error).message}); is it still running?`);
  }
  if (response.ok) return response;
  let detail: unknown = null;
  try {
    detail = (await response.json()).detail;
  } catch {
    detail = null;
  }
  const text = describe(detail) || response.statusText || 'error';
  if (response.status === 401) toLogin();
  throw new ApiError(response.status, `${method} ${path.split('?')[0]}: ${response.status} ${text}`, detail);
}

export async function getJSON<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await request('GET', path, undefined, signal)).json() as Promise<T>;
}

/** A GET whose body is text; the response, for its headers. */
export async function getText(path: string, signal?: AbortSignal): Promise<{ text: string; response: Response }> {
  const response = await request('GET', path, undefined, signal);
  return { text: await response.text(), response };
}

export function query(params: Record<string, string | number | boolean | null | undefined | string[]>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === '' || value === false) continue;
    if (Array.isArray(value)) value.forEach((v) => search.append(key, v));
    else search.set(key, String(value));
  }
  const text = search.toString();
  return text ? '?' + text : '';
}

const enc = encodeURIComponent;

export const api = {
  async session(): Promise<Session> {
    session = await getJSON<Session>('/api/v1/session');
    return session;
  },
  projects: (signal?: AbortSignal) => getJSON<{ projects: Project[] }>('/api/v1/projects', signal),
  keys: (project: string | null, signal?: AbortSignal, parent: string | null = null) =>
    getJSON<Keys>('/api/v1/keys' + query({ project, parent }), signal),
  runs: (params: Record<string, string | number | boolean | null | undefined>, signal?: AbortSignal) =>
    getJSON<RunPage>('/api/v1/runs' + query(params), signal),
  run: (id: string, signal?: AbortSignal) => getJSON<RunDetail>(`/api/v1/runs/${enc(id)}`, signal),
  files: (id: string, signal?: AbortSignal) =>
    getJSON<{ files: FileEntry[] }>(`/api/v1/runs/${enc(id)}/files`, signal),
  histories: (
    runs: string[],
    keys: string[],
    options: { buckets?: number; min_step?: number | null; max_step?: number | null },
    signal?: AbortSignal,
  ) =>
    getJSON<{ series: History[] }>(
      '/api/v1/histories' +
        query({ run: runs, key: keys, buckets: options.buckets, min_step: options.min_step, max_step: options.max_step }),
      signal,
    ),
  mediaKeys: (id: string, signal?: AbortSignal) =>
    getJSON<{ run_id: string; keys: MediaKey[] }>(`/api/v1/runs/${enc(id)}/media/keys`, signal),
  media: (id: string, filter: { key?: string; kind?: string }, signal?: AbortSignal) =>
    getJSON<{ run_id: string; media: MediaItem[] }>(`/api/v1/runs/${enc(id)}/media` + query(filter), signal),
  async patch(id: string, body: Record<string, unknown>): Promise<RunDetail> {
    return (await request('PATCH', `/api/v1/runs/${enc(id)}`, body)).json() as Promise<RunDetail>;
  },
  async preview(id: string, path: string, signal?: AbortSignal): Promise<{ text: string; truncated: boolean }> {
    const response = await request('GET', fileUrl(id, path, true), undefined, signal);
    return { text: await response.text(), truncated: response.headers.get('X-Truncated') === 'true' };
  },
};

export function fileUrl(id: string, path: string, preview = false): string {
  const encoded = path.split('/').map(enc).join('/');
  return `/api/v1/runs/${enc(id)}/files/${encoded}` + (preview ? '?preview=1' : '');
}
