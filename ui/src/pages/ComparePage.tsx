// Compare 2 to 50 runs: overlaid charts per metric (synced cursors, x-axis step / wall time /
// relative time, log y, smoothing, zoom), images side by side and evaluation plots overlaid,
// metrics and params side by side with "only differences", and parallel coordinates of the
// params that vary against a chosen metric.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ErrorBox, Loading, Section, StatusBadge } from '../components/common';
import { MetricGrid, ViewControls, viewFromParams, type ShownRun } from '../components/MetricGrid';
import { ParallelCoords } from '../components/ParallelCoords';
import { api } from '../lib/api';
import { fmtValue, toNumber } from '../lib/format';
import { useHistories } from '../lib/histories';
import { useFetch, usePoll } from '../lib/hooks';
import { setParams, type Loc } from '../lib/router';
import { colorOf } from '../lib/series';
import type { RunDetail, Value } from '../lib/types';
import { CompareMedia } from './CompareMedia';

const MAX = 50;

type Loaded = { id: string; run: RunDetail | null; error: unknown };

async function loadAll(ids: string[], signal?: AbortSignal): Promise<Loaded[]> {
  const settled = await Promise.allSettled(ids.map((id) => api.run(id, signal)));
  return settled.map((s, i) => ({ id: ids[i], run: s.status === 'fulfilled' ? s.value : null, error: s.status === 'rejected' ? s.reason : null }));
}

function same(values: unknown[]): boolean {
  const first = JSON.stringify(values[0] ?? null);
  return values.every((v) => JSON.stringify(v ?? null) === first);
}

