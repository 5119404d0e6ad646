// The runs table's data: top-level rows fetched by page (offset/limit) as they scroll into
// view, children folded under their parent until expanded. Display index -> row.
import { api } from './api';
import type { RunRow } from './types';

export const PAGE = 100;

export type Query = Record<string, string | number | boolean | null | undefined>;

interface Expansion {
  id: string;
  at: number; // the parent's top-level index
  rows: RunRow[] | null; // null while loading
  error: unknown;
}

export type Item =
  | { kind: 'row'; row: RunRow; depth: 0 | 1; index: number }
  | { kind: 'pending'; depth: 0 | 1; index: number }
  | { kind: 'message'; text: string; depth: 1; index: number };

export class RunsModel {
  total: number | null = null;
  error: unknown = null;
  private pages = new Map<number, RunRow[]>();
  private inFlight = new Set<number>();
  private expansions: Expansion[] = [];
  private generation = 0;

  constructor(
    private query: Query,
    private changed: () => void,
  ) {}

  setQuery(query: Query): void {
    this.query = query;
    this.generation++;
    this.pages.clear();
    this.inFlight.clear();
    this.expansions = [];
    this.total = null;
    this.error = null;
    this.ensure(0, PAGE);
  }

  /** The same rows with other columns (one picked or removed, or the defaults grown as runs
   * log new metrics): the rows shown stay, in place, until they arrive with the new columns;
   * pages out of view are fetched again when they come into view. */
  async reshape(query: Query, from: number, to: number): Promise<void> {
    this.query = query;
    this.generation++; // answers asked with the old columns are dropped
    this.inFlight.clear();
    const shown = this.pagesOf(from, to);
    for (const p of [...this.pages.keys()]) if (!shown.has(p)) this.pages.delete(p);
    await this.refresh(from, to);
  }

  get count(): number {
    return (this.total ?? 0) + this.expansions.reduce((n, e) => n + (e.rows ? Math.max(1, e.rows.length) : 1), 0);
  }

  private topAt(index: number): RunRow | null {
    return this.pages.get(Math.floor(index / PAGE))?.[index % PAGE] ?? null;
  }

  item(d: number): Item {
    let offset = 0;
    for (const e of this.expansions) {
      if (d <= e.at + offset) break;
      const size = e.rows ? Math.max(1, e.rows.length) : 1;
      if (d <= e.at + offset + size) {
        const j = d - offset - e.at - 1;
        if (!e.rows) return { kind: 'pending', depth: 1, index: d };
        if (!e.rows.length) return { kind: 'message', text: e.error ? String(e.error) : 'no children', depth: 1, index: d };
        return { kind: 'row', row: e.rows[j], depth: 1, index: d };
      }
      offset += size;
    }
    const row = this.topAt(d - offset);
    return row ? { kind: 'row', row, depth: 0, index: d } : { kind: 'pending', depth: 0, index: d };
  }

  /** The top-level index a display row is, or is under. */
  private topOf(d: number): number {
    let offset = 0;
    for (const e of this.expansions) {
      if (d <= e.at + offset) break;
      const size = e.rows ? Math.max(1, e.rows.length) : 1;
      if (d <= e.at + offset + size) return e.at;
      offset += size;
    }
    return d - offset;
  }

  /** The top-level index range [lo, hi) that display rows [from, to) cover. */
  private topRange(from: number, to: number): [number, number] {
    return [this.topOf(from), this.topOf(Math.max(from, to - 1)) + 1];
  }

  /** The pages that hold display rows [from, to) (one at least). */
  private pagesOf(from: number, to: number): Set<number> {
    const [lo, hi] = this.topRange(from, to);
    const pages = new Set<number>();
    for (let p = Math.floor(lo / PAGE); p <= Math.floor(Math.max(lo, hi - 1) / PAGE); p++) pages.add(p);
    return pages;
  }

  /** Fetch the pages display rows [from, to) need. */
  ensure(from: number, to: number): void {
    const [lo, hi] = this.topRange(from, to);
    const last = this.total === null ? Math.floor(lo / PAGE) : Math.floor(Math.max(0, Math.min(hi, this.total) - 1) / PAGE);
    for (let p = Math.floor(lo / PAGE); p <= last; p++) if (!this.pages.has(p)) void this.fetchPage(p);
  }

  private async fetchPage(p: number, refresh = false): Promise<void> {
    if (this.inFlight.has(p)) return;
    this.inFlight.add(p);
    const generation = this.generation;
    try {
      const page = await api.runs({ ...this.query, offset: p * PAGE, limit: PAGE });
      if (generation !== this.generation) return;
      this.pages.set(p, page.runs);
      this.total = page.total;
      this.error = null;
    } catch (error) {
      if (generation !== this.generation) return;
      if (!refresh || this.total === null) this.error = error;
    } finally {
      if (generation === this.generation) {
        this.inFlight.delete(p);
        this.changed();
      }
    }
  }

  /** Live: fetch again the pages display rows [from, to) show, and every expanded parent's
   * children; what is shown stays until the new rows arrive. */
  async refresh(from: number, to: number): Promise<void> {
    const pages = this.pagesOf(from, to);
    const before = this.total;
    await Promise.all([...pages].map((p) => this.fetchPage(p, true)));
    if (this.total !== before) {
      // rows were added or removed: pages out of view may have shifted; fetch them on demand
      for (const p of [...this.pages.keys()]) if (!pages.has(p)) this.pages.delete(p);
    }
    // a parent that moved (another sort position, deleted) folds its children again
    this.expansions = this.expansions.filter((e) => this.topAt(e.at)?.id === e.id);
    await Promise.all(this.expansions.map((e) => this.loadChildren(e)));
    this.changed();
  }

  /** Is a row of display rows [from, to) RUNNING? */
  running(from: number, to: number): boolean {
    for (let d = from; d < to; d++) {
      const item = this.item(d);
      if (item.kind === 'row' && item.row.status === 'RUNNING') return true;
    }
    return false;
  }

  isExpanded(id: string): boolean {
    return this.expansions.some((e) => e.id === id);
  }

  toggle(row: RunRow, displayIndex: number): void {
    const existing = this.expansions.findIndex((e) => e.id === row.id);
    if (existing >= 0) {
      this.expansions.splice(existing, 1);
      this.changed();
      return;
    }
    let offset = 0;
    for (const e of this.expansions) if (e.at + offset < displayIndex) offset += e.rows ? Math.max(1, e.rows.length) : 1;
    const expansion: Expansion = { id: row.id, at: displayIndex - offset, rows: null, error: null };
    this.expansions.push(expansion);
    this.expansions.sort((a, b) => a.at - b.at);
    this.changed();
    void this.loadChildren(expansion);
  }

  private async loadChildren(e: Expansion): Promise<void> {
    const generation = this.generation;
    const { sort, columns } = this.query;
    try {
      const page = await api.runs({ parent: e.id, sort, columns, limit: 1000 });
      if (generation !== this.generation) return;
      e.rows = page.runs;
      e.error = page.total > page.runs.length ? `first ${page.runs.length} of ${page.total} children` : null;
    } catch (error) {
      e.rows = e.rows ?? [];
      e.error = error instanceof Error ? error.message : String(error);
    }
    this.changed();
  }
}
