/**
 * CSV import: the file is read as text in the browser, the server parses it and suggests a column
 * mapping (preview), the user adjusts the mapping, then imports and sees the report.
 */
import { useEffect, useState } from "hono/jsx/dom";
import { api, type ImportPreview, type ImportReport, type ImportResult } from "../api";
import { num, text } from "../format";
import { Link } from "../router";
import { ErrorBox, Section, useAction } from "../ui";

/** 5 MB: the server's bound on an import body. */
export const MAX_CSV_BYTES = 5 * 1024 * 1024;

const targets = ["ignore", "email", "user_id", "phone", "name"];

/** The trait a column maps to by default: its header, reduced the way the server's suggestion does. */
export function traitName(header: string): string {
  return (
    header
      .trim()
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "_")
      .replace(/^_+|_+$/g, "")
      .slice(0, 64) || "column"
  );
}

function MappingTable(props: {
  preview: ImportPreview;
  mapping: Record<string, string>;
  onChange: (column: string, target: string) => void;
}) {
  const { preview, mapping } = props;
  const errors = new Map((preview.errors ?? []).map((e) => [e.row, e.reason]));
  return (
    <div class="table-wrap">
      <table class="list import">
        <thead>
          <tr>
            <th title="Line in the file (the header is line 1)">Line</th>
            {preview.header.map((h) => {
              const trait = `trait:${traitName(h)}`;
              return (
                <th>
                  <div title={h}>{text(h, 40)}</div>
                  <select
                    aria-label={`Map column ${text(h, 40)}`}
                    value={mapping[h] ?? "ignore"}
                    onChange={(e: Event) => props.onChange(h, (e.target as HTMLSelectElement).value)}
                  >
                    {targets.map((t) => (
                      <option value={t}>{t === "ignore" ? "Ignore" : t}</option>
                    ))}
                    <option value={trait}>{`Trait: ${traitName(h)}`}</option>
                    {mapping[h]?.startsWith("trait:") && mapping[h] !== trait ? (
                      <option value={mapping[h]}>{`Trait: ${mapping[h].slice(6)}`}</option>
                    ) : null}
                  </select>
                </th>
              );
            })}
            <th>Problems</th>
          </tr>
        </thead>
        <tbody>
          {preview.rows.map((row, i) => {
            // Rows are numbered like spreadsheet lines, as the server reports them: the header is line 1.
            const line = i + 2;
            return (
              <tr class={errors.has(line) ? "bad" : undefined}>
                <td>{line}</td>
                {preview.header.map((_, c) => (
                  <td>{text(row[c], 80)}</td>
                ))}
                <td>{text(errors.get(line) ?? "", 200)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function Report(props: { result: ImportResult }) {
  const [report, setReport] = useState<ImportReport | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let stop = false;
    let tries = 0;
    // Rows go through the pipeline queue; the created/merged split is known once they are processed.
    const poll = () => {
      api.importReport(props.result.importId).then(
        (r) => {
          if (stop) return;
          setReport(r);
          if ((r.pending ?? 0) > 0 && ++tries < 30) setTimeout(poll, 2000);
        },
        (e) => !stop && setError(e),
      );
    };
    poll();
    return () => {
      stop = true;
    };
  }, [props.result.importId]);
  const rejected = props.result.rejected;
  return (
    <Section title="Import report">
      <div class="tiles">
        <div class="tile">
          <span class="n">{num(props.result.accepted)}</span>
          <span>rows accepted</span>
        </div>
        <div class="tile">
          <span class="n">{num(report?.created)}</span>
          <span>contacts created</span>
        </div>
        <div class="tile">
          <span class="n">{num(report?.merged)}</span>
          <span>merged into existing</span>
        </div>
        <div class="tile">
          <span class="n">{num(report?.rejected ?? rejected.length)}</span>
          <span>rows rejected</span>
        </div>
      </div>
      {report?.pending ? <p class="muted">{num(report.pending)} rows still processing…</p> : null}
      <ErrorBox error={error} />
      {rejected.length ? (
        <table class="list">
          <thead>
            <tr>
              <th>Line</th>
              <th>Reason</th>
            </tr>
          </thead>
          <tbody>
            {rejected.slice(0, 200).map((r) => (
              <tr>
                <td>{r.row}</td>
                <td>{text(r.reason, 300)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <p>
        <Link href="/dashboard/contacts">Go to the contacts</Link>
      </p>
    </Section>
  );
}

export function ImportPage() {
  const [csv, setCsv] = useState("");
  const [fileName, setFileName] = useState("");
  const [preview, setPreview] = useState<ImportPreview | null>(null);
  const [mapping, setMapping] = useState<Record<string, string>>({});
  const [result, setResult] = useState<ImportResult | null>(null);
  const action = useAction();

  const load = (file: File) => {
    setPreview(null);
    setResult(null);
    if (file.size > MAX_CSV_BYTES) {
      action.setError(new Error(`The file is ${num(file.size)} bytes; the limit is ${num(MAX_CSV_BYTES)}.`));
      return;
    }
    setFileName(file.name);
    action.run(async () => {
      const content = await file.text();
      setCsv(content);
      const p = await api.previewImport(content);
      setPreview(p);
      setMapping(p.mapping ?? {});
    });
  };

  return (
    <>
      <p class="crumbs">
        <Link href="/dashboard/contacts">Contacts</Link> /
      </p>
      <h1>Import contacts from CSV</h1>
      <Section title="1. Choose a file">
        <p class="muted">
          The first row names the columns. Rows are matched to existing contacts by email and user id, like events.
        </p>
        <input
          type="file"
          accept=".csv,text/csv"
          aria-label="CSV file"
          onChange={(e: Event) => {
            const file = (e.target as HTMLInputElement).files?.[0];
            if (file) load(file);
          }}
        />
        {fileName ? <p class="meta">{text(fileName, 100)}</p> : null}
      </Section>
      <ErrorBox error={action.error} />
      {preview && !result ? (
        <Section title="2. Map the columns and check the preview">
          <p class="muted">
            {num(preview.totalRows ?? preview.rows.length)} rows; the first {preview.rows.length} are shown.
          </p>
          <MappingTable
            preview={preview}
            mapping={mapping}
            onChange={(column, target) => setMapping({ ...mapping, [column]: target })}
          />
          <div class="actions">
            <button
              type="button"
              class="secondary"
              disabled={action.busy}
              onClick={() =>
                action.run(async () => {
                  setPreview(await api.previewImport(csv, mapping));
                })
              }
            >
              Check again
            </button>
            <button
              type="button"
              disabled={action.busy || !Object.values(mapping).some((t) => t === "email" || t === "user_id")}
              title="Map at least an email or user id column"
              onClick={() =>
                action.run(async () => {
                  setResult(await api.runImport(csv, mapping));
                })
              }
            >
              3. Import
            </button>
          </div>
        </Section>
      ) : null}
      {result ? <Report result={result} /> : null}
    </>
  );
}