function SideBySide({ runs, colors, onlyDiff }: { runs: RunDetail[]; colors: Map<string, string>; onlyDiff: boolean }) {
  const paramKeys = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].sort();
  const metricKeys = [...new Set(runs.flatMap((r) => Object.keys(r.metric_summary)))].filter((k) => !k.startsWith('system/')).sort();
  // the metrics first: what the runs are compared on, above the (often long) params
  const rows: { group: string; key: string; values: Value[] }[] = [
    ...metricKeys.map((k) => ({ group: 'metrics (last)', key: k, values: runs.map((r) => r.metric_summary[k]?.last ?? null) })),
    ...paramKeys.map((k) => ({ group: 'params', key: k, values: runs.map((r) => r.params[k] ?? null) })),
  ];
  const shown = rows.filter((r) => !onlyDiff || !same(r.values));
  const hidden = rows.length - shown.length;
  let group = '';
  return (
    <div class="table-scroll">
      <table class="data-table diff" aria-label="Metrics and params side by side">
        <thead>
          <tr>
            <th>key</th>
            {runs.map((r) => (
              <th key={r.id} class="num">
                <span class="swatch" style={{ background: colors.get(r.id) }} /> {r.name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {shown.flatMap((row) => {
            const out = [];
            if (row.group !== group) {
              group = row.group;
              out.push(
                <tr key={'g' + group} class="group-row">
                  <th colSpan={runs.length + 1}>{group}</th>
                </tr>,
              );
            }
            const differs = !same(row.values);
            out.push(
              <tr key={row.group + row.key} data-key={`${row.group === 'params' ? 'params' : 'metrics'}.${row.key}`}>
                <td>{row.key}</td>
                {row.values.map((v, i) => (
                  <td key={i} class={`num mono ${differs ? 'differs' : ''}`}>
                    {fmtValue(v)}
                  </td>
                ))}
              </tr>,
            );
            return out;
          })}
        </tbody>
      </table>
      {onlyDiff && hidden > 0 && (
        <p class="muted">
          {hidden} equal row{hidden === 1 ? '' : 's'} hidden.
        </p>
      )}
    </div>
  );
}

export function ComparePage({ loc }: { loc: Loc }) {
  const params = loc.params;
  const ids = [...new Set((params.get('runs') ?? '').split(',').filter(Boolean))].slice(0, MAX);
  const loaded = useFetch((signal) => loadAll(ids, signal), [ids.join(',')]);
  const runs = (loaded.data ?? []).map((l) => l.run).filter((r): r is RunDetail => r !== null);
  const failed = (loaded.data ?? []).filter((l) => l.error);
  const live = runs.some((r) => r.status === 'RUNNING');
  usePoll(async () => loaded.set(await loadAll(ids)), 2000, live);

  const view = viewFromParams(params, (z) => setParams({ zoom: z ? z.join(',') : null }));
  const withSystem = params.get('sys') === '1';
  const find = params.get('find') ?? '';
  const onlyDiff = params.get('diff') !== '0';

  const allKeys = useMemo(
    () => [...new Set(runs.flatMap((r) => Object.keys(r.metric_summary)))].sort(),
    [runs.map((r) => Object.keys(r.metric_summary).join(',')).join(';')],
  );
  const keys = useMemo(
    () => allKeys.filter((k) => (withSystem || !k.startsWith('system/')) && (!find || k.toLowerCase().includes(find.toLowerCase()))),
    [allKeys, withSystem, find],
  );
  const colors = useMemo(() => new Map(ids.map((id, i) => [id, colorOf(i)])), [ids.join(',')]);
  const shown: ShownRun[] = useMemo(
    () => runs.map((r) => ({ id: r.id, label: r.name, color: colors.get(r.id) ?? colors.get(ids.find((i) => r.id.startsWith(i)) ?? '') ?? '#888', start: r.start_time })),
    [runs.map((r) => r.id + r.name).join(','), colors],
  );
  const runColors = useMemo(() => new Map(shown.map((s) => [s.id, s.color])), [shown]);
  const refs = useMemo(() => runs.map((r) => ({ id: r.id, running: r.status === 'RUNNING' })), [runs.map((r) => r.id + r.status).join(',')]);
  const histories = useHistories(refs, keys, view.zoom);
  // media after the metric charts: their requests do not compete with the histories'
  const [mediaOn, setMediaOn] = useState(false);
  const chartsIn = runs.length > 0 && (keys.length === 0 || histories.version > 0 || histories.error !== null);
  useEffect(() => void (chartsIn && setMediaOn(true)), [chartsIn]);

  const metricKeys = allKeys.filter((k) => !k.startsWith('system/'));
  const pcMetric = params.get('metric') ?? metricKeys.find((k) => /val.*(loss|acc|score)|score|acc/.test(k)) ?? metricKeys[0] ?? '';

  if (ids.length < 2)
    return (
      <div class="empty">
        <h1>Compare runs</h1>
        <p>
          Pick 2 to {MAX} runs with the checkboxes in the <a href="/">runs table</a>, then press Compare.
        </p>
      </div>
    );
  if (loaded.error && !loaded.data) return <ErrorBox what="load the runs to compare" error={loaded.error} retry={loaded.reload} />;
  if (!loaded.data) return <Loading what={`${ids.length} runs`} />;

  const remove = (id: string) => setParams({ runs: ids.filter((i) => i !== id).join(','), zoom: null }, false);
  return (
    <div class="compare-page">
      <h1>Compare {runs.length} runs</h1>
      {failed.map((f) => (
        <ErrorBox key={f.id} what={`load run ${f.id}`} error={f.error} />
      ))}
      <div class="run-chips" aria-label="Runs compared">
        {runs.map((r) => (
          <span class="run-chip" key={r.id}>
            <span class="swatch" style={{ background: colors.get(r.id) }} />
            <a href={`/r/${r.id}`}>{r.name}</a>
            <StatusBadge status={r.status} />
            <button type="button" class="link-button" aria-label={`Remove ${r.name} from the comparison`} onClick={() => remove(r.id)}>
              ×
            </button>
          </span>
        ))}
      </div>
      <Section title="Charts" aside={`${keys.length} metric${keys.length === 1 ? '' : 's'}`}>
        <ViewControls view={view} set={(patch) => setParams(patch)} zoomed={!!view.zoom} />
        <div class="controls">
          <label>
            <span class="visually-hidden">Find a metric</span>
            <input type="search" placeholder="Find a metric" value={find} onInput={(e) => setParams({ find: (e.target as HTMLInputElement).value || null })} />
          </label>
          <label>
            <input type="checkbox" checked={withSystem} onChange={() => setParams({ sys: withSystem ? null : '1' })} /> hardware metrics
          </label>
        </div>
        {keys.length ? <MetricGrid keys={keys} runs={shown} histories={histories} view={view} /> : <p class="muted">No metric to chart.</p>}
      </Section>
      {mediaOn && <CompareMedia runs={runs} colors={runColors} params={params} />}
      <Section
        title="Metrics and params"
        aside={
          <label>
            <input type="checkbox" checked={onlyDiff} onChange={() => setParams({ diff: onlyDiff ? '0' : null })} /> only differences
          </label>
        }
      >
        <SideBySide runs={runs} colors={colors} onlyDiff={onlyDiff} />
      </Section>
      <Section
        title="Parallel coordinates"
        aside={
          metricKeys.length > 0 && (
            <label>
              against{' '}
              <select value={pcMetric} onChange={(e) => setParams({ metric: (e.target as HTMLSelectElement).value })}>
                {metricKeys.map((k) => (
                  <option key={k} value={k}>
                    {k}
                  </option>
                ))}
              </select>
            </label>
          )
        }
      >
        <ParallelCoords
          metric={pcMetric}
          runs={runs.map((r) => ({ id: r.id, label: r.name, params: r.params, metric: toNumber(r.metric_summary[pcMetric]?.last ?? null) }))}
        />
      </Section>
      <p class="muted">
        <a href="/">Back to the runs table</a>
      </p>
    </div>
  );
}
