/**
 * Many rows in one statement: the rows travel as one JSON array parameter and SQL reads column
 * `k` of each as `j.value ->> k` from `json_each(?1) j`.
 *
 * D1 binds at most 100 parameters per statement, so a multi-row `VALUES` list holds 6 events of
 * 16 columns, and a consumer batch of 2,000 events was hundreds of statements. Each statement
 * costs D1 (and the Worker) a round of preparing, binding and answering whatever its size:
 * measured on local D1, 2,000 event rows took 78 ms as 334 statements and 38 ms as 4; 1,500
 * profile updates 150 ms one per row and 52 ms as one. A JSON parameter is a string, which D1
 * caps at 2 MB, so rows are split into arrays of at most `MAX_JSON_CHARS` UTF-16 units (at most
 * 1.5 MB of UTF-8).
 *
 * Values must be strings, finite numbers or null: JSON text (traits, properties) goes in as a
 * string, so `->>` returns it byte for byte.
 */

/** Upper bound of one statement's JSON parameter, in string length (≤ 3 UTF-8 bytes each). */
export const MAX_JSON_CHARS = 512 * 1024;

/** `j.value ->> 0, …, j.value ->> (n - 1)`: the columns of a row, in order. */
export function jsonColumns(n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, i) => `j.value ->> ${from + i}`);
}

/**
 * One statement per chunk of `rows`: `sql` is the statement's text, reading the rows with
 * `json_each(?1) j`; `params` are bound after it, as ?2, ?3, …
 */
export function jsonRowStatements(
  db: D1Database,
  sql: string,
  rows: readonly unknown[][],
  params: readonly unknown[] = [],
): D1PreparedStatement[] {
  const out: D1PreparedStatement[] = [];
  let chunk: string[] = [];
  let length = 2;
  const flush = () => {
    if (chunk.length === 0) return;
    out.push(db.prepare(sql).bind(`[${chunk.join(",")}]`, ...params));
    chunk = [];
    length = 2;
  };
  for (const row of rows) {
    const text = JSON.stringify(row);
    if (chunk.length > 0 && length + text.length + 1 > MAX_JSON_CHARS) flush();
    chunk.push(text);
    length += text.length + 1;
  }
  flush();
  return out;
}
