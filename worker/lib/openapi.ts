/**
 * The API documents itself: each route registers its zod schemas here next to its handler, and
 * `GET /api/openapi.json` renders them with zod's own JSON Schema conversion.
 */
import { z } from "zod";

type Method = "get" | "post" | "put" | "patch" | "delete";

export interface RouteDoc {
  method: Method;
  /** OpenAPI path, e.g. `/api/sites/{id}`. */
  path: string;
  summary: string;
  tag: string;
  /** `admin` (Bearer token or dashboard session), `writeKey`, or `none`. */
  auth?: "admin" | "writeKey" | "none";
  body?: z.ZodType;
  query?: z.ZodType;
  responses?: Partial<Record<number, z.ZodType | string>>;
}

const routes: RouteDoc[] = [];

/** Registers a route's documentation (call at module load, next to the handler). */
export function describe(doc: RouteDoc): void {
  routes.push(doc);
}

const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

function schemaOf(s: z.ZodType) {
  return z.toJSONSchema(s, { unrepresentable: "any", io: "input" });
}

function queryParameters(s: z.ZodType) {
  const json = schemaOf(s) as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, schema]) => ({
    name,
    in: "query",
    required: json.required?.includes(name) ?? false,
    schema,
  }));
}

/** The OpenAPI 3.1 document for every registered route. */
export function openApiDocument() {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const pathParams = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: "path",
      required: true,
      schema: { type: "string" },
    }));
    const responses: Record<string, unknown> = {};
    for (const [status, res] of Object.entries(r.responses ?? { 200: "OK" })) {
      responses[status] =
        typeof res === "string"
          ? { description: res }
          : { description: "OK", content: { "application/json": { schema: schemaOf(res as z.ZodType) } } };
    }
    responses.default = { description: "Error", content: { "application/json": { schema: schemaOf(errorSchema) } } };
    paths[r.path] ??= {};
    paths[r.path][r.method] = {
      summary: r.summary,
      tags: [r.tag],
      security:
        r.auth === "none" ? [] : r.auth === "writeKey" ? [{ writeKey: [] }] : [{ adminToken: [] }, { session: [] }],
      parameters: [...pathParams, ...(r.query ? queryParameters(r.query) : [])],
      ...(r.body
        ? { requestBody: { required: true, content: { "application/json": { schema: schemaOf(r.body) } } } }
        : {}),
      responses,
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Tessera API",
      version: "0.1.0",
      description: "Customer data platform with a light CRM, on Cloudflare Workers.",
    },
    components: {
      securitySchemes: {
        adminToken: { type: "http", scheme: "bearer", description: "ADMIN_TOKEN" },
        session: { type: "apiKey", in: "cookie", name: "tessera_session" },
        writeKey: { type: "http", scheme: "basic", description: "The site's write key as the username" },
      },
    },
    paths,
  };
}
