import { describe, expect, it } from "vitest";
import { safeCell, toCsv } from "../../worker/lib/csv";

describe("CSV export helpers", () => {
  it.each([
    ['=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'],
    ["+1+1", "'+1+1"],
    ["-2+3", "'-2+3"],
    ["@SUM(A1)", "'@SUM(A1)"],
    ["\t=1", "'\t=1"],
    ["\r=1", "'\r=1"],
    ["  =1", "'  =1"],
    ["\u00a0=1", "'\u00a0=1"],
    ["\uFF1D1+1", "'\uFF1D1+1"],
    ["\uFF0B1", "'\uFF0B1"],
    ["\uFF0D1", "'\uFF0D1"],
    ["\uFF20x", "'\uFF20x"],
  ])("neutralises the formula %j", (input, expected) => {
    expect(safeCell(input)).toBe(expected);
  });

  it("leaves ordinary values alone and is idempotent", () => {
    expect(safeCell("ann@shop.example")).toBe("ann@shop.example");
    expect(safeCell(-5)).toBe("-5");
    expect(safeCell(null)).toBe("");
    expect(safeCell(safeCell("=1"))).toBe("'=1");
  });

  it("quotes per RFC 4180 with CRLF line ends", () => {
    expect(
      toCsv([
        ["a", 'say "hi"', "x,y"],
        ["line\nbreak", "=1", ""],
      ]),
    ).toBe('a,"say ""hi""","x,y"\r\n"line\nbreak",\'=1,\r\n');
  });
});
