// The runs table: one project's runs (or every project's), filtered, searched, sorted by any
// column, children folded under their parent, virtualized over offset/limit pages.
import { Fragment, type ComponentChildren } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ColumnPicker, columnLabel } from '../components/ColumnPicker';
import { ErrorBox, NoRuns, StatusBadge } from '../components/common';
import { ApiError, api, currentSession } from '../lib/api';
import { fmtDuration, fmtTime, fmtValue, runDuration, shortId } from '../lib/format';
import { useDebounced, useFetch, usePoll } from '../lib/hooks';
import { navigate, setParams, withParams, type Loc } from '../lib/router';
import { RunsModel, type Item, type Query } from '../lib/runsModel';
import { isRecordedTag, listedTags } from '../lib/tags';
import type { RunRow } from '../lib/types';

const ROW = 34;
const OVERSCAN = 12;
const MAX_COMPARE = 50;
/** `cols=none`: no columns picked (no `cols` at all: the project's default metric columns). */
const NO_COLUMNS = 'none';

interface Column {
  id: string;
  label: string;
  sort: string | null;
  class?: string;
  cell: (row: RunRow, item: Item) => ComponentChildren;
}

/** A header that may wrap after `_`, `/`, `.`, `-` and `:` (a long metric name's). */
function Breakable({ text }: { text: string }) {
  const parts = text.split(/(?<=[_/.:-])/);
  return (
    <>
      {parts.map((part, i) => (
        <Fragment key={i}>
          {i > 0 && <wbr />}
          {part}
        </Fragment>
      ))}
    </>
  );
}

function Tags({ tags }: { tags: Record<string, string> }) {
  return (
    <span class="tags">
      {listedTags(tags).map(([k, v]) => (
        <span class={isRecordedTag(k) ? 'tag tag-recorded' : 'tag'} key={k} data-tag={k} title={`${k}=${v}`}>
          {k}={v}
        </span>
      ))}
    </span>
  );
}

export function FilterError({ error }: { error: unknown }) {
  if (!(error instanceof ApiError) || error.status !== 400) return null;
  const detail = error.detail as { message?: string; column?: number; expression?: string } | null;
  if (!detail || typeof detail !== 'object' || !detail.expression) return <p class="filter-error" role="alert">{error.message}</p>;
  const column = Math.max(1, detail.column ?? 1);
  return (
    <div class="filter-error" role="alert">
      <pre aria-hidden="true">
        {detail.expression}
        {'\n'}
        {' '.repeat(column - 1)}^
      </pre>
      <span>{detail.message}</span>
    </div>
  );
}

