// The run's console.log: what the training printed, each line with its time, stderr marked.
// Searchable (only the lines that match are shown), virtualized (100,000 lines scroll
// smoothly), and following a live run: new lines are asked for from where the last answer
// ended (?preview=1&offset=), and the view stays at the bottom while it is scrolled there.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ErrorBox, Loading } from '../../components/common';
import { ApiError, fileUrl, getText } from '../../lib/api';
import { registerView } from '../../lib/debug';
import { usePoll } from '../../lib/hooks';
import type { RunDetail } from '../../lib/types';

const FILE = 'console.log';
const TAIL = 2 * 1024 * 1024; // the first answer: the last 2 MiB of the file
const LINE = 18; // px: every line one row (no wrapping), so the view can be virtualized
const OVERSCAN = 30;
const MAX_LINES = 300_000;
const STAMP = /^(\d{4}-\d\d-\d\dT(\d\d:\d\d:\d\d\.\d{3})Z) (\[stderr\] )?/;

interface Log {
  lines: string[];
  start: number; // byte of the file where the first line shown starts
  end: number; // byte where the last answer ended
  fileId: string;
}

async function read(runId: string, from: Log | null): Promise<Log> {
  for (;;) {
    const offset = from ? from.end : -TAIL;
    const { text, response } = await getText(`${fileUrl(runId, FILE, true)}&offset=${offset}`);
    const header = (name: string) => response.headers.get(name) ?? '';
    const fileId = header('X-File-Id');
    if (from && (fileId !== from.fileId || Number(header('X-File-Size')) < from.end)) {
      from = null; // replaced (trimmed to its last lines) or cut: start again from its end
      continue;
    }
    const fresh = text ? text.slice(0, text.endsWith('\n') ? -1 : undefined).split('\n') : [];
    let lines = from ? from.lines.concat(fresh) : fresh;
    let start = from ? from.start : Number(header('X-Offset'));
    if (lines.length > MAX_LINES) {
      lines = lines.slice(lines.length - MAX_LINES);
      start = -1; // unknown: lines were let go
    }
    const log = { lines, start, end: Number(header('X-End')), fileId };
    if (header('X-Truncated') !== 'true' || !from) return log;
    from = log; // more than one answer's worth arrived: read on
  }
}

function Line({ text, needle }: { text: string; needle: string }) {
  const m = STAMP.exec(text);
  const body = m ? text.slice(m[0].length) : text;
  let shown: preact.ComponentChildren = body;
  if (needle) {
    const at = body.toLowerCase().indexOf(needle);
    if (at >= 0) shown = [body.slice(0, at), <mark key="m">{body.slice(at, at + needle.length)}</mark>, body.slice(at + needle.length)];
  }
  return (
    <div class={`console-line${m?.[3] ? ' stderr' : ''}`}>
      {m && (
        <span class="console-time" title={m[1]}>
          {m[2]}
        </span>
      )}
      {m?.[3] && <span class="console-stream">stderr</span>}
      <span class="console-text">{shown}</span>
    </div>
  );
}

export function Console({ run }: { run: RunDetail }) {
  const [log, setLog] = useState<Log | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [missing, setMissing] = useState(false);
  const [query, setQuery] = useState('');
  const [follow, setFollow] = useState(true);
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(560);
  const box = useRef<HTMLDivElement>(null);
  const latest = useRef<Log | null>(null);
  latest.current = log;
  const live = run.status === 'RUNNING';

  const load = async () => {
    try {
      const next = await read(run.id, latest.current);
      latest.current = next;
      setLog(next);
      setMissing(false);
      setError(null);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) setMissing(true);
      else setError(e);
    }
  };
  useEffect(() => void load(), [run.id, run.status]); // and once more when the run ends
  usePoll(load, 2000, live);

  const needle = query.trim().toLowerCase();
  const lines = log?.lines ?? [];
  const shown = useMemo(() => {
    if (!needle) return null;
    const out: number[] = [];
    lines.forEach((l, i) => {
      const m = STAMP.exec(l);
      if ((m ? l.slice(m[0].length) : l).toLowerCase().includes(needle)) out.push(i);
    });
    return out;
  }, [lines, needle]);
  const count = shown ? shown.length : lines.length;

  useEffect(
    () => registerView('console', () => ({ lines: lines.length, shown: count, first: lines[0] ?? null, last: lines[lines.length - 1] ?? null, follow, start: log?.start ?? null })),
    [lines, count, follow, log],
  );
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setHeight(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, [!!log]);
  useEffect(() => {
    const el = box.current;
    if (el && follow) el.scrollTop = el.scrollHeight;
  }, [count, follow, !!log]);

  if (missing)
    return (
      <p class="muted">
        No console output was captured for this run{live ? ' yet' : ''} (<code>AUTOLOG_CAPTURE_CONSOLE=0</code> turns the capture off).
      </p>
    );
  if (error && !log) return <ErrorBox what="load the console" error={error} retry={load} />;
  if (!log) return <Loading what="the console" />;

  const first = Math.max(0, Math.floor(top / LINE) - OVERSCAN);
  const last = Math.min(count, Math.ceil((top + height) / LINE) + OVERSCAN);
  const at = (k: number) => (shown ? shown[k] : k);
  const dropped = Number(run.tags['autolog.console.dropped_lines'] ?? 0);
  return (
    <div class="console-page">
      <div class="controls">
        <label>
          <span class="visually-hidden">Search the console</span>
          <input type="search" class="console-search" placeholder="Search the console" value={query} onInput={(e) => setQuery((e.target as HTMLInputElement).value)} />
        </label>
        <span class="muted console-count" aria-live="polite">
          {shown ? `${shown.length.toLocaleString()} of ${lines.length.toLocaleString()} lines` : `${lines.length.toLocaleString()} lines`}
          {log.start !== 0 && ' (the end of the log)'}
          {dropped > 0 && ` · ${dropped.toLocaleString()} earlier lines were dropped while it ran`}
        </span>
        <label>
          <input type="checkbox" checked={follow} onChange={() => setFollow(!follow)} /> follow{live ? '' : ' the end'}
        </label>
        <a href={fileUrl(run.id, FILE)} download="console.log">
          Download
        </a>
        {error !== null && <span class="error-message">{(error as Error).message}</span>}
      </div>
      <div
        class="console-view mono"
        ref={box}
        tabIndex={0}
        aria-label="Console output"
        onScroll={(e) => {
          const el = e.target as HTMLElement;
          setTop(el.scrollTop);
          const bottom = el.scrollHeight - el.scrollTop - el.clientHeight < LINE * 2;
          if (bottom !== follow) setFollow(bottom);
        }}
      >
        <div style={{ height: `${count * LINE}px`, position: 'relative' }}>
          <div style={{ transform: `translateY(${first * LINE}px)` }}>
            {Array.from({ length: Math.max(0, last - first) }, (_, k) => (
              <Line key={at(first + k)} text={lines[at(first + k)]} needle={needle} />
            ))}
          </div>
        </div>
      </div>
      {!lines.length && <p class="muted">Nothing printed{live ? ' yet' : ''}.</p>}
    </div>
  );
}
