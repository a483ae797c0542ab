/**
 * Reading an ingest body under a byte cap. The platform does not cap request bodies low enough,
 * so the cap is enforced twice: on `Content-Length` before reading, and on the bytes actually read
 * (a chunked body has no length, and a gzip body's length says nothing about what it inflates to).
 */
import { ApiError } from "../lib/errors";

const tooLarge = (cap: number) =>
  new ApiError("payload_too_large", `Request body is larger than ${Math.floor(cap / 1024)} KB`);

/** The body as text, at most `cap` bytes after decompression; 413 beyond, 415 for unknown encodings. */
export async function readCappedBody(req: Request, cap: number): Promise<string> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > cap) throw tooLarge(cap);
  if (!req.body) return "";

  const encoding = (req.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  let stream: ReadableStream<Uint8Array>;
  if (encoding === "identity" || encoding === "") stream = req.body;
  else if (encoding === "gzip") stream = req.body.pipeThrough(new DecompressionStream("gzip"));
  else
    throw new ApiError(
      "unsupported_media_type",
      `Content-Encoding ${encoding.slice(0, 20)} is not supported; use gzip`,
    );

  if (stream === req.body && declared !== null && /^\d{1,15}$/.test(declared.trim())) {
    // A declared length bounds what the runtime delivers (HTTP framing), and it is under the cap:
    // read the body whole instead of chunk by chunk.
    return decodeUtf8(new Uint8Array(await readWhole(req)));
  }
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > cap) {
        // Stop pulling (and inflating) at once: the rest of the body is never buffered.
        await reader.cancel().catch(() => {});
        throw tooLarge(cap);
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError(
      "bad_request",
      encoding === "gzip" ? "Request body is not valid gzip" : "Request body could not be read",
    );
  }

  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return decodeUtf8(bytes);
}

async function readWhole(req: Request): Promise<ArrayBuffer> {
  try {
    return await req.arrayBuffer();
  } catch {
    throw new ApiError("bad_request", "Request body could not be read");
  }
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError("invalid_json", "Request body is not UTF-8 text");
  }
}

/** Parses JSON text; empty or malformed bodies are a 400 `invalid_json`. */
export function parseJson(text: string): unknown {
  if (text.trim() === "") throw new ApiError("invalid_json", "Request body is empty; expected JSON");
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError("invalid_json", "Request body is not valid JSON");
  }
}
