// Small pieces every page uses.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { ApiError } from '../lib/api';
import type { Status } from '../lib/types';

export function StatusBadge({ status }: { status: Status | string }) {
  return <span class={`status status-${String(status).toLowerCase()}`}>{status}</span>;
}

export function ErrorBox({ what, error, retry }: { what: string; error: unknown; retry?: () => void }) {
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div class="error" role="alert">
      <strong>Could not {what}.</strong> <span class="error-message">{message}</span>
      {retry && (
        <button type="button" class="link-button" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function isNotFound(error: unknown): boolean {
  return error instanceof ApiError && error.status === 404;
}

export function CopyText({ text, label }: { text: string; label?: string }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setDone(true);
      setTimeout(() => setDone(false), 1500);
    } catch {
      setDone(false);
    }
  };
  return (
    <button type="button" class="copy" onClick={copy} title={`Copy ${label ?? text}`} aria-label={`Copy ${label ?? text}`}>
      {done ? 'copied' : 'copy'}
    </button>
  );
}

export function Code({ text, label }: { text: string; label?: string }) {
  return (
    <div class="code-block">
      <pre>
        <code>{text}</code>
      </pre>
      <CopyText text={text} label={label ?? 'snippet'} />
    </div>
  );
}

export function Section({ title, children, id, aside }: { title: string; children: ComponentChildren; id?: string; aside?: ComponentChildren }) {
  return (
    <section class="section" id={id} aria-label={title}>
      <h2>
        {title}
        {aside && <span class="section-aside">{aside}</span>}
      </h2>
      {children}
    </section>
  );
}

export const FIRST_RUN = `import autolog
autolog.enable()
model.fit(X, y)  # train as usual: params, metrics and the model are recorded`;

export function NoRuns({ where }: { where: string }) {
  return (
    <div class="empty">
      <h2>No runs yet</h2>
      <p>
        {where} has no runs. Three lines in a training script record one, with its params, metrics, model and
        hardware usage:
      </p>
      <Code text={FIRST_RUN} label="the three lines" />
      <p class="muted">
        Runs go to <code>./autolog-runs</code> (or <code>AUTOLOG_DIR</code>); this page shows them as they train.
      </p>
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="loading muted" aria-busy="true">
      Loading {what}…
    </p>
  );
}

export function NotFound({ what }: { what: string }) {
  return (
    <div class="empty not-found">
      <h1>Not found</h1>
      <p>{what}</p>
      <p>
        <a href="/">All runs</a>
      </p>
    </div>
  );
}
