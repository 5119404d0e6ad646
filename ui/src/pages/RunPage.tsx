// One run: header (status, timing, edits), then tabs: overview, media, console, code,
// hardware, files, model, children (each shown when the run has something for it). Live while
// the run is RUNNING.
import { useMemo, useState } from 'preact/hooks';
import { CopyText, ErrorBox, Loading, NotFound, Section, StatusBadge, isNotFound } from '../components/common';
import { MetricGrid, ViewControls, viewFromParams, type ShownRun } from '../components/MetricGrid';
import { api, currentSession } from '../lib/api';
import { fmtDuration, fmtTime, runDuration } from '../lib/format';
import { useHistories } from '../lib/histories';
import { useFetch, usePoll } from '../lib/hooks';
import { setParams, withParams, type Loc } from '../lib/router';
import { colorOf } from '../lib/series';
import type { RunDetail } from '../lib/types';
import { Children } from './run/Children';
import { Code, hasCode } from './run/Code';
import { Console } from './run/Console';
import { DeleteButton, RenameButton } from './run/Edit';
import { Files } from './run/Files';
import { Hardware } from './run/Hardware';
import { Media } from './run/Media';
import { Models } from './run/Model';
import { Overview } from './run/Overview';

const TABS = ['overview', 'media', 'console', 'code', 'hardware', 'files', 'model', 'children'] as const;
type Tab = (typeof TABS)[number];

function Header({ run, onChange, canWrite }: { run: RunDetail; onChange: (r: RunDetail) => void; canWrite: boolean }) {
  return (
    <>
      {run.deleted && (
        <p class="notice" role="status">
          This run is deleted: it is hidden from the runs table (see its “Deleted” filter).
        </p>
      )}
      <div class="run-head">
        <h1 id="run-name">{run.name}</h1>
        <StatusBadge status={run.status} />
        {canWrite && <RenameButton run={run} onChange={onChange} />}
        {canWrite && <DeleteButton run={run} onChange={onChange} />}
      </div>
      <div class="run-meta">
        <span>
          project <a href={`/p/${encodeURIComponent(run.project)}`}><b>{run.project}</b></a>
        </span>
        <span>
          id <b class="mono">{run.id}</b> <CopyText text={run.id} label="run id" />
        </span>
        {run.parent_id && (
          <span>
            parent <a href={`/r/${run.parent_id}`}>{run.parent_id.slice(0, 8)}</a>
          </span>
        )}
        <span>
          started <b>{fmtTime(run.start_time)}</b>
        </span>
        {run.end_time !== null && (
          <span>
            ended <b>{fmtTime(run.end_time)}</b>
          </span>
        )}
        <span>
          {run.status === 'RUNNING' ? 'running for' : 'took'} <b>{fmtDuration(runDuration(run))}</b>
        </span>
        {run.status === 'CRASHED' && <span>the process died without ending the run</span>}
      </div>
    </>
  );
}

