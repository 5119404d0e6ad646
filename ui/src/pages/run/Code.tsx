// The code a run ran (docs/capture.md, "Code"): the git state, the uncommitted changes to
// tracked files (code/diff.patch, highlighted, a section per file), the untracked files, and
// the entry script as it was.
import { ErrorBox, Loading, Section } from '../../components/common';
import { fileUrl } from '../../lib/api';
import { useFetch } from '../../lib/hooks';
import { fileText } from '../../lib/media';
import type { RunDetail } from '../../lib/types';

export const DIFF = 'code/diff.patch';
export const UNTRACKED = 'code/untracked.txt';
const OPEN_LINES = 800; // a file's diff longer than this starts folded

export interface DiffFile {
  name: string;
  lines: string[];
  added: number;
  removed: number;
}

export function parseDiff(text: string): DiffFile[] {
  const files: DiffFile[] = [];
  let current: DiffFile | null = null;
  for (const line of text.replace(/\n$/, '').split('\n')) {
    if (line.startsWith('diff --git ') || !current) {
      const m = /^diff --git a\/(.*) b\/(.*)$/.exec(line);
      current = { name: m ? m[2] : line.startsWith('diff ') ? line.slice(5) : '', lines: [], added: 0, removed: 0 };
      files.push(current);
    }
    current.lines.push(line);
    if (line.startsWith('+') && !line.startsWith('+++')) current.added++;
    else if (line.startsWith('-') && !line.startsWith('---')) current.removed++;
  }
  return files.filter((f) => f.lines.some(Boolean));
}

export function lineClass(line: string): string {
  if (line.startsWith('+++') || line.startsWith('---')) return 'diff-file';
  if (line.startsWith('+')) return 'diff-add';
  if (line.startsWith('-')) return 'diff-del';
  if (line.startsWith('@@')) return 'diff-hunk';
  if (/^(diff |index |new file|deleted file|similarity|rename |old mode|new mode|Binary files)/.test(line)) return 'diff-meta';
  return 'diff-context';
}

function Diff({ runId }: { runId: string }) {
  const text = useFetch(() => fileText(runId, DIFF), [runId]);
  if (text.error) return <ErrorBox what="load the diff" error={text.error} retry={text.reload} />;
  if (text.data === undefined) return <Loading what="the diff" />;
  const files = parseDiff(text.data);
  if (!files.length) return <p class="muted">No uncommitted changes to tracked files.</p>;
  return (
    <div class="diff-files">
      {files.map((f) => (
        <details key={f.name} class="diff-file-box" open={f.lines.length <= OPEN_LINES} data-file={f.name}>
          <summary>
            <span class="mono">{f.name}</span> <span class="diff-add-count">+{f.added}</span> <span class="diff-del-count">−{f.removed}</span>
          </summary>
          <pre class="diff">
            <code>
              {f.lines.map((line, i) => (
                <span key={i} class={lineClass(line)}>
                  {line + '\n'}
                </span>
              ))}
            </code>
          </pre>
        </details>
      ))}
    </div>
  );
}

function TextFile({ runId, path, what }: { runId: string; path: string; what: string }) {
  const text = useFetch(() => fileText(runId, path), [runId, path]);
  if (text.error) return <ErrorBox what={`load ${what}`} error={text.error} retry={text.reload} />;
  if (text.data === undefined) return <Loading what={what} />;
  return <>{text.data}</>;
}

function Untracked({ runId }: { runId: string }) {
  const text = useFetch(() => fileText(runId, UNTRACKED), [runId]);
  if (text.error) return <ErrorBox what="load the untracked files" error={text.error} retry={text.reload} />;
  if (text.data === undefined) return <Loading what="the untracked files" />;
  const names = text.data.split('\n').filter(Boolean);
  return (
    <ul class="untracked mono">
      {names.map((n) => (
        <li key={n}>{n}</li>
      ))}
    </ul>
  );
}

export function hasCode(run: RunDetail): boolean {
  return run.artifacts.includes(DIFF) || run.artifacts.includes(UNTRACKED) || !!run.tags['autolog.code.entry_script'] || !!run.tags['autolog.code.diff_skipped'];
}

export function Code({ run }: { run: RunDetail }) {
  const tags = run.tags;
  const script = tags['autolog.code.entry_script'];
  const git: [string, string | undefined][] = [
    ['work tree', tags['autolog.code.git_root']],
    ['commit', tags['autolog.git.commit']],
    ['branch', tags['autolog.git.branch']],
    ['uncommitted changes', tags['autolog.git.dirty']],
  ];
  return (
    <div class="code-page">
      <table class="kv code-git">
        <tbody>
          {git
            .filter(([, v]) => v)
            .map(([k, v]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td class="mono">{v}</td>
              </tr>
            ))}
        </tbody>
      </table>
      <Section title="Uncommitted changes" aside={run.artifacts.includes(DIFF) ? <a href={fileUrl(run.id, DIFF)} download="diff.patch">Download</a> : undefined}>
        {tags['autolog.code.diff_skipped'] ? (
          <p class="notice">The diff was not recorded: {tags['autolog.code.diff_skipped']}</p>
        ) : run.artifacts.includes(DIFF) ? (
          <Diff runId={run.id} />
        ) : (
          <p class="muted">None: the tracked files were as committed.</p>
        )}
      </Section>
      {run.artifacts.includes(UNTRACKED) && (
        <Section title="Untracked files" aside={tags['autolog.code.untracked_files']}>
          <Untracked runId={run.id} />
        </Section>
      )}
      {script && run.artifacts.includes(script) && (
        <Section title={`Entry script: ${script.replace(/^code\//, '')}`} aside={<a href={fileUrl(run.id, script)} download={script.split('/').pop()}>Download</a>}>
          <pre class="entry-script">
            <code>
              <TextFile runId={run.id} path={script} what="the entry script" />
            </code>
          </pre>
        </Section>
      )}
    </div>
  );
}
