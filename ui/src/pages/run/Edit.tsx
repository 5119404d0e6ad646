// Edits go through PATCH /api/v1/runs/{id} (CSRF header with the cookie); the reply is the
// run as stored, so the page shows what a reload would.
import { useState } from 'preact/hooks';
import { api } from '../../lib/api';
import { byTagOrder, isRecordedTag } from '../../lib/tags';
import type { RunDetail } from '../../lib/types';

function useSave(run: RunDetail, onChange: (r: RunDetail) => void) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const save = async (body: Record<string, unknown>) => {
    setBusy(true);
    setError(null);
    try {
      onChange(await api.patch(run.id, body));
      return true;
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, save };
}

function Failed({ error }: { error: string | null }) {
  return error ? (
    <p class="error" role="alert">
      <strong>Not saved.</strong> {error}
    </p>
  ) : null;
}

export function RenameButton({ run, onChange }: { run: RunDetail; onChange: (r: RunDetail) => void }) {
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(run.name);
  const { busy, error, save } = useSave(run, onChange);
  if (!editing)
    return (
      <button
        type="button"
        class="small"
        onClick={() => {
          setName(run.name);
          setEditing(true);
        }}
      >
        Rename
      </button>
    );
  return (
    <form
      class="edit-row"
      onSubmit={async (e) => {
        e.preventDefault();
        if (name.trim() && (await save({ name: name.trim() }))) setEditing(false);
      }}
    >
      <label class="visually-hidden" for="rename">
        New name
      </label>
      <input id="rename" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} autoFocus onKeyDown={(e) => e.key === 'Escape' && setEditing(false)} />
      <button type="submit" class="primary small" disabled={busy || !name.trim()}>
        Save
      </button>
      <button type="button" class="small" onClick={() => setEditing(false)}>
        Cancel
      </button>
      <Failed error={error} />
    </form>
  );
}

export function DeleteButton({ run, onChange }: { run: RunDetail; onChange: (r: RunDetail) => void }) {
  const { busy, error, save } = useSave(run, onChange);
  return (
    <>
      {run.deleted ? (
        <button type="button" class="small" disabled={busy} onClick={() => save({ deleted: false })}>
          Restore
        </button>
      ) : (
        <button
          type="button"
          class="small danger"
          disabled={busy}
          onClick={() => confirm(`Delete run “${run.name}”? It can be restored from the runs table's “Deleted” filter.`) && save({ deleted: true })}
        >
          Delete
        </button>
      )}
      <Failed error={error} />
    </>
  );
}

export function TagEditor({ run, onChange, canWrite }: { run: RunDetail; onChange: (r: RunDetail) => void; canWrite: boolean }) {
  const [text, setText] = useState('');
  const { busy, error, save } = useSave(run, onChange);
  const tags = Object.entries(run.tags)
    .filter(([k]) => !k.startsWith('autolog.'))
    .sort(byTagOrder);
  const add = async () => {
    const m = /^\s*([^=]+?)\s*(?:=\s*(.*?))?\s*$/.exec(text);
    if (!m) return;
    if (await save({ tags: { [m[1]]: m[2] ?? '' } })) setText('');
  };
  return (
    <div>
      <div class="tags tag-list">
        {tags.length === 0 && <span class="muted">No tags.</span>}
        {tags.map(([k, v]) => (
          <span class={isRecordedTag(k) ? 'tag tag-edit tag-recorded' : 'tag tag-edit'} key={k} data-tag={k}>
            {k}={v}
            {canWrite && (
              <button type="button" aria-label={`Remove tag ${k}`} title={`Remove tag ${k}`} disabled={busy} onClick={() => save({ remove_tags: [k] })}>
                ×
              </button>
            )}
          </span>
        ))}
      </div>
      {canWrite && (
        <form
          class="edit-row"
          onSubmit={(e) => {
            e.preventDefault();
            void add();
          }}
        >
          <label class="visually-hidden" for="new-tag">
            New tag (key=value)
          </label>
          <input id="new-tag" placeholder="key=value" value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} />
          <button type="submit" class="small" disabled={busy || !text.trim()}>
            Add tag
          </button>
        </form>
      )}
      <Failed error={error} />
    </div>
  );
}

export function NoteEditor({ run, onChange, canWrite }: { run: RunDetail; onChange: (r: RunDetail) => void; canWrite: boolean }) {
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(run.note ?? '');
  const { busy, error, save } = useSave(run, onChange);
  if (!editing)
    return (
      <div>
        {run.note ? <p class="note">{run.note}</p> : <p class="muted">No note.</p>}
        {canWrite && (
          <button
            type="button"
            class="small"
            onClick={() => {
              setText(run.note ?? '');
              setEditing(true);
            }}
          >
            {run.note ? 'Edit note' : 'Add a note'}
          </button>
        )}
      </div>
    );
  return (
    <form
      onSubmit={async (e) => {
        e.preventDefault();
        if (await save({ note: text })) setEditing(false);
      }}
    >
      <label class="visually-hidden" for="note">
        Note
      </label>
      <textarea id="note" value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} autoFocus />
      <div class="edit-row">
        <button type="submit" class="primary small" disabled={busy}>
          Save note
        </button>
        <button type="button" class="small" onClick={() => setEditing(false)}>
          Cancel
        </button>
      </div>
      <Failed error={error} />
    </form>
  );
}
