// One text key: the text logged at the chosen step.
import { useEffect } from 'preact/hooks';
import { ErrorBox } from '../common';
import { registerView } from '../../lib/debug';
import { useFetch } from '../../lib/hooks';
import { fileText, stepLabel, useMediaItems, useStepIndex } from '../../lib/media';
import type { MediaKey } from '../../lib/types';
import { Card, hasSlider, Pending, SliderSpace } from './Card';
import { StepSlider } from './StepSlider';

export function TextCard({ runId, entry }: { runId: string; entry: MediaKey }) {
  const items = useMediaItems(runId, entry.key, entry.count);
  const list = items.data ?? [];
  const [index, setIndex] = useStepIndex(list.length);
  const item = list[index];
  const text = useFetch(() => (item ? fileText(runId, item.path) : Promise.resolve(undefined)), [runId, item?.path]);
  useEffect(
    () => registerView(`text:${entry.key}`, () => ({ steps: list.map((m) => m.step), step: item?.step ?? null, text: text.data ?? null })),
    [entry.key, list, item, text.data],
  );
  let body;
  if (items.error && !items.data) body = <ErrorBox what={`list the texts of ${entry.key}`} error={items.error} retry={items.reload} />;
  else if (text.error) body = <ErrorBox what={`load ${entry.key}`} error={text.error} retry={text.reload} />;
  else if (text.data === undefined) body = <Pending entry={entry} />;
  else body = <pre class="media-text">{text.data}</pre>;
  return (
    <Card entry={entry} aside={item ? `${stepLabel(list, index)} · ${Number(item.meta.chars ?? 0).toLocaleString()} characters` : ''}>
      {body}
      {list.length > 0 ? <StepSlider steps={list.map((m) => m.step)} index={index} onChange={setIndex} label={entry.key} /> : hasSlider(entry) && <SliderSpace />}
    </Card>
  );
}
