// What a run logged besides scalars: evaluation plots, images, histograms, tables and texts,
// one card per key. Cards draw (and load their files) only once scrolled near, so a run with
// hundreds of weight histograms opens as fast as one with a single image; each card is as tall
// from the start as once drawn, so the page does not move as they fill in.
import type { ComponentChildren, Ref } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { Section } from '../../components/common';
import { CardSkeleton } from '../../components/media/Card';
import { HistogramCard } from '../../components/media/HistogramCard';
import { ImageCard } from '../../components/media/ImageCard';
import { PlotCard } from '../../components/media/PlotCard';
import { TableCard } from '../../components/media/TableCard';
import { TextCard } from '../../components/media/TextCard';
import { setParams } from '../../lib/router';
import type { MediaKey, MediaKind } from '../../lib/types';

const SECTIONS: { kind: MediaKind; title: string }[] = [
  { kind: 'plot', title: 'Evaluation plots' },
  { kind: 'image', title: 'Images' },
  { kind: 'histogram', title: 'Histograms' },
  { kind: 'table', title: 'Tables' },
  { kind: 'text', title: 'Texts' },
];

const CARDS: Record<MediaKind, (p: { runId: string; entry: MediaKey }) => preact.JSX.Element> = {
  plot: PlotCard,
  image: ImageCard,
  histogram: HistogramCard,
  table: TableCard,
  text: TextCard,
};

/** Its children once it has come within a screen of the viewport (then it stays); before, the
 * placeholder `placeholder(ref)` draws, as large as the children will be. */
export function WhenNear({ children, placeholder }: { children: ComponentChildren; placeholder: (ref: Ref<HTMLElement>) => ComponentChildren }) {
  const ref = useRef<HTMLElement>(null);
  const [near, setNear] = useState(typeof IntersectionObserver === 'undefined');
  useEffect(() => {
    if (near || !ref.current) return;
    const observer = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && setNear(true), { rootMargin: '600px 0px' });
    observer.observe(ref.current);
    return () => observer.disconnect();
  }, [near]);
  return <>{near ? children : placeholder(ref)}</>;
}

export function Media({ runId, keys, find }: { runId: string; keys: MediaKey[]; find: string }) {
  const needle = find.toLowerCase();
  const shown = keys.filter((k) => !needle || k.key.toLowerCase().includes(needle));
  return (
    <div class="media-page">
      <div class="controls">
        <label>
          <span class="visually-hidden">Find a media key</span>
          <input type="search" placeholder="Find a key" value={find} onInput={(e) => setParams({ find: (e.target as HTMLInputElement).value || null })} />
        </label>
        <span class="muted">
          {shown.length === keys.length ? `${keys.length} keys` : `${shown.length} of ${keys.length} keys`} · ← → on a slider steps through
        </span>
      </div>
      {SECTIONS.map(({ kind, title }) => {
        const entries = shown.filter((k) => k.kind === kind);
        if (!entries.length) return null;
        const Card = CARDS[kind];
        return (
          <Section key={kind} title={title} aside={`${entries.length}`} id={`media-${kind}`}>
            <div class={`media-grid media-grid-${kind}`}>
              {entries.map((entry) => (
                <WhenNear key={entry.key} placeholder={(ref) => <CardSkeleton entry={entry} boxRef={ref} />}>
                  <Card runId={runId} entry={entry} />
                </WhenNear>
              ))}
            </div>
          </Section>
        );
      })}
      {!shown.length && <p class="muted">No media key matches “{find}”.</p>}
    </div>
  );
}
