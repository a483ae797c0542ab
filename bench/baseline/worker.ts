/**
 * The benchmark's baseline: the least a Worker can do to store a batch of events — parse the
 * JSON and insert each event as one D1 row. Tessera's end-to-end ingest is compared with it.
 */
interface Env {
  DB: D1Database;
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/healthz" || url.pathname === "/noop") return Response.json({ ok: true });
    if (url.pathname === "/count") {
      const row = await env.DB.prepare("SELECT count(*) AS n FROM raw_events").first<{ n: number }>();
      return Response.json({ events: row?.n ?? 0 });
    }
    if (url.pathname === "/v1/batch" && request.method === "POST") {
      const body = (await request.json()) as { batch: { messageId: string }[] };
      const insert = env.DB.prepare("INSERT OR IGNORE INTO raw_events (message_id, body) VALUES (?, ?)");
      await env.DB.batch(body.batch.map((m) => insert.bind(m.messageId, JSON.stringify(m))));
      return Response.json({ success: true });
    }
    return new Response("not found", { status: 404 });
  },
} satisfies ExportedHandler<Env>;
