// The frame of one media key: its name, a note, what it holds, and the step slider under it.
import type { ComponentChildren } from 'preact';
import type { MediaKey } from '../../lib/types';

export function Card({ entry, aside, children, wide }: { entry: MediaKey; aside?: ComponentChildren; children: ComponentChildren; wide?: boolean }) {
  return (
    <figure class={`media-card${wide ? ' wide' : ''}`} data-key={entry.key} data-kind={entry.kind} aria-label={`${entry.kind} ${entry.key}`}>
      <figcaption class="media-head">
        <span class="media-key mono" title={entry.key}>
          {entry.key}
        </span>
        {aside && <span class="media-aside muted">{aside}</span>}
      </figcaption>
      {children}
    </figure>
  );
}
