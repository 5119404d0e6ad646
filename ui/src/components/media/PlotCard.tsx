// One evaluation plot key, drawn from its data; its PNG drawing when the data cannot be drawn
// (an unknown plot type, a file that does not load) or when asked for.
import { useState } from 'preact/hooks';
import { ErrorBox } from '../common';
import { fileUrl } from '../../lib/api';
import { useFetch } from '../../lib/hooks';
import { fileJSON, stepLabel, useMediaItems, useStepIndex } from '../../lib/media';
import type { MediaItem, MediaKey } from '../../lib/types';
import { Card, hasSlider, Pending, SliderSpace } from './Card';
import { ConfusionMatrix, curveLayout, curveSeries, plotSummary, type PlotData } from './plots';
import { StepSlider } from './StepSlider';
import { XYChart } from './XYChart';

const COLOR = '#1f77b4';

function Drawing({ runId, item, why }: { runId: string; item: MediaItem; why?: string }) {
  if (!item.image) return <p class="muted">{why ?? 'No drawing of this plot.'}</p>;
  return (
    <div class="media-image plot-drawing">
      {why && <p class="muted">{why}</p>}
      <img src={fileUrl(runId, item.image, true)} alt={`${item.key} (drawing)`} data-path={item.image} />
    </div>
  );
}

export function PlotBody({ runId, entry, item, data }: { runId: string; entry: MediaKey; item: MediaItem; data: PlotData }) {
  const id = `plot:${entry.key}`;
  if (data.plot === 'confusion_matrix' && data.labels && data.matrix) return <ConfusionMatrix id={id} labels={data.labels} matrix={data.matrix} />;
  const series = curveSeries(data, entry.key, COLOR);
  if (!series) return <Drawing runId={runId} item={item} why={`A ${data.plot} plot is shown as its drawing.`} />;
  const { layout, guide } = curveLayout(data.plot, [data]);
  return <XYChart id={id} title={data.plot.replace(/_/g, ' ')} series={guide ? [guide, series] : [series]} {...layout} />;
}

export function PlotCard({ runId, entry }: { runId: string; entry: MediaKey }) {
  const items = useMediaItems(runId, entry.key, entry.count);
  const list = items.data ?? [];
  const [index, setIndex] = useStepIndex(list.length);
  const [drawing, setDrawing] = useState(false);
  const item = list[index];
  const data = useFetch(() => (item ? fileJSON<PlotData>(runId, item.path) : Promise.resolve(undefined)), [runId, item?.path]);
  let body;
  if (items.error && !items.data) body = <ErrorBox what={`list the plots of ${entry.key}`} error={items.error} retry={items.reload} />;
  else if (!item || (!drawing && !data.error && !data.data)) body = <Pending entry={entry} />;
  else {
    let shown;
    if (drawing) shown = <Drawing runId={runId} item={item} />;
    else if (data.error) shown = <Drawing runId={runId} item={item} why={`Its data did not load (${(data.error as Error).message}); its drawing:`} />;
    else shown = <PlotBody runId={runId} entry={entry} item={item} data={data.data!} />;
    body = <div class="media-body media-body-plot">{shown}</div>;
  }
  const summary = data.data ? plotSummary(data.data) : '';
  return (
    <Card
      entry={entry}
      aside={
        <>
          {[summary, list.length > 1 ? stepLabel(list, index) : ''].filter(Boolean).join(' · ')}
          {item?.image && (
            <button type="button" class="link-button" onClick={() => setDrawing(!drawing)} aria-pressed={drawing}>
              {drawing ? 'data' : 'PNG'}
            </button>
          )}
        </>
      }
    >
      {body}
      {list.length > 1 ? <StepSlider steps={list.map((m) => m.step)} index={index} onChange={setIndex} label={entry.key} /> : !items.data && hasSlider(entry) && <SliderSpace />}
    </Card>
  );
}
