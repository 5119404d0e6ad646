// The models a run saved: flavour, format, files, and how to load one back.
import { Code, Section } from '../../components/common';
import { withParams } from '../../lib/router';
import type { ModelSpec, RunDetail } from '../../lib/types';

function snippet(runId: string, name: string): string {
  const args = name === 'model' ? `"${runId}"` : `"${runId}", name="${name}"`;
  return `import autolog\nmodel = autolog.load_model(${args})`;
}

function files(spec: ModelSpec): string[] {
  if (Array.isArray(spec.files)) return spec.files.map(String);
  if (typeof spec.file === 'string') return [spec.file];
  return [];
}

export function Models({ run }: { run: RunDetail }) {
  const names = Object.keys(run.models).sort();
  if (!names.length) return <p class="muted">This run saved no model.</p>;
  return (
    <>
      {names.map((name) => {
        const spec = run.models[name];
        const base = spec.path ? String(spec.path).replace(/\/$/, '') : '';
        const rows: [string, unknown][] = [
          ['flavour', spec.flavor],
          ['format', spec.format],
          ['class', spec.class],
          ['framework version', spec.framework_version],
          ['path', spec.path],
        ];
        return (
          <Section title={`Model “${name}”`} key={name}>
            <table class="kv">
              <tbody>
                {rows
                  .filter(([, v]) => v !== undefined && v !== null && v !== '')
                  .map(([k, v]) => (
                    <tr key={k}>
                      <th scope="row">{k}</th>
                      <td class="mono">{String(v)}</td>
                    </tr>
                  ))}
                {files(spec).length > 0 && (
                  <tr>
                    <th scope="row">files</th>
                    <td>
                      {files(spec).map((f) => {
                        const path = base ? `${base}/${f}` : f;
                        return (
                          <div key={f}>
                            <a class="mono" href={withParams({ tab: 'files', file: path })}>
                              {f}
                            </a>
                          </div>
                        );
                      })}
                    </td>
                  </tr>
                )}
              </tbody>
            </table>
            <p>Load it back (the framework that saved it must be installed):</p>
            <Code text={snippet(run.id, name)} label="load_model snippet" />
          </Section>
        );
      })}
    </>
  );
}