export function RunsPage({ loc, project }: { loc: Loc; project: string | null }) {
  const params = loc.params;
  const filter = params.get('filter') ?? '';
  const q = params.get('q') ?? '';
  const sort = params.get('sort') ?? '-start_time';
  const picked = params.get('cols');
  // until a column is picked, the headline metrics of the project's newest runs, or of the
  // parent's children the table lists (the keys' `columns`); the rows wait for these keys, so
  // the table is not drawn twice
  const parent = params.get('parent');
  const keyList = useFetch(
    (signal) => api.keys(project, signal, parent).then((keys) => ({ project, parent, keys })),
    [project, parent],
  );
  const keys = keyList.data?.project === project && keyList.data.parent === parent ? keyList.data.keys : undefined;
  const waiting = picked === null && keys === undefined && (keyList.loading || !keyList.error);
  const cols = picked === null ? (keys?.columns ?? []) : picked.split(',').filter((c) => c && c !== NO_COLUMNS);
  const deleted = params.get('deleted') === '1';

  const [filterText, setFilterText] = useState(filter);
  const [searchText, setSearchText] = useState(q);
  const search = useDebounced(searchText, 250);
  const [selected, setSelected] = useState<Map<string, string>>(new Map());
  const [, redraw] = useState(0);
  const [view, setView] = useState<[number, number]>([0, 40]);
  const scroller = useRef<HTMLDivElement>(null);
  const filterInput = useRef<HTMLInputElement>(null);
  const session = currentSession();

  useEffect(() => setFilterText(filter), [filter]);
  useEffect(() => {
    if (search !== q) setParams({ q: search || null });
  }, [search]);

  const query: Query = useMemo(
    () => ({
      project,
      filter: filter || null,
      q: q || null,
      sort,
      columns: cols.join(',') || null,
      deleted: deleted || null,
      parent,
    }),
    [project, filter, q, sort, cols.join(','), deleted, parent],
  );

  const model = useMemo(() => new RunsModel(query, () => redraw((n) => n + 1)), []);
  const shown = useRef<Query | null>(null); // the query the model has
  const counted = useRef<number | null>(null); // the total the model had for it
  useEffect(() => {
    if (waiting) return;
    const before = shown.current;
    shown.current = query;
    if (before && Object.keys(query).every((k) => k === 'columns' || query[k] === before[k])) {
      // only the columns changed: the same rows, where they are (no flash, no scroll)
      void model.reshape(query, from, Math.max(from + 1, to));
      return;
    }
    model.setQuery(query);
    counted.current = null; // another query's total is not a change
    if (scroller.current) scroller.current.scrollTop = 0;
  }, [query, waiting]);

  const projects = useFetch((signal) => api.projects(signal), []);
  // runs came or went: the picker's projects and counts follow, and so do the default columns
  // (a run that ended before the table saw it RUNNING brings its metrics this way)
  useEffect(() => {
    if (model.total === null) return;
    if (counted.current !== null && counted.current !== model.total) {
      projects.reload();
      if (picked === null) keyList.reload();
    }
    counted.current = model.total;
  }, [model.total]);
  const parentRun = useFetch((signal) => (parent ? api.run(parent, signal) : Promise.resolve(null)), [parent]);

  // which rows are in view
  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    const first = Math.max(0, Math.floor(el.scrollTop / ROW) - OVERSCAN);
    const last = Math.ceil((el.scrollTop + el.clientHeight) / ROW) + OVERSCAN;
    setView((v) => (v[0] === first && v[1] === last ? v : [first, last]));
  };
  useEffect(() => {
    onScroll();
    window.addEventListener('resize', onScroll);
    return () => window.removeEventListener('resize', onScroll);
  }, []);
  const count = model.count;
  const from = Math.min(view[0], Math.max(0, count - 1));
  const to = Math.min(view[1], count);
  useEffect(() => {
    if (!waiting) model.ensure(from, Math.max(from + 1, to));
  }, [from, to, count, model.total, waiting]);

  usePoll(() => model.refresh(from, Math.max(from + 1, to)), 3000, !waiting);
  // while a run in view is RUNNING, its first metrics can change the default columns (a table
  // opened before the training logged anything): the keys are fetched again every 10 s
  const live = !waiting && model.running(from, Math.max(from + 1, to));
  usePoll(() => keyList.reload(), 10_000, live);

  // keyboard: "/" focuses the filter, Esc clears it
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const target = event.target as HTMLElement;
      const typing = target.closest('input, textarea, select, [contenteditable]');
      if (event.key === '/' && !typing) {
        event.preventDefault();
        filterInput.current?.focus();
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);

  const applyFilter = (text: string) => setParams({ filter: text.trim() || null });

  const toggleSort = (key: string) => {
    const next = sort === key ? '-' + key : sort === '-' + key ? key : key === 'start_time' || key === 'duration' ? '-' + key : key;
    setParams({ sort: next === '-start_time' ? null : next });
  };

  const toggleSelect = (row: RunRow) => {
    const next = new Map(selected);
    if (next.has(row.id)) next.delete(row.id);
    else if (next.size < MAX_COMPARE) next.set(row.id, row.name);
    setSelected(next);
  };

  const restore = async (row: RunRow) => {
    await api.patch(row.id, { deleted: false });
    await model.refresh(from, Math.max(from + 1, to));
  };

  const columns: Column[] = [
    {
      id: 'name',
      label: 'Name',
      sort: 'name',
      class: 'col-name',
      cell: (row, item) => (
        <span class={`name-cell depth-${item.depth}`}>
          {row.children > 0 && item.depth === 0 ? (
            <button
              type="button"
              class="expand"
              aria-expanded={model.isExpanded(row.id)}
              aria-label={`${model.isExpanded(row.id) ? 'Fold' : 'Show'} the ${row.children} children of ${row.name}`}
              onClick={() => model.toggle(row, item.index)}
            >
              {model.isExpanded(row.id) ? '▾' : '▸'}
              <span class="child-count">{row.children}</span>
            </button>
          ) : (
            <span class="expand-space" />
          )}
          <a href={`/r/${row.id}`} class="run-link" title={`${row.name} (${row.id})`}>
            {row.name || shortId(row.id)}
          </a>
        </span>
      ),
    },
    ...(project === null ? [{ id: 'project', label: 'Project', sort: null, cell: (row: RunRow) => row.project }] : []),
    { id: 'status', label: 'Status', sort: 'status', cell: (row) => <StatusBadge status={row.status} /> },
    { id: 'start', label: 'Started', sort: 'start_time', class: 'num', cell: (row) => fmtTime(row.start_time) },
    { id: 'duration', label: 'Duration', sort: 'duration', class: 'num', cell: (row) => fmtDuration(runDuration(row)) },
    { id: 'tags', label: 'Tags', sort: null, class: 'col-tags', cell: (row) => <Tags tags={row.tags} /> },
    ...cols.map((c) => ({
      id: c,
      label: columnLabel(c),
      sort: c,
      class: 'num col-key',
      cell: (row: RunRow) => fmtValue(row.values?.[c]),
    })),
  ];

  const rows: ComponentChildren[] = [];
  for (let d = from; d < to; d++) {
    const item = model.item(d);
    if (item.kind !== 'row') {
      rows.push(
        <tr key={`p${d}`} class="pending-row">
          <td colSpan={columns.length + 1}>{item.kind === 'message' ? <span class="muted child-note">{item.text}</span> : <span class="skeleton" />}</td>
        </tr>,
      );
      continue;
    }
    const row = item.row;
    rows.push(
      <tr key={row.id} class={`${item.depth ? 'child-row' : ''} ${selected.has(row.id) ? 'selected' : ''}`} data-run={row.id}>
        <td class="col-select">
          <input
            type="checkbox"
            checked={selected.has(row.id)}
            onChange={() => toggleSelect(row)}
            aria-label={`Select ${row.name} to compare`}
          />
        </td>
        {columns.map((c) => (
          <td key={c.id} class={c.class} data-col={c.id}>
            {c.cell(row, item)}
          </td>
        ))}
        {deleted && session?.can_write && (
          <td>
            <button type="button" class="small" onClick={() => restore(row)}>
              Restore
            </button>
          </td>
        )}
      </tr>,
    );
  }

  const sortKey = sort.replace(/^-/, '');
  const descending = sort.startsWith('-');
  const noRunsAtAll = projects.data && projects.data.projects.length === 0;
  const empty = model.total === 0;

  return (
    <div class="runs-page">
      <div class="toolbar" role="search">
        <label class="project-picker">
          <span class="visually-hidden">Project</span>
          <select
            value={project ?? ''}
            onChange={(e) => {
              const name = (e.target as HTMLSelectElement).value;
              navigate((name ? `/p/${encodeURIComponent(name)}` : '/') + (sort !== '-start_time' ? `?sort=${encodeURIComponent(sort)}` : ''));
            }}
          >
            <option value="">All projects</option>
            {projects.data?.projects.map((p) => (
              <option value={p.name} key={p.name}>
                {p.name} ({p.runs.toLocaleString()})
              </option>
            ))}
            {project && !projects.data?.projects.some((p) => p.name === project) && <option value={project}>{project}</option>}
          </select>
        </label>
        <form
          class="filter-form"
          onSubmit={(e) => {
            e.preventDefault();
            applyFilter(filterText);
          }}
        >
          <label class="visually-hidden" for="filter">
            Filter expression
          </label>
          <input
            id="filter"
            ref={filterInput}
            class={`filter-input ${model.error instanceof ApiError && model.error.status === 400 ? 'invalid' : ''}`}
            type="text"
            spellcheck={false}
            autocomplete="off"
            placeholder='Filter: metrics.val_loss < 0.3 and params.lr >= 1e-3 and status = FINISHED   (press /)'
            value={filterText}
            onInput={(e) => setFilterText((e.target as HTMLInputElement).value)}
            onKeyDown={(e) => {
              if (e.key === 'Escape') {
                setFilterText('');
                applyFilter('');
                (e.target as HTMLInputElement).blur();
              }
            }}
            onBlur={() => filterText.trim() !== filter && applyFilter(filterText)}
          />
        </form>
        <label class="search">
          <span class="visually-hidden">Search names, tags and notes</span>
          <input
            type="search"
            placeholder="Search"
            value={searchText}
            onInput={(e) => setSearchText((e.target as HTMLInputElement).value)}
            onKeyDown={(e) => e.key === 'Escape' && setSearchText('')}
          />
        </label>
        <ColumnPicker keys={keys} selected={cols} onChange={(next) => setParams({ cols: next.join(',') || NO_COLUMNS })} />
        <label class="toggle">
          <input type="checkbox" checked={deleted} onChange={() => setParams({ deleted: deleted ? null : '1' })} /> Deleted
        </label>
        <button
          type="button"
          class="primary"
          disabled={selected.size < 2}
          title={selected.size < 2 ? 'Select 2 to 50 runs with the checkboxes' : `Compare ${selected.size} runs`}
          onClick={() => navigate(`/compare?runs=${[...selected.keys()].join(',')}`)}
        >
          Compare{selected.size ? ` (${selected.size})` : ''}
        </button>
        {selected.size > 0 && (
          <button type="button" class="link-button" onClick={() => setSelected(new Map())}>
            Clear selection
          </button>
        )}
      </div>
      <FilterError error={model.error} />
      {parent && (
        <p class="breadcrumb">
          Children of{' '}
          <a href={`/r/${parent}`}>{parentRun.data?.name ?? shortId(parent)}</a> ·{' '}
          <a href={withParams({ parent: null })}>all top-level runs</a>
        </p>
      )}
      {deleted && <p class="notice">Showing deleted runs{session?.can_write ? ': restore one to bring it back.' : '.'}</p>}
      {model.error !== null && !(model.error instanceof ApiError && model.error.status === 400) && (
        <ErrorBox what="load the runs" error={model.error} retry={() => model.setQuery(query)} />
      )}
      {empty && noRunsAtAll && <NoRuns where="This store" />}
      {empty && !noRunsAtAll && (
        <div class="empty">
          {filter || q || deleted || parent ? (
            <>
              <p>No runs match{filter ? ` the filter` : ''}{q ? ` “${q}”` : ''}{deleted ? ' among deleted runs' : ''}.</p>
              <p>
                <a href={withParams({ filter: null, q: null, deleted: null })}>Show all runs</a>
              </p>
            </>
          ) : (
            <NoRuns where={project ? `Project “${project}”` : 'This store'} />
          )}
        </div>
      )}
      {!empty && model.error === null && (
        <div class="table-box" ref={scroller} onScroll={onScroll} tabIndex={-1}>
          <table class="runs-table" aria-rowcount={count} aria-label="Runs">
            <thead>
              <tr>
                <th class="col-select" aria-label="Select" />
                {columns.map((c) => (
                  <th
                    key={c.id}
                    class={c.class}
                    data-col={c.id}
                    aria-sort={c.sort && sortKey === c.sort ? (descending ? 'descending' : 'ascending') : undefined}
                    scope="col"
                  >
                    {c.sort ? (
                      <button type="button" class="sort" onClick={() => toggleSort(c.sort!)} title={`Sort by ${c.label}`}>
                        <Breakable text={c.label} />
                        <span class="sort-mark" aria-hidden="true">
                          {sortKey === c.sort ? (descending ? ' ▼' : ' ▲') : ''}
                        </span>
                      </button>
                    ) : (
                      c.label
                    )}
                  </th>
                ))}
                {deleted && session?.can_write && <th />}
              </tr>
            </thead>
            <tbody>
              {from > 0 && <tr class="spacer" style={{ height: `${from * ROW}px` }} aria-hidden="true" />}
              {rows}
              {to < count && <tr class="spacer" style={{ height: `${(count - to) * ROW}px` }} aria-hidden="true" />}
            </tbody>
          </table>
        </div>
      )}
      <p class="table-foot muted" aria-live="polite">
        {model.total !== null
          ? `${model.total.toLocaleString()} run${model.total === 1 ? '' : 's'}`
          : model.error === null && 'Loading runs…'}
        {selected.size > 0 && ` · ${selected.size} selected`}
      </p>
    </div>
  );
}
