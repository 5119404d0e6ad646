// A table of any size: only the rows in view (and a few around) are in the page; a click on a
// column's header sorts by it (again to reverse; empty cells last either way).
import { useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';

const OVERSCAN = 12;
const ROW_HEIGHT = 29; // until a row is measured
const MAX_HEIGHT = 440;
export type Cell = unknown;

/** The height of the table of `rows` rows (and its header), at most `max`: what it takes once
 * drawn, for the place kept while it loads. */
export function tableHeight(rows: number, rowHeight = ROW_HEIGHT, max = MAX_HEIGHT): number {
  return Math.min(max, rowHeight * (rows + 1) + 4);
}

export function compareCells(a: Cell, b: Cell): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

function empty(v: Cell): boolean {
  return v === null || v === undefined || v === '';
}

export function sortedOrder(rows: Cell[][], col: number | null, desc: boolean): number[] {
  const order = rows.map((_, i) => i);
  if (col === null) return order;
  return order.sort((i, j) => {
    const a = rows[i][col];
    const b = rows[j][col];
    if (empty(a) || empty(b)) return empty(a) === empty(b) ? i - j : empty(a) ? 1 : -1;
    return (desc ? -compareCells(a, b) : compareCells(a, b)) || i - j;
  });
}

function show(v: Cell): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function VirtualTable({ columns, rows, label, maxHeight = MAX_HEIGHT }: { columns: string[]; rows: Cell[][]; label: string; maxHeight?: number }) {
  const [sort, setSort] = useState<{ col: number; desc: boolean } | null>(null);
  const [top, setTop] = useState(0);
  const [rowHeight, setRowHeight] = useState(ROW_HEIGHT);
  const body = useRef<HTMLTableSectionElement>(null);
  const box = useRef<HTMLDivElement>(null);
  useLayoutEffect(() => {
    if (box.current) box.current.scrollTop = 0; // a new order starts at its top
    setTop(0);
  }, [sort?.col, sort?.desc]);
  const order = useMemo(() => sortedOrder(rows, sort?.col ?? null, !!sort?.desc), [rows, sort?.col, sort?.desc]);
  const height = tableHeight(rows.length, rowHeight, maxHeight);
  const first = Math.max(0, Math.floor(top / rowHeight) - OVERSCAN);
  const last = Math.min(order.length, Math.ceil((top + height) / rowHeight) + OVERSCAN);
  useLayoutEffect(() => {
    const row = body.current?.querySelector('tr[data-row]');
    const measured = row ? row.getBoundingClientRect().height : 0;
    if (measured > 0 && Math.abs(measured - rowHeight) > 0.01) setRowHeight(measured);
  });
  const numeric = useMemo(() => columns.map((_, j) => rows.slice(0, 200).some((r) => typeof r[j] === 'number')), [columns, rows]);
  return (
    <div class="vtable-box" ref={box} style={{ height: `${height}px` }} onScroll={(e) => setTop((e.target as HTMLElement).scrollTop)}>
      <table class="data-table media-table" aria-label={label} aria-rowcount={rows.length + 1}>
        <thead>
          <tr>
            <th class="row-num muted">#</th>
            {columns.map((name, j) => {
              const active = sort?.col === j;
              return (
                <th key={j} class={numeric[j] ? 'num' : ''} aria-sort={active ? (sort!.desc ? 'descending' : 'ascending') : undefined} data-column={name}>
                  <button type="button" class="sort" onClick={() => setSort(active ? { col: j, desc: !sort!.desc } : { col: j, desc: false })}>
                    {name}
                    {active ? (sort!.desc ? ' ▼' : ' ▲') : ''}
                  </button>
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody ref={body}>
          {first > 0 && <tr class="spacer" style={{ height: `${first * rowHeight}px` }} aria-hidden="true" />}
          {order.slice(first, last).map((i, k) => (
            <tr key={i} data-row={i} aria-rowindex={first + k + 2}>
              <td class="row-num muted">{i + 1}</td>
              {rows[i].map((v, j) => (
                <td key={j} class={numeric[j] ? 'num' : ''} title={show(v).length > 40 ? show(v) : undefined}>
                  {show(v)}
                </td>
              ))}
            </tr>
          ))}
          {last < order.length && <tr class="spacer" style={{ height: `${(order.length - last) * rowHeight}px` }} aria-hidden="true" />}
        </tbody>
      </table>
    </div>
  );
}
