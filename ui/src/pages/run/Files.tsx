// The artifact browser: the run's files; images, text, JSON, CSV (as a table) and Markdown
// (rendered safely) previewed inline through ?preview=1, anything else downloadable.
import { CsvTable } from '../../components/CsvTable';
import { ErrorBox, Loading } from '../../components/common';
import { Markdown } from '../../components/Markdown';
import { api, fileUrl } from '../../lib/api';
import { fmtBytes } from '../../lib/format';
import { useFetch } from '../../lib/hooks';
import { withParams } from '../../lib/router';
import type { FileEntry } from '../../lib/types';

const IMAGE = /\.(png|jpe?g|gif|webp)$/i;
const TEXT = /\.(txt|log|json|csv|tsv|md|yaml|yml|py|patch)$/i;
const KINDS = (path: string) => path.split('/').pop() ?? path;

export function previewKind(path: string): 'image' | 'text' | null {
  if (IMAGE.test(path)) return 'image';
  if (TEXT.test(path) || /(^|\/)requirements\.txt$/.test(path)) return 'text';
  return null;
}

function TextPreview({ runId, path }: { runId: string; path: string }) {
  const file = useFetch((signal) => api.preview(runId, path, signal), [runId, path]);
  if (file.error) return <ErrorBox what={`preview ${path}`} error={file.error} retry={file.reload} />;
  if (!file.data) return <Loading what={path} />;
  const { text, truncated } = file.data;
  const lower = path.toLowerCase();
  let body;
  if (lower.endsWith('.json')) {
    try {
      body = <pre class="json">{JSON.stringify(JSON.parse(text), null, 2)}</pre>;
    } catch {
      body = <pre>{text}</pre>;
    }
  } else if (lower.endsWith('.csv')) body = <CsvTable text={text} />;
  else if (lower.endsWith('.tsv')) body = <CsvTable text={text} sep={'\t'} />;
  else if (lower.endsWith('.md')) body = <Markdown text={text} />;
  else body = <pre>{text}</pre>;
  return (
    <>
      {truncated && <p class="notice">The first 2 MiB of the file; download it for the rest.</p>}
      {body}
    </>
  );
}

function Preview({ runId, file }: { runId: string; file: FileEntry }) {
  const kind = previewKind(file.path);
  return (
    <div class="preview" aria-label={`Preview of ${file.path}`}>
      <div class="preview-head">
        <strong class="mono">{file.path}</strong>
        <span class="muted">{fmtBytes(file.size)}</span>
        <a href={fileUrl(runId, file.path)} download={KINDS(file.path)}>
          Download
        </a>
      </div>
      {kind === 'image' && <img src={fileUrl(runId, file.path, true)} alt={file.path} />}
      {kind === 'text' && <TextPreview runId={runId} path={file.path} />}
      {kind === null && <p class="muted">No preview for this kind of file; download it.</p>}
    </div>
  );
}

export function Files({ runId, selected }: { runId: string; selected: string | null }) {
  const files = useFetch((signal) => api.files(runId, signal), [runId]);
  if (files.error) return <ErrorBox what="list the run's files" error={files.error} retry={files.reload} />;
  if (!files.data) return <Loading what="files" />;
  const list = [...files.data.files].sort((a, b) => a.path.localeCompare(b.path));
  if (!list.length) return <p class="muted">This run has no files. <code>run.log_artifact(path)</code> adds one; models are saved here too.</p>;
  const current = list.find((f) => f.path === selected) ?? list.find((f) => previewKind(f.path)) ?? list[0];
  return (
    <div class="artifacts">
      <ul class="file-list" aria-label="Files">
        {list.map((f) => (
          <li key={f.path}>
            <a href={withParams({ file: f.path })} aria-current={f.path === current.path ? 'true' : undefined}>
              <span class="mono">{f.path}</span>
              <span class="size">{fmtBytes(f.size)}</span>
            </a>
          </li>
        ))}
      </ul>
      <Preview runId={runId} file={current} key={current.path} />
    </div>
  );
}
