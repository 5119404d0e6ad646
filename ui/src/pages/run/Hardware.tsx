// Hardware charts: the system/* metrics the monitor sampled, grouped as CPU, memory, disk,
// network and one group per GPU.
import { ErrorBox } from '../../components/common';
import { MetricChart, type ShownRun, type View } from '../../components/MetricGrid';
import type { Histories } from '../../lib/histories';

export function hardwareGroups(keys: string[]): [string, string[]][] {
  const groups = new Map<string, string[]>();
  const put = (g: string, k: string) => {
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(k);
  };
  for (const key of [...keys].sort()) {
    const name = key.slice('system/'.length);
    const gpu = /^gpu\/(\d+)\//.exec(name);
    if (gpu) put(`GPU ${gpu[1]}`, key);
    else if (/^(process_)?cpu/.test(name)) put('CPU', key);
    else if (/^memory|^process_rss/.test(name)) put('Memory', key);
    else if (/^disk/.test(name)) put('Disk', key);
    else if (/^network/.test(name)) put('Network', key);
    else put('Other', key);
  }
  const order = ['CPU', 'Memory', 'Disk', 'Network'];
  return [...groups.entries()].sort(([a], [b]) => {
    const ia = order.indexOf(a) < 0 ? (a.startsWith('GPU') ? 10 : 20) : order.indexOf(a);
    const ib = order.indexOf(b) < 0 ? (b.startsWith('GPU') ? 10 : 20) : order.indexOf(b);
    return ia - ib || a.localeCompare(b, undefined, { numeric: true });
  });
}

export function Hardware({ keys, runs, histories, view }: { keys: string[]; runs: ShownRun[]; histories: Histories; view: View }) {
  if (!keys.length)
    return (
      <p class="muted">
        No hardware metrics. The monitor samples CPU, memory, disk, network and each GPU while a run trains
        (<code>AUTOLOG_SYSTEM_METRICS=1</code>, the default).
      </p>
    );
  return (
    <>
      {histories.error !== null && <ErrorBox what="load the hardware metrics" error={histories.error} />}
      <div class="chart-grid hw-grid">
        {hardwareGroups(keys).map(([group, ks]) => [
          <h3 class="grid-head" key={'h' + group}>
            {group}
          </h3>,
          ...ks.map((k) => <MetricChart key={k} metric={k} runs={runs} histories={histories} view={view} syncKey="system" height={160} />),
        ])}
      </div>
    </>
  );
}
