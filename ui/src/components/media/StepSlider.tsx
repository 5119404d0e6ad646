// A slider over a key's items by step: drag, arrow keys (Home/End, PageUp/PageDown), or the
// buttons either side. Steps need not be evenly spaced: the slider moves item by item.

export function StepSlider({ steps, index, onChange, label }: { steps: number[]; index: number; onChange: (index: number) => void; label: string }) {
  const n = steps.length;
  if (n <= 1) return <div class="step-slider muted">step {steps[0] ?? ''}</div>;
  return (
    <div class="step-slider">
      <button type="button" class="small" aria-label={`Previous step of ${label}`} disabled={index <= 0} onClick={() => onChange(index - 1)}>
        ‹
      </button>
      <input
        type="range"
        min={0}
        max={n - 1}
        step={1}
        value={index}
        aria-label={`Step of ${label}`}
        aria-valuetext={`step ${steps[index]}`}
        onInput={(e) => onChange(Number((e.target as HTMLInputElement).value))}
      />
      <button type="button" class="small" aria-label={`Next step of ${label}`} disabled={index >= n - 1} onClick={() => onChange(index + 1)}>
        ›
      </button>
      <output class="mono step-value">step {steps[index]}</output>
      <span class="muted step-count">
        {index + 1}/{n}
      </span>
    </div>
  );
}
