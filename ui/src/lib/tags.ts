// Which of a run's tags the person set, and which autolog's integrations recorded about the
// training (the data's fingerprint, the estimator, checkpoints: `docs/capture.md`). Tables show
// the person's tags first; the recorded ones follow, dimmed, so none is hidden.

/** autolog's context (`autolog.*`: the run page's Context) and MLflow's own bookkeeping
 * (`mlflow.*`): not among the runs table's tags. */
function isContextTag(key: string): boolean {
  return key.startsWith('autolog.') || key.startsWith('mlflow.');
}

const RECORDED_PREFIXES = ['dataset.', 'checkpoint.', 'lightning.', 'transformers.'];
const RECORDED_KEYS = new Set(['estimator_name', 'estimator_class', 'sklearn_function', 'candidate_index']);

/** A tag an integration recorded about the training, not one the person set. */
export function isRecordedTag(key: string): boolean {
  return RECORDED_KEYS.has(key) || RECORDED_PREFIXES.some((p) => key.startsWith(p));
}

/** The order tags are listed in: the person's first, then the recorded ones, each by key. */
export function byTagOrder([a]: [string, string], [b]: [string, string]): number {
  return Number(isRecordedTag(a)) - Number(isRecordedTag(b)) || a.localeCompare(b);
}

/** The runs table's tags: neither context nor MLflow's, in that order. */
export function listedTags(tags: Record<string, string>): [string, string][] {
  return Object.entries(tags)
    .filter(([k]) => !isContextTag(k))
    .sort(byTagOrder);
}
