import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CsvError, parseCsv } from "../../worker/crm/csv-parse";
import { safeCell, toCsv } from "../../worker/lib/csv";

const limits = { maxRows: 3, maxColumns: 3, maxCellChars: 5 };

describe("CSV parser", () => {
  it("splits plain records on commas and CRLF or LF", () => {
    expect(parseCsv("a,b\r\n1,2\n3,4")).toEqual([
      ["a", "b"],
      ["1", "2"],
      ["3", "4"],
    ]);
  });

  it("keeps commas, line breaks and escaped quotes inside quoted fields", () => {
    expect(parseCsv('name,note\r\n"Doe, Jane","said ""hi""\r\nthen left"\r\n')).toEqual([
      ["name", "note"],
      ["Doe, Jane", 'said "hi"\r\nthen left'],
    ]);
  });

  it("strips a UTF-8 byte order mark", () => {
    expect(parseCsv("\uFEFFemail\nx@y.example")[0]).toEqual(["email"]);
  });

  it("keeps empty fields, including a trailing one", () => {
    expect(parseCsv('a,b,c\n,"",\n')).toEqual([
      ["a", "b", "c"],
      ["", "", ""],
    ]);
  });

  it("skips blank lines and a final newline", () => {
    expect(parseCsv("a\n\n1\r\n\r\n2\n")).toEqual([["a"], ["1"], ["2"]]);
  });

  it("keeps a quote inside an unquoted field as a character", () => {
    expect(parseCsv('size\n5" screen')[1]).toEqual(['5" screen']);
  });

  it("rejects text after a closing quote", () => {
    expect(() => parseCsv('a\n"x"y')).toThrow(CsvError);
  });

  it("rejects a quoted field that is never closed, naming its line", () => {
    expect(() => parseCsv('a\n1\n"open')).toThrow(/Line 3/);
  });

  it("enforces the row, column and cell limits", () => {
    expect(() => parseCsv("h\n1\n2\n3\n4", limits)).toThrow(/more than 3 rows/);
    expect(parseCsv("h\n1\n2\n3", limits)).toHaveLength(4);
    expect(() => parseCsv("a,b,c,d", limits)).toThrow(/more than 3 columns/);
    expect(() => parseCsv("abcdef", limits)).toThrow(/longer than 5/);
    expect(() => parseCsv('"abc""def"', limits)).toThrow(/longer than 5/);
  });

  it("reads back whatever toCsv wrote (cells that need no formula escaping)", () => {
    const cell = fc.string({ unit: "grapheme", maxLength: 20 }).filter((s) => s !== "" && safeCell(s) === s);
    fc.assert(
      fc.property(fc.array(fc.array(cell, { minLength: 2, maxLength: 2 }), { minLength: 1, maxLength: 5 }), (rows) => {
        expect(parseCsv(toCsv(rows), { maxRows: 10, maxColumns: 10, maxCellChars: 1000 })).toEqual(rows);
      }),
    );
  });
});
