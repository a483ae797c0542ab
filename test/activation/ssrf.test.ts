import { describe, expect, it } from "vitest";
import { checkDestinationUrl, isPrivateAddress } from "../../worker/activation/ssrf";

const refused: [string, string][] = [
  ["plain http", "http://hooks.example.com/x"],
  ["loopback", "https://127.0.0.1/x"],
  ["loopback, decimal form", "https://2130706433/x"],
  ["loopback, hex form", "https://0x7f000001/x"],
  ["loopback, octal form", "https://0177.0.0.1/x"],
  ["loopback, short form", "https://127.1/x"],
  ["unspecified", "https://0.0.0.0/x"],
  ["private 10/8", "https://10.1.2.3/x"],
  ["private 172.16/12", "https://172.31.255.255/x"],
  ["private 192.168/16", "https://192.168.0.1/x"],
  ["link-local / cloud metadata", "https://169.254.169.254/latest/meta-data"],
  ["carrier-grade NAT", "https://100.64.0.1/x"],
  ["multicast", "https://224.0.0.1/x"],
  ["broadcast", "https://255.255.255.255/x"],
  ["IPv6 loopback", "https://[::1]/x"],
  ["IPv6 unspecified", "https://[::]/x"],
  ["IPv4-mapped IPv6 loopback", "https://[::ffff:127.0.0.1]/x"],
  ["IPv4-mapped IPv6 metadata", "https://[::ffff:a9fe:a9fe]/x"],
  ["NAT64 of a private address", "https://[64:ff9b::10.0.0.1]/x"],
  ["IPv6 link-local", "https://[fe80::1]/x"],
  ["IPv6 unique-local", "https://[fd12:3456::1]/x"],
  ["IPv6 unique-local fc00", "https://[fc00::1]/x"],
  ["IPv6 multicast", "https://[ff02::1]/x"],
  ["localhost", "https://localhost/x"],
  ["a .localhost name", "https://api.localhost/x"],
  ["an .internal name", "https://metadata.google.internal/x"],
  ["a .local name", "https://printer.local/x"],
  ["a single-label name", "https://intranet/x"],
  ["localhost with a trailing dot", "https://localhost./x"],
  ["credentials", "https://user:pass@hooks.example.com/x"],
  ["a non-standard port", "https://hooks.example.com:8080/x"],
  ["another scheme", "ftp://hooks.example.com/x"],
  ["garbage", "not a url"],
];

const accepted = [
  "https://hooks.example.com/tessera",
  "https://hooks.example.com:8443/tessera",
  "https://93.184.216.34/hook",
  "https://[2606:4700:4700::1111]/hook",
];

describe("SSRF guard", () => {
  it.each(refused)("refuses %s", (_, url) => {
    expect(checkDestinationUrl(url, false).ok).toBe(false);
  });

  it.each(accepted)("accepts the public URL %s", (url) => {
    expect(checkDestinationUrl(url, false).ok).toBe(true);
  });

  it("permits http and loopback only when private destinations are allowed (local development)", () => {
    expect(checkDestinationUrl("http://localhost:8787/hook", true).ok).toBe(true);
    expect(checkDestinationUrl("http://127.0.0.1:9000/hook", true).ok).toBe(true);
    expect(checkDestinationUrl("http://u:p@localhost/hook", true).ok).toBe(false);
    expect(checkDestinationUrl("file:///etc/passwd", true).ok).toBe(false);
  });

  it("classifies resolved addresses for the send-time DNS check", () => {
    expect(isPrivateAddress("10.0.0.7")).toBe(true);
    expect(isPrivateAddress("fd00::1")).toBe(true);
    expect(isPrivateAddress("::ffff:192.168.1.1")).toBe(true);
    expect(isPrivateAddress("93.184.216.34")).toBe(false);
    expect(isPrivateAddress("2606:4700::6810:84e5")).toBe(false);
  });
});
