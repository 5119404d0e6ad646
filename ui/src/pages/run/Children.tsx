// A run's children (search-CV candidates, trials) as a table sortable by any column.
import { useState } from 'preact/hooks';
import { ErrorBox, Loading, StatusBadge } from '../../components/common';
import { api } from '../../lib/api';
import { fmtDuration, fmtValue, runDuration } from '../../lib/format';
import { useFetch, usePoll } from '../../lib/hooks';
import type { RunDetail, RunRow } from '../../lib/types';

const LIMIT = 1000;

export function Children({ run, keys }: { run: RunDetail; keys: { params: string[]; metrics: string[] } | undefined }) {
  const [sort, setSort] = useState('name');
  // params of the children: the project's keys, kept where some child has a value
  const paramCols = (keys?.params ?? []).slice(0, 80).map((k) => `params.${k}`);
  const rows = useFetch(
    (signal) => (keys ? api.runs({ parent: run.id, sort, limit: LIMIT, columns: paramCols.join(',') || null }, signal) : Promise.resolve(null)),
    [run.id, sort, keys],
  );
  usePoll(rows.reload, 3000, run.status === 'RUNNING');
  if (rows.error) return <ErrorBox what="load the children" error={rows.error} retry={rows.reload} />;
  if (!rows.data) return <Loading what="children" />;
  const children = rows.data.runs;
  const varying = (get: (r: RunRow) => unknown) => children.some((c) => get(c) !== undefined);
  const params = paramCols.filter((c) => varying((r) => r.values?.[c]));
  const metrics = [...new Set(children.flatMap((c) => Object.keys(c.metrics)))].filter((k) => !k.startsWith('system/')).sort();
  const columns: { id: string; label: string; sort: string | null; num?: boolean; cell: (r: RunRow) => unknown }[] = [
    { id: 'name', label: 'name', sort: 'name', cell: (r) => <a href={`/r/${r.id}`}>{r.name}</a> },
    { id: 'status', label: 'status', sort: 'status', cell: (r) => <StatusBadge status={r.status} /> },
    { id: 'duration', label: 'duration', sort: 'duration', num: true, cell: (r) => fmtDuration(runDuration(r)) },
    ...params.map((c) => ({ id: c, label: c.slice(7), sort: c, num: true, cell: (r: RunRow) => fmtValue(r.values?.[c]) })),
    ...metrics.map((k) => ({ id: 'm.' + k, label: k, sort: `metrics.${k}`, num: true, cell: (r: RunRow) => fmtValue(r.metrics[k]) })),
  ];
  const key = sort.replace(/^-/, '');
  const desc = sort.startsWith('-');
  return (
    <>
      <p class="muted">
        {rows.data.total.toLocaleString()} children
        {rows.data.total > children.length && ` (the first ${children.length.toLocaleString()})`} · <a href={`/p/${encodeURIComponent(run.project)}?parent=${run.id}`}>open in the runs table</a>
      </p>
      <div class="table-scroll">
        <table class="data-table children-table">
          <thead>
            <tr>
              {columns.map((c) => (
                <th key={c.id} class={c.num ? 'num' : ''} aria-sort={c.sort === key ? (desc ? 'descending' : 'ascending') : undefined}>
                  <button type="button" class="sort" onClick={() => c.sort && setSort(sort === c.sort ? '-' + c.sort : c.sort)}>
                    {c.label}
                    {c.sort === key ? (desc ? ' ▼' : ' ▲') : ''}
                  </button>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {children.map((r) => (
              <tr key={r.id} data-run={r.id}>
                {columns.map((c) => (
                  <td key={c.id} class={c.num ? 'num' : ''}>
                    {c.cell(r) as never}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
