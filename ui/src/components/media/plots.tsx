// Evaluation plots drawn from their data (docs/format.md, "plot" media): a confusion matrix as
// a labelled heatmap with its counts; ROC, precision-recall, predicted-vs-true and residuals as
// uPlot charts. Shared by the run page (one run) and compare (several runs in one chart).
import { useEffect } from 'preact/hooks';
import { registerView } from '../../lib/debug';
import { fmtNumber } from '../../lib/format';
import type { XYChartProps, XYSeries } from './XYChart';

export interface PlotData {
  plot: string;
  labels?: unknown[];
  matrix?: number[][];
  fpr?: number[];
  tpr?: number[];
  auc?: number;
  precision?: number[];
  recall?: number[];
  average_precision?: number;
  positive?: unknown;
  true?: number[];
  predicted?: number[];
  residual?: number[];
}

export const CURVES = new Set(['roc_curve', 'precision_recall_curve', 'predicted_vs_true', 'residuals']);

/** What a plot is about: "AUC 0.93", "AP 0.88". */
export function plotSummary(data: PlotData): string {
  if (data.plot === 'roc_curve' && typeof data.auc === 'number') return `AUC ${fmtNumber(data.auc, 4)}`;
  if (data.plot === 'precision_recall_curve' && typeof data.average_precision === 'number')
    return `AP ${fmtNumber(data.average_precision, 4)}`;
  if (data.plot === 'confusion_matrix' && data.matrix) {
    const total = data.matrix.flat().reduce((a, b) => a + b, 0);
    const right = data.matrix.reduce((a, row, i) => a + (row[i] ?? 0), 0);
    return total ? `accuracy ${fmtNumber(right / total, 4)} (${right.toLocaleString()} of ${total.toLocaleString()})` : '';
  }
  return '';
}

type Layout = Omit<XYChartProps, 'id' | 'title' | 'series' | 'children'>;

function bounds(...lists: number[][]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const list of lists)
    for (const v of list)
      if (Number.isFinite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
  return Number.isFinite(lo) ? [lo, hi] : [0, 1];
}

/** The axes of a curve plot, and a reference line (chance, the diagonal, zero). */
export function curveLayout(plot: string, all: PlotData[]): { layout: Layout; guide: XYSeries | null } {
  const guide = (xs: number[], ys: number[]): XYSeries => ({ label: 'reference', color: '', xs, ys, style: 'guide' });
  if (plot === 'roc_curve')
    return { layout: { xLabel: 'false positive rate', yLabel: 'true positive rate', xRange: [0, 1], yRange: [0, 1.02] }, guide: guide([0, 1], [0, 1]) };
  if (plot === 'precision_recall_curve')
    return { layout: { xLabel: 'recall', yLabel: 'precision', xRange: [0, 1], yRange: [0, 1.02] }, guide: null };
  if (plot === 'predicted_vs_true') {
    const [lo, hi] = bounds(...all.flatMap((d) => [d.true ?? [], d.predicted ?? []]));
    return { layout: { xLabel: 'true', yLabel: 'predicted' }, guide: guide([lo, hi], [lo, hi]) };
  }
  const [lo, hi] = bounds(...all.map((d) => d.predicted ?? []));
  return { layout: { xLabel: 'predicted', yLabel: 'residual (true − predicted)' }, guide: guide([lo, hi], [0, 0]) };
}

/** One run's series of a curve plot. */
export function curveSeries(data: PlotData, label: string, color: string, runId?: string): XYSeries | null {
  const of = (xs: number[] | undefined, ys: number[] | undefined, style: XYSeries['style']): XYSeries | null =>
    xs && ys && xs.length === ys.length ? { label, color, xs, ys, style, runId } : null;
  if (data.plot === 'roc_curve') return of(data.fpr, data.tpr, 'line');
  if (data.plot === 'precision_recall_curve') return of(data.recall, data.precision, 'line');
  if (data.plot === 'predicted_vs_true') return of(data.true, data.predicted, 'dots');
  if (data.plot === 'residuals') return of(data.predicted, data.residual, 'dots');
  return null;
}

function heat(share: number): string {
  return `rgba(37, 99, 235, ${(0.06 + 0.9 * share).toFixed(3)})`;
}

export function ConfusionMatrix({ id, labels, matrix }: { id: string; labels: unknown[]; matrix: number[][] }) {
  useEffect(() => registerView(id, () => ({ labels, matrix })), [id, labels, matrix]);
  const max = Math.max(1, ...matrix.flat());
  const names = labels.map(String);
  const rowTotals = matrix.map((row) => row.reduce((a, b) => a + b, 0));
  return (
    <div class="confusion-box" data-view={id}>
      <table class={`confusion-matrix${names.length > 12 ? ' dense' : ''}`} aria-label="Confusion matrix: rows are true labels, columns predicted">
        <thead>
          <tr>
            <th class="corner">
              <span class="muted">true ↓ predicted →</span>
            </th>
            {names.map((name, j) => (
              <th key={j} scope="col" title={name}>
                {name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {matrix.map((row, i) => (
            <tr key={i}>
              <th scope="row" title={names[i]}>
                {names[i]}
              </th>
              {row.map((count, j) => (
                <td
                  key={j}
                  class={`${count / max > 0.5 ? 'dark' : ''}${i === j ? ' diagonal' : ''}`}
                  style={{ background: heat(count / max) }}
                  data-true={names[i]}
                  data-predicted={names[j]}
                  data-count={count}
                  title={`true ${names[i]}, predicted ${names[j]}: ${count.toLocaleString()}${rowTotals[i] ? ` (${fmtNumber((100 * count) / rowTotals[i], 3)}% of the row)` : ''}`}
                >
                  {count.toLocaleString()}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
