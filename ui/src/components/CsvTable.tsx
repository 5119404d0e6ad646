// A CSV/TSV file shown as a table (quoted fields, embedded separators and newlines handled).

export function parseCsv(text: string, sep = ','): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === sep) {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

const MAX_ROWS = 1000;

export function CsvTable({ text, sep }: { text: string; sep?: string }) {
  const rows = parseCsv(text, sep);
  if (!rows.length) return <p class="muted">The file is empty.</p>;
  const [head, ...body] = rows;
  return (
    <div class="table-scroll">
      <table class="data-table csv">
        <thead>
          <tr>{head.map((c, i) => <th key={i}>{c}</th>)}</tr>
        </thead>
        <tbody>
          {body.slice(0, MAX_ROWS).map((r, i) => (
            <tr key={i}>{r.map((c, j) => <td key={j}>{c}</td>)}</tr>
          ))}
        </tbody>
      </table>
      {body.length > MAX_ROWS && <p class="muted">First {MAX_ROWS.toLocaleString()} of {body.length.toLocaleString()} rows.</p>}
    </div>
  );
}
