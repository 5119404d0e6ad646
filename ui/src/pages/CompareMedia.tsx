// Media across the compared runs: the images of one key side by side at a chosen step, and
// each evaluation plot overlaid (ROC, precision-recall, predicted-vs-true, residuals: a line or
// dots per run in one chart) or side by side (confusion matrices).
import { useEffect, useMemo } from 'preact/hooks';
import { ErrorBox, Loading, Section } from '../components/common';
import { MediaImage } from '../components/media/ImageCard';
import { ConfusionMatrix, CURVES, curveLayout, curveSeries, plotSummary, type PlotData } from '../components/media/plots';
import { StepSlider } from '../components/media/StepSlider';
import { XYChart, type XYSeries } from '../components/media/XYChart';
import { api, fileUrl } from '../lib/api';
import { registerView } from '../lib/debug';
import { useFetch } from '../lib/hooks';
import { fileJSON } from '../lib/media';
import { setParams } from '../lib/router';
import type { MediaItem, MediaKey, RunDetail } from '../lib/types';

interface Shown {
  run: RunDetail;
  color: string;
}

function Swatch({ color }: { color: string }) {
  return <span class="swatch" style={{ background: color }} />;
}

/** Each run's items of `key` (the runs that have none left out). */
function useItems(runs: Shown[], key: string) {
  return useFetch(
    (signal) =>
      Promise.all(runs.map((s) => api.media(s.run.id, { key }, signal).then((r) => ({ ...s, items: r.media })))).then((all) => all.filter((a) => a.items.length)),
    [key, runs.map((s) => s.run.id).join()],
  );
}

function CompareImages({ runs, mediaKey, step }: { runs: Shown[]; mediaKey: string; step: number | null }) {
  const found = useItems(runs, mediaKey);
  const steps = useMemo(() => [...new Set((found.data ?? []).flatMap((r) => r.items.map((m) => m.step)))].sort((a, b) => a - b), [found.data]);
  const index = step === null || !steps.includes(step) ? steps.length - 1 : steps.indexOf(step);
  const chosen = steps[index];
  const cells = (found.data ?? []).map((r) => {
    const before = r.items.filter((m) => m.step <= chosen);
    return { ...r, item: (before.length ? before[before.length - 1] : r.items[0]) as MediaItem };
  });
  useEffect(
    () => registerView(`compare-image:${mediaKey}`, () => ({ step: chosen ?? null, cells: cells.map((c) => ({ runId: c.run.id, step: c.item.step, path: c.item.path })) })),
    [mediaKey, chosen, found.data],
  );
  if (found.error) return <ErrorBox what={`load the images of ${mediaKey}`} error={found.error} retry={found.reload} />;
  if (!found.data) return <Loading what={mediaKey} />;
  return (
    <>
      <StepSlider steps={steps} index={Math.max(0, index)} onChange={(i) => setParams({ mstep: i === steps.length - 1 ? null : String(steps[i]) })} label={mediaKey} />
      <div class="compare-media-grid">
        {cells.map((c) => (
          <figure class="compare-media-cell" key={c.run.id} data-run={c.run.id}>
            <figcaption>
              <Swatch color={c.color} />
              <a href={`/r/${c.run.id}?tab=media`}>{c.run.name}</a>
              <span class="muted">step {c.item.step}</span>
            </figcaption>
            <MediaImage runId={c.run.id} item={c.item} label={`${mediaKey} of ${c.run.name}`} />
          </figure>
        ))}
      </div>
    </>
  );
}

