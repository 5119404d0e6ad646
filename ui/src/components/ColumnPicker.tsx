// Pick the params, metrics (last / min / max) and tags shown as columns.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Keys } from '../lib/types';

export function columnLabel(id: string): string {
  const m = /^(params|metrics|tags)\.(.*?)(:min|:max)?$/.exec(id);
  if (!m) return id;
  return m[2] + (m[3] ? ` (${m[3].slice(1)})` : '');
}

export function ColumnPicker({ keys, selected, onChange }: { keys: Keys | undefined; selected: string[]; onChange: (next: string[]) => void }) {
  const [open, setOpen] = useState(false);
  const [find, setFind] = useState('');
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const close = (e: MouseEvent) => !box.current?.contains(e.target as Node) && setOpen(false);
    const esc = (e: KeyboardEvent) => e.key === 'Escape' && setOpen(false);
    document.addEventListener('mousedown', close);
    document.addEventListener('keydown', esc);
    return () => {
      document.removeEventListener('mousedown', close);
      document.removeEventListener('keydown', esc);
    };
  }, [open]);

  const has = new Set(selected);
  const flip = (id: string) => onChange(has.has(id) ? selected.filter((s) => s !== id) : [...selected, id]);
  const match = (k: string) => !find || k.toLowerCase().includes(find.toLowerCase());
  const check = (id: string, label: string) => (
    <label class="pick" key={id}>
      <input type="checkbox" checked={has.has(id)} onChange={() => flip(id)} /> {label}
    </label>
  );

  return (
    <div class="picker" ref={box}>
      <button type="button" aria-expanded={open} onClick={() => setOpen(!open)}>
        Columns{selected.length ? ` (${selected.length})` : ''}
      </button>
      {open && (
        <div class="picker-panel" role="dialog" aria-label="Columns">
          <input type="search" placeholder="Find a key" value={find} onInput={(e) => setFind((e.target as HTMLInputElement).value)} autoFocus />
          {!keys && <p class="muted">Loading keys…</p>}
          {keys && (
            <div class="picker-groups">
              <fieldset>
                <legend>Metrics</legend>
                {keys.metrics.filter((k) => !k.startsWith('system/') && match(k)).map((k) => (
                  <div class="pick-metric" key={k}>
                    <span class="pick-key" title={k}>
                      {k}
                    </span>
                    {check(`metrics.${k}`, 'last')}
                    {check(`metrics.${k}:min`, 'min')}
                    {check(`metrics.${k}:max`, 'max')}
                  </div>
                ))}
              </fieldset>
              <fieldset>
                <legend>Params</legend>
                {keys.params.filter(match).map((k) => check(`params.${k}`, k))}
              </fieldset>
              <fieldset>
                <legend>Tags</legend>
                {keys.tags.filter((k) => match(k) && !k.startsWith('autolog.')).map((k) => check(`tags.${k}`, k))}
              </fieldset>
            </div>
          )}
          {selected.length > 0 && (
            <button type="button" class="link-button" onClick={() => onChange([])}>
              Remove all
            </button>
          )}
        </div>
      )}
    </div>
  );
}