export function RunPage({ loc, runId }: { loc: Loc; runId: string }) {
  const run = useFetch((signal) => api.run(runId, signal), [runId]);
  const [, tick] = useState(0);
  const detail = run.data;
  const live = detail?.status === 'RUNNING';
  usePoll(
    async () => {
      run.set(await api.run(runId));
      tick((n) => n + 1);
    },
    2000,
    live,
  );
  const keys = useFetch((signal) => (detail ? api.keys(detail.project, signal) : Promise.resolve(undefined)), [detail?.project]);
  const media = useFetch((signal) => api.mediaKeys(runId, signal).then((r) => r.keys), [runId]);
  usePoll(async () => media.set(await api.mediaKeys(runId).then((r) => r.keys)), 3000, live);
  const session = currentSession();
  const canWrite = !!session?.can_write;

  const metricKeys = useMemo(() => Object.keys(detail?.metric_summary ?? {}).sort(), [detail && Object.keys(detail.metric_summary).join(',')]);
  const userKeys = useMemo(() => metricKeys.filter((k) => !k.startsWith('system/')), [metricKeys]);
  // a metric logged once (a fit's training score) is a value, not a curve: the summary below
  // holds it; while the run trains, a first point may be the start of one
  const charted = useMemo(
    () => (live ? userKeys : userKeys.filter((k) => (detail?.metric_summary[k]?.count ?? 0) > 1)),
    [userKeys, live, detail && userKeys.map((k) => detail.metric_summary[k]?.count ?? 0).join(',')],
  );
  const once = userKeys.length - charted.length;
  const systemKeys = useMemo(() => metricKeys.filter((k) => k.startsWith('system/')), [metricKeys]);
  const params = loc.params;
  const requested = params.get('tab') as Tab | null;
  const tab: Tab = requested && TABS.includes(requested) ? requested : 'overview';
  const view = viewFromParams(params, (z) => setParams({ zoom: z ? z.join(',') : null }), tab === 'hardware' ? 'rel' : 'step');
  const shownKeys = tab === 'overview' ? charted : tab === 'hardware' ? systemKeys : [];
  const shown: ShownRun[] = useMemo(
    () => (detail ? [{ id: detail.id, label: detail.name, color: colorOf(0), start: detail.start_time }] : []),
    [detail?.id, detail?.name, detail?.start_time],
  );
  const refs = useMemo(() => (detail ? [{ id: detail.id, running: live }] : []), [detail?.id, live]);
  const histories = useHistories(refs, shownKeys, view.zoom);

  if (run.error && isNotFound(run.error)) return <NotFound what={`There is no run ${runId}.`} />;
  if (run.error && !detail) return <ErrorBox what={`load run ${runId}`} error={run.error} retry={run.reload} />;
  if (!detail) return <Loading what="run" />;

  const mediaKeys = media.data ?? [];
  const shows: Record<Tab, boolean> = {
    overview: true,
    media: mediaKeys.length > 0,
    console: detail.artifacts.includes('console.log') || !!detail.tags['autolog.console.lines'] || detail.end_time === null || detail.status === 'CRASHED',
    code: hasCode(detail),
    hardware: true,
    files: true,
    model: true,
    children: detail.children > 0,
  };
  const counts: Record<Tab, number | null> = {
    overview: null,
    media: mediaKeys.length,
    console: null,
    code: null,
    hardware: systemKeys.length,
    files: null,
    model: Object.keys(detail.models).length,
    children: detail.children,
  };
  const labels: Record<Tab, string> = {
    overview: 'Overview',
    media: 'Media',
    console: 'Console',
    code: 'Code',
    hardware: 'Hardware',
    files: 'Files',
    model: 'Model',
    children: 'Children',
  };
  return (
    <div class="run-page" data-status={detail.status}>
      <Header run={detail} onChange={run.set} canWrite={canWrite} />
      {run.error !== null && <ErrorBox what="refresh the run" error={run.error} />}
      {/* hidden (its place kept) until the media keys are known: a Media tab that came in later
          would move the tabs after it under a click aimed at one of them */}
      <nav class="tabs" aria-label="Run sections" style={media.data === undefined && media.error === null ? { visibility: 'hidden' } : undefined}>
        {TABS.filter((t) => shows[t] || t === tab).map((t) => (
          <a key={t} href={withParams({ tab: t === 'overview' ? null : t, file: null, zoom: null, find: null })} aria-current={t === tab ? 'page' : undefined}>
            {labels[t]}
            {counts[t] ? <span class="muted"> {counts[t]}</span> : null}
          </a>
        ))}
      </nav>
      {tab === 'overview' && (
        <Overview run={detail} onChange={run.set} canWrite={canWrite}>
          <Section title="Charts" aside={`${charted.length} metric${charted.length === 1 ? '' : 's'}`}>
            {charted.length > 0 && <ViewControls view={view} set={(patch) => setParams(patch)} zoomed={!!view.zoom} />}
            {charted.length > 0 && <MetricGrid keys={charted} runs={shown} histories={histories} view={view} />}
            {once > 0 && (
              <p class="muted charts-once">
                {once} metric{once === 1 ? '' : 's'} logged once, so not charted: {once === 1 ? 'its value is' : 'their values are'} in the summary below.
              </p>
            )}
            {userKeys.length === 0 && <p class="muted">This run logged no metrics{live ? ' yet' : ''}.</p>}
          </Section>
        </Overview>
      )}
      {tab === 'hardware' && (
        <>
          <ViewControls view={view} set={(patch) => setParams(patch)} zoomed={!!view.zoom} />
          <Hardware keys={systemKeys} runs={shown} histories={histories} view={view} />
        </>
      )}
      {tab === 'media' &&
        (media.error && !media.data ? (
          <ErrorBox what="list the run's media" error={media.error} retry={media.reload} />
        ) : media.data ? (
          mediaKeys.length ? (
            <Media runId={detail.id} keys={mediaKeys} find={params.get('find') ?? ''} />
          ) : (
            <p class="muted">
              This run logged no media{live ? ' yet' : ''}. <code>run.log_image(key, image, step=…)</code>, <code>log_histogram</code>, <code>log_table</code> and{' '}
              <code>log_text</code> add some; scikit-learn and XGBoost fits add their evaluation plots.
            </p>
          )
        ) : (
          <Loading what="media" />
        ))}
      {tab === 'console' && <Console run={detail} />}
      {tab === 'code' && <Code run={detail} />}
      {tab === 'files' && <Files runId={detail.id} selected={params.get('file')} />}
      {tab === 'model' && <Models run={detail} />}
      {tab === 'children' && <Children run={detail} keys={keys.data} />}
    </div>
  );
}
