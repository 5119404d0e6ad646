// One table key: the table logged (at the chosen step), sortable, virtualized.
import { useEffect } from 'preact/hooks';
import { ErrorBox } from '../common';
import { tableHeight, VirtualTable } from '../VirtualTable';
import { registerView } from '../../lib/debug';
import { useFetch } from '../../lib/hooks';
import { fileJSON, stepLabel, useMediaItems, useStepIndex } from '../../lib/media';
import type { MediaKey } from '../../lib/types';
import { Card, hasSlider, Pending, SliderSpace } from './Card';
import { StepSlider } from './StepSlider';

interface TableData {
  columns: unknown[];
  data: unknown[][];
}

export function TableCard({ runId, entry }: { runId: string; entry: MediaKey }) {
  const items = useMediaItems(runId, entry.key, entry.count);
  const list = items.data ?? [];
  const [index, setIndex] = useStepIndex(list.length);
  const item = list[index];
  const table = useFetch(() => (item ? fileJSON<TableData>(runId, item.path) : Promise.resolve(undefined)), [runId, item?.path]);
  useEffect(() => registerView(`table:${entry.key}`, () => ({ step: item?.step ?? null, columns: table.data?.columns ?? null, data: table.data?.data ?? null })), [entry.key, item, table.data]);
  let body;
  if (items.error && !items.data) body = <ErrorBox what={`list the tables of ${entry.key}`} error={items.error} retry={items.reload} />;
  else if (table.error) body = <ErrorBox what={`load ${entry.key}`} error={table.error} retry={table.reload} />;
  else if (!table.data) body = <Pending entry={entry} height={item && typeof item.meta.rows === 'number' ? tableHeight(item.meta.rows) : undefined} />;
  else body = <VirtualTable columns={table.data.columns.map(String)} rows={table.data.data} label={`Table ${entry.key}`} />;
  const rows = item ? Number(item.meta.rows ?? table.data?.data.length ?? 0) : 0;
  const total = item && typeof item.meta.total_rows === 'number' ? item.meta.total_rows : null;
  const columnCount = Array.isArray(item?.meta.columns) ? item.meta.columns.length : (table.data?.columns.length ?? 0);
  const aside = item
    ? `${rows.toLocaleString()} row${rows === 1 ? '' : 's'}${total ? ` (the first of ${total.toLocaleString()})` : ''} · ${columnCount} column${columnCount === 1 ? '' : 's'}${list.length > 1 ? ` · ${stepLabel(list, index)}` : ''}`
    : '';
  return (
    <Card entry={entry} aside={aside}>
      {body}
      {list.length > 1 ? <StepSlider steps={list.map((m) => m.step)} index={index} onChange={setIndex} label={entry.key} /> : !items.data && hasSlider(entry) && <SliderSpace />}
    </Card>
  );
}
