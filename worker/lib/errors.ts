/**
 * One error shape for every 4xx and 5xx: `{"error":{"code","message","details"}}`.
 * Routes throw `ApiError`; `onError` renders it (and anything unexpected, as a 500 without the
 * stack, logged server-side).
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export const errorCodes = {
  bad_request: 400,
  invalid_json: 400,
  validation_failed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof errorCodes;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

export class ApiError extends HTTPException {
  readonly code: ErrorCode;
  readonly details: unknown;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, opts: { details?: unknown; headers?: Record<string, string> } = {}) {
    super(errorCodes[code], { message });
    this.code = code;
    this.details = opts.details;
    this.headers = opts.headers ?? {};
  }
}

/** Renders the envelope. */
export function errorResponse(
  c: Context,
  code: ErrorCode,
  message: string,
  details?: unknown,
  headers: Record<string, string> = {},
): Response {
  const body: ErrorBody = { error: details === undefined ? { code, message } : { code, message, details } };
  return c.json(body, errorCodes[code], headers);
}

const codeByStatus: Partial<Record<number, ErrorCode>> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "rate_limited",
  503: "unavailable",
};

/** `app.onError`: known errors keep their code; anything else is a logged, opaque 500. */
export function onError(err: Error, c: Context): Response {
  if (err instanceof ApiError) return errorResponse(c, err.code, err.message, err.details, err.headers);
  if (err instanceof HTTPException && err.status < 500) {
    // Thrown by hono middleware (bodyLimit, malformed JSON in hono's own parsers, …).
    const code = codeByStatus[err.status] ?? "bad_request";
    return errorResponse(c, code, err.message || code.replace(/_/g, " "));
  }
  console.error("unhandled error", c.req.method, new URL(c.req.url).pathname, err);
  return errorResponse(c, "internal", "Internal error");
}
