/**
 * CSV for spreadsheets (segment export, contacts export). RFC 4180 quoting, plus the defence
 * against formula injection: a cell that a spreadsheet would evaluate (`=`, `+`, `-`, `@`, tab or
 * CR first, even after leading whitespace — the EspoCRM bypass — or their full-width forms) is
 * prefixed with `'` so it is shown as text.
 */

const formulaStart = new Set(["=", "+", "-", "@", "\uFF1D", "\uFF0B", "\uFF0D", "\uFF20"]);

/** Turns any value into a cell that no spreadsheet evaluates; idempotent. */
export function safeCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  // Numbers and booleans are data; a negative number is not a formula.
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "";
  if (typeof value === "boolean") return String(value);
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (text === "") return text;
  if (text[0] === "\t" || text[0] === "\r") return `'${text}`;
  const first = firstVisible(text);
  return first !== undefined && formulaStart.has(first) ? `'${text}` : text;
}

/** Spreadsheets skip leading spaces and control characters before deciding that a cell is a formula. */
function firstVisible(text: string): string | undefined {
  for (const ch of text) {
    const code = ch.codePointAt(0) as number;
    if (code <= 0x20 || code === 0x7f || code === 0x200b || code === 0xfeff || /\s/u.test(ch)) continue;
    return ch;
  }
  return undefined;
}

function quote(cell: string): string {
  return /[",\r\n]/.test(cell) ? `"${cell.replace(/"/g, '""')}"` : cell;
}

/** Renders rows as RFC 4180 CSV (CRLF line ends); every cell goes through `safeCell`. */
export function toCsv(rows: string[][]): string {
  return (
    rows.map((row) => row.map((cell) => quote(safeCell(cell))).join(",")).join("\r\n") + (rows.length ? "\r\n" : "")
  );
}
