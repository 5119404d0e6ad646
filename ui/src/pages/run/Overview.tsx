// The run at a glance: timing, params grouped by dotted prefix, tags and note (editable),
// the run context (git, command, host, Python, packages), a summary of every metric.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { Section } from '../../components/common';
import { api } from '../../lib/api';
import { fmtNumber, fmtValue } from '../../lib/format';
import { useFetch } from '../../lib/hooks';
import type { RunDetail, Value } from '../../lib/types';
import { NoteEditor, TagEditor } from './Edit';

export function groupParams(params: Record<string, Value>): { group: string | null; items: [string, string, Value][] }[] {
  const keys = Object.keys(params).sort();
  const prefixCount = new Map<string, number>();
  for (const k of keys) {
    const dot = k.indexOf('.');
    if (dot > 0) prefixCount.set(k.slice(0, dot), (prefixCount.get(k.slice(0, dot)) ?? 0) + 1);
  }
  const groups: { group: string | null; items: [string, string, Value][] }[] = [];
  const flat: [string, string, Value][] = [];
  const byGroup = new Map<string, [string, string, Value][]>();
  for (const k of keys) {
    const dot = k.indexOf('.');
    const prefix = dot > 0 ? k.slice(0, dot) : null;
    if (prefix && (prefixCount.get(prefix) ?? 0) >= 2) {
      if (!byGroup.has(prefix)) byGroup.set(prefix, []);
      byGroup.get(prefix)!.push([k, k.slice(dot + 1), params[k]]);
    } else flat.push([k, k, params[k]]);
  }
  if (flat.length) groups.push({ group: null, items: flat });
  for (const [group, items] of byGroup) groups.push({ group, items });
  return groups;
}

