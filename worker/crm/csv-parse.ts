/**
 * A bounded RFC 4180 parser for imported files: quoted fields (with commas, line breaks and `""`
 * escapes), CRLF or LF line ends, a leading UTF-8 BOM. Lenient where spreadsheets are (a quote
 * inside an unquoted field is kept as a character), strict where input would otherwise be
 * silently misread (text after a closing quote, a quote left open). Blank lines are skipped.
 */

export interface CsvLimits {
  /** Records after the header. */
  maxRows: number;
  maxColumns: number;
  maxCellChars: number;
}

export const importLimits: CsvLimits = { maxRows: 50_000, maxColumns: 100, maxCellChars: 10_000 };

export class CsvError extends Error {
  constructor(
    message: string,
    /** 1-based line of the file where the problem is. */
    readonly line: number,
  ) {
    super(`Line ${line}: ${message}`);
  }
}

/** Parses CSV text into records (the first is the header); throws `CsvError` on malformed input or a limit. */
export function parseCsv(input: string, limits: CsvLimits = importLimits): string[][] {
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const records: string[][] = [];
  let record: string[] = [];
  let cell = "";
  let quoted = false;
  let line = 1;
  let recordLine = 1;
  let i = 0;

  const pushCell = () => {
    if (record.length >= limits.maxColumns) throw new CsvError(`more than ${limits.maxColumns} columns`, recordLine);
    record.push(cell);
    cell = "";
  };
  const pushRecord = () => {
    pushCell();
    // A line with nothing on it is not a record (trailing newline, blank separator lines).
    if (!(record.length === 1 && record[0] === "")) {
      if (records.length > limits.maxRows) throw new CsvError(`more than ${limits.maxRows} rows`, recordLine);
      records.push(record);
    }
    record = [];
  };
  const append = (chunk: string) => {
    if (cell.length + chunk.length > limits.maxCellChars) {
      throw new CsvError(`a cell is longer than ${limits.maxCellChars} characters`, line);
    }
    cell += chunk;
  };

  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          append('"');
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        const next = text[i];
        if (next !== undefined && next !== "," && next !== "\r" && next !== "\n") {
          throw new CsvError("unexpected text after a closing quote", line);
        }
        continue;
      }
      // Copy the run of ordinary characters up to the next quote in one step.
      const end = text.indexOf('"', i);
      const chunk = end === -1 ? text.slice(i) : text.slice(i, end);
      for (let k = chunk.indexOf("\n"); k !== -1; k = chunk.indexOf("\n", k + 1)) line++;
      append(chunk);
      i += chunk.length;
      continue;
    }
    if (ch === ",") {
      pushCell();
      i++;
    } else if (ch === "\r" || ch === "\n") {
      pushRecord();
      i += ch === "\r" && text[i + 1] === "\n" ? 2 : 1;
      line++;
      recordLine = line;
    } else if (ch === '"' && cell === "") {
      quoted = true;
      i++;
    } else {
      // An unquoted run up to the next delimiter.
      let end = i;
      while (end < text.length && text[end] !== "," && text[end] !== "\r" && text[end] !== "\n") end++;
      append(text.slice(i, end));
      i = end;
    }
  }
  if (quoted) throw new CsvError("a quoted field is not closed", recordLine);
  if (cell !== "" || record.length > 0) pushRecord();
  return records;
}
