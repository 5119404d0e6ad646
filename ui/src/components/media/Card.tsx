// The frame of one media key: its name, a note, what it holds, and the step slider under it.
// A card takes its final height from the start (its body's place is kept while the data loads,
// the slider's too), so nothing on the page moves as the cards fill in: a click aimed at a
// table's header lands on it.
import type { ComponentChildren, Ref } from 'preact';
import { Loading } from '../common';
import type { MediaKey } from '../../lib/types';

export function Card({ entry, aside, children, boxRef }: { entry: MediaKey; aside?: ComponentChildren; children: ComponentChildren; boxRef?: Ref<HTMLElement> }) {
  return (
    <figure
      ref={boxRef}
      class={`media-card${entry.kind === 'table' ? ' wide' : ''}`}
      data-key={entry.key}
      data-kind={entry.kind}
      aria-label={`${entry.kind} ${entry.key}`}
    >
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

/** A card's body while its data loads: the place its kind's body takes once drawn
 * (`height` where the card knows it better, a table's from its row count). */
export function Pending({ entry, height }: { entry: MediaKey; height?: number }) {
  return (
    <div class={`media-body media-body-${entry.kind} media-pending`} style={height ? { height: `${height}px` } : undefined}>
      <Loading what={entry.key} />
    </div>
  );
}

/** Whether a card of `entry` has a step slider (plots and tables show one only over steps). */
export function hasSlider(entry: MediaKey): boolean {
  return entry.kind === 'plot' || entry.kind === 'table' ? entry.count > 1 : entry.count > 0;
}

/** The slider's place before the items are listed. */
export function SliderSpace() {
  return <div class="step-slider" aria-hidden="true" />;
}

/** A card not yet drawn (far from the viewport): its frame at its final height, nothing loaded. */
export function CardSkeleton({ entry, boxRef }: { entry: MediaKey; boxRef: Ref<HTMLElement> }) {
  return (
    <Card entry={entry} boxRef={boxRef}>
      <Pending entry={entry} />
      {hasSlider(entry) && <SliderSpace />}
    </Card>
  );
}