function KV({ rows }: { rows: [string, ComponentChildren][] }) {
  return (
    <table class="kv">
      <tbody>
        {rows.map(([k, v]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td>{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Params({ params }: { params: Record<string, Value> }) {
  const groups = groupParams(params);
  if (!groups.length) return <p class="muted">No params.</p>;
  return (
    <table class="kv params">
      <tbody>
        {groups.map((g) => [
          g.group && (
            <tr class="group" key={'g' + g.group}>
              <th colSpan={2}>{g.group}</th>
            </tr>
          ),
          ...g.items.map(([full, short, v]) => (
            <tr key={full} class={g.group ? 'nested' : ''} data-param={full}>
              <th scope="row" title={full}>
                {short}
              </th>
              <td class="mono">{v === null ? <span class="muted">None</span> : fmtValue(v)}</td>
            </tr>
          )),
        ])}
      </tbody>
    </table>
  );
}

function Packages({ run }: { run: RunDetail }) {
  const [open, setOpen] = useState(false);
  const has = run.artifacts.includes('requirements.txt');
  const text = useFetch((signal) => (open && has ? api.preview(run.id, 'requirements.txt', signal) : Promise.resolve(null)), [open, run.id]);
  if (!has) return <span class="muted">not recorded</span>;
  const lines = text.data?.text.split('\n').filter((l) => l.trim() && !l.startsWith('#')) ?? [];
  return (
    <details onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>requirements.txt</summary>
      {text.error ? <span class="error-message">{String((text.error as Error).message)}</span> : <pre>{lines.join('\n') || '…'}</pre>}
    </details>
  );
}

function argv(value: string | undefined): string {
  if (!value) return '';
  try {
    const parsed = JSON.parse(value);
    if (Array.isArray(parsed)) return parsed.map((a) => (/^[\w@%+=:,./-]+$/.test(String(a)) ? String(a) : `'${String(a).replace(/'/g, "'\\''")}'`)).join(' ');
  } catch {
    // not JSON: shown as recorded
  }
  return value;
}

export function Context({ run }: { run: RunDetail }) {
  const t = run.tags;
  const rows: [string, ComponentChildren][] = [];
  const add = (label: string, value: ComponentChildren) => value && rows.push([label, value]);
  const commit = t['autolog.git.commit'];
  if (commit)
    add(
      'git',
      <span class="mono">
        {commit.slice(0, 12)}
        {t['autolog.git.branch'] && ` on ${t['autolog.git.branch']}`}
        {t['autolog.git.dirty'] === 'true' && <strong> (uncommitted changes)</strong>}
      </span>,
    );
  add('command', t['autolog.source.argv'] && <code>{argv(t['autolog.source.argv'])}</code>);
  add('entry point', t['autolog.source.entry_point'] && <code>{t['autolog.source.entry_point']}</code>);
  add('host', t['autolog.host']);
  add('user', t['autolog.user']);
  add('Python', t['autolog.python.version']);
  add('platform', t['autolog.platform']);
  add('CPU', t['autolog.system.cpu_model'] && `${t['autolog.system.cpu_model']} (${t['autolog.system.cpu_logical_cores'] ?? '?'} threads)`);
  const memory = Number(t['autolog.system.memory_total_bytes']);
  add('memory', memory > 0 && `${fmtNumber(Number((memory / 2 ** 30).toFixed(1)))} GiB`);
  for (const [k, v] of Object.entries(t))
    if (/^autolog\.system\.gpu\.\d+\.name$/.test(k) || /^autolog\.system\.gpu\/\d+\/name$/.test(k)) add(`GPU ${k.match(/\d+/)![0]}`, v);
  add('packages', <Packages run={run} />);
  const known = new Set(['autolog.git.commit', 'autolog.git.branch', 'autolog.git.dirty', 'autolog.source.argv', 'autolog.source.entry_point', 'autolog.host', 'autolog.user', 'autolog.python.version', 'autolog.platform']);
  const other = Object.entries(t).filter(([k]) => k.startsWith('autolog.') && !known.has(k) && !k.startsWith('autolog.system.'));
  return (
    <>
      <KV rows={rows} />
      {other.length > 0 && (
        <details>
          <summary class="muted">{other.length} more recorded facts</summary>
          <KV rows={other.map(([k, v]) => [k.replace(/^autolog\./, ''), v])} />
        </details>
      )}
    </>
  );
}

export function MetricSummary({ run, system }: { run: RunDetail; system: boolean }) {
  const keys = Object.keys(run.metric_summary)
    .filter((k) => k.startsWith('system/') === system)
    .sort();
  if (!keys.length) return <p class="muted">No metrics{system ? ' from the hardware monitor' : ''}.</p>;
  return (
    <div class="table-scroll">
      <table class="data-table metric-summary">
        <thead>
          <tr>
            <th>metric</th>
            <th class="num">last</th>
            <th class="num">min</th>
            <th class="num">max</th>
            <th class="num">step</th>
            <th class="num">points</th>
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => {
            const s = run.metric_summary[k];
            return (
              <tr key={k}>
                <td>{k}</td>
                <td class="num">{fmtValue(s.last)}</td>
                <td class="num">{fmtValue(s.min)}</td>
                <td class="num">{fmtValue(s.max)}</td>
                <td class="num">{fmtValue(s.step)}</td>
                <td class="num">{fmtValue(s.count)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export function Overview({ run, onChange, canWrite, children }: { run: RunDetail; onChange: (r: RunDetail) => void; canWrite: boolean; children: ComponentChildren }) {
  return (
    <div class="run-layout">
      <aside class="run-side">
        <Section title="Params" aside={`${Object.keys(run.params).length}`}>
          <Params params={run.params} />
        </Section>
        <Section title="Tags">
          <TagEditor run={run} onChange={onChange} canWrite={canWrite} />
        </Section>
        <Section title="Note">
          <NoteEditor run={run} onChange={onChange} canWrite={canWrite} />
        </Section>
        <Section title="Context">
          <Context run={run} />
        </Section>
      </aside>
      <div class="run-main">
        {children}
        <Section title="Metrics summary">
          <MetricSummary run={run} system={false} />
        </Section>
      </div>
    </div>
  );
}
