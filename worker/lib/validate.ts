/**
 * zod at the boundary. `jsonBody`, `query` and `params` validate a request part and make the
 * parsed value available through `c.req.valid(...)`; failures become the one error envelope.
 */
import type { MiddlewareHandler } from "hono";
import { validator } from "hono/validator";
import { z } from "zod";
import { ApiError } from "./errors";

/** Turns zod issues into `details`: a list of `{path, message}`. */
export function issuesOf(error: z.ZodError) {
  return error.issues.slice(0, 20).map((i) => ({ path: i.path.join("."), message: i.message }));
}

function check<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ApiError("validation_failed", `Invalid ${what}`, { details: issuesOf(result.error) });
  return result.data;
}

/** Parses a body as JSON whatever its content type; malformed JSON is a 400 `invalid_json`. */
export async function readJson(req: { text(): Promise<string> }): Promise<unknown> {
  const text = await req.text();
  if (text.trim() === "") throw new ApiError("invalid_json", "Request body is empty; expected JSON");
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError("invalid_json", "Request body is not valid JSON");
  }
}

/**
 * Validates the JSON body. Unlike hono's own json validator it parses whatever the content type
 * (a missing or `text/plain` type must not turn a body into `{}`) and reports malformed JSON in
 * the error envelope.
 */
export const jsonBody =
  <T extends z.ZodType>(
    schema: T,
  ): MiddlewareHandler<any, string, { in: { json: z.input<T> }; out: { json: z.output<T> } }> =>
  async (c, next) => {
    c.req.addValidatedData("json", check(schema, await readJson(c.req), "request body") as object);
    await next();
  };

export const query = <T extends z.ZodType>(schema: T) =>
  validator("query", (v) => check(schema, v, "query parameters"));

export const params = <T extends z.ZodType>(schema: T) =>
  validator("param", (v) => check(schema, v, "path parameters"));

/** A bounded id path parameter, shared by every `/:id` route. */
export const idParam = z.object({ id: z.string().min(1).max(100) });
