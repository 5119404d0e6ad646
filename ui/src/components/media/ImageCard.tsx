// One image key: the image at the chosen step, a slider over the steps.
import { useEffect } from 'preact/hooks';
import { ErrorBox } from '../common';
import { fileUrl } from '../../lib/api';
import { registerView } from '../../lib/debug';
import { stepLabel, useMediaItems, useStepIndex } from '../../lib/media';
import type { MediaItem, MediaKey } from '../../lib/types';
import { Card, hasSlider, Pending, SliderSpace } from './Card';
import { StepSlider } from './StepSlider';

export function MediaImage({ runId, item, label }: { runId: string; item: MediaItem; label: string }) {
  const width = Number(item.meta.width) || undefined;
  const height = Number(item.meta.height) || undefined;
  const small = (width ?? 0) > 0 && (width ?? 0) < 160;
  return (
    <div class="media-image">
      <img
        src={fileUrl(runId, item.path, true)}
        alt={`${label} at step ${item.step}`}
        width={width}
        height={height}
        class={small ? 'pixelated' : undefined}
        data-step={item.step}
        data-path={item.path}
        decoding="async"
      />
    </div>
  );
}

export function ImageCard({ runId, entry }: { runId: string; entry: MediaKey }) {
  const items = useMediaItems(runId, entry.key, entry.count);
  const list = items.data ?? [];
  const [index, setIndex] = useStepIndex(list.length);
  const item = list[index];
  useEffect(
    () => registerView(`image:${entry.key}`, () => ({ steps: list.map((m) => m.step), index, step: item?.step ?? null, path: item?.path ?? null })),
    [entry.key, list, index],
  );
  useEffect(() => {
    const next = list[index + 1] ?? list[index - 1]; // the neighbour a key press will ask for
    if (next) new Image().src = fileUrl(runId, next.path, true);
  }, [runId, list, index]);
  let body;
  if (items.error && !items.data) body = <ErrorBox what={`list the images of ${entry.key}`} error={items.error} retry={items.reload} />;
  else if (!item) body = <Pending entry={entry} />;
  else body = <MediaImage runId={runId} item={item} label={entry.key} />;
  const size = item && item.meta.width ? `${item.meta.width}×${item.meta.height}` : '';
  return (
    <Card entry={entry} aside={[size, item ? stepLabel(list, index) : ''].filter(Boolean).join(' · ')}>
      {body}
      {list.length > 0 ? <StepSlider steps={list.map((m) => m.step)} index={index} onChange={setIndex} label={entry.key} /> : hasSlider(entry) && <SliderSpace />}
    </Card>
  );
}