function ComparePlot({ runs, mediaKey }: { runs: Shown[]; mediaKey: string }) {
  const found = useFetch(
    (signal) =>
      Promise.all(
        runs.map(async (s) => {
          const items = (await api.media(s.run.id, { key: mediaKey }, signal)).media;
          const item = items[items.length - 1];
          return item ? { ...s, item, data: await fileJSON<PlotData>(s.run.id, item.path) } : null;
        }),
      ).then((all) => all.filter((a) => a !== null)),
    [mediaKey, runs.map((s) => s.run.id).join()],
  );
  if (found.error) return <ErrorBox what={`load ${mediaKey}`} error={found.error} retry={found.reload} />;
  if (!found.data) return <Loading what={mediaKey} />;
  const all = found.data;
  const plot = all[0]?.data.plot;
  if (plot && CURVES.has(plot)) {
    const series = all.map((a) => curveSeries(a.data, a.run.name, a.color, a.run.id)).filter((s): s is XYSeries => s !== null);
    const { layout, guide } = curveLayout(plot, all.map((a) => a.data));
    return (
      <XYChart id={`compare-plot:${mediaKey}`} title={mediaKey} series={guide ? [guide, ...series] : series} {...layout}>
        <div class="compare-legend">
          {all.map((a) => (
            <span key={a.run.id}>
              <Swatch color={a.color} /> {a.run.name} <span class="muted">{plotSummary(a.data)}</span>
            </span>
          ))}
        </div>
      </XYChart>
    );
  }
  return (
    <figure class="chart compare-plot-cells" aria-label={mediaKey}>
      <figcaption class="chart-title">{mediaKey}</figcaption>
      <div class="compare-media-grid">
      {all.map((a) => (
        <figure class="compare-media-cell" key={a.run.id} data-run={a.run.id}>
          <figcaption>
            <Swatch color={a.color} />
            <a href={`/r/${a.run.id}?tab=media`}>{a.run.name}</a>
            <span class="muted">{plotSummary(a.data)}</span>
          </figcaption>
          {a.data.plot === 'confusion_matrix' && a.data.labels && a.data.matrix ? (
            <ConfusionMatrix id={`compare-plot:${mediaKey}:${a.run.id}`} labels={a.data.labels} matrix={a.data.matrix} />
          ) : a.item.image ? (
            <div class="media-image">
              <img src={fileUrl(a.run.id, a.item.image, true)} alt={`${mediaKey} of ${a.run.name}`} />
            </div>
          ) : (
            <p class="muted">No drawing.</p>
          )}
        </figure>
      ))}
      </div>
    </figure>
  );
}

/** The keys of `kind` in the most runs first, then by name. */
function commonKeys(byRun: MediaKey[][], kind: string): string[] {
  const counts = new Map<string, number>();
  for (const keys of byRun) for (const k of keys) if (k.kind === kind) counts.set(k.key, (counts.get(k.key) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k]) => k);
}

export function CompareMedia({ runs, colors, params }: { runs: RunDetail[]; colors: Map<string, string>; params: URLSearchParams }) {
  const keys = useFetch(
    (signal) => Promise.all(runs.map((r) => api.mediaKeys(r.id, signal).then((k) => k.keys, () => [] as MediaKey[]))),
    [runs.map((r) => r.id).join()],
  );
  const shown: Shown[] = useMemo(() => runs.map((run) => ({ run, color: colors.get(run.id) ?? '#888' })), [runs.map((r) => r.id + r.name).join(), colors]);
  if (!keys.data) return null;
  const images = commonKeys(keys.data, 'image');
  const plots = commonKeys(keys.data, 'plot');
  const imageKey = params.get('mkey') && images.includes(params.get('mkey')!) ? params.get('mkey')! : images[0];
  const step = params.get('mstep') !== null ? Number(params.get('mstep')) : null;
  return (
    <>
      {imageKey && (
        <Section
          title="Images"
          aside={
            <label>
              key{' '}
              <select value={imageKey} onChange={(e) => setParams({ mkey: (e.target as HTMLSelectElement).value, mstep: null })} aria-label="Image key">
                {images.map((k) => (
                  <option key={k} value={k}>
                    {k}
                  </option>
                ))}
              </select>
            </label>
          }
        >
          <CompareImages runs={shown} mediaKey={imageKey} step={step} />
        </Section>
      )}
      {plots.length > 0 && (
        <Section title="Evaluation plots" aside={`${plots.length}`}>
          <div class="chart-grid compare-plots">
            {plots.map((k) => (
              <div key={k} data-key={k}>
                <ComparePlot runs={shown} mediaKey={k} />
              </div>
            ))}
          </div>
        </Section>
      )}
    </>
  );
}
