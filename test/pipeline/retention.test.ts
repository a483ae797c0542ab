import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { RETENTION_MS, sweepRetention } from "../../worker/pipeline";
import { uid } from "./factory";

const DAY = 86_400_000;

async function seed(now: number) {
  const [oldRejected, newRejected, oldLetter, newLetter] = [uid("rej_"), uid("rej_"), uid("dl_"), uid("dl_")];
  await env.DB.batch([
    ...[
      [oldRejected, now - 31 * DAY],
      [newRejected, now - 29 * DAY],
    ].map(([id, at]) =>
      env.DB.prepare(
        "INSERT INTO rejected_events (id, site_id, reason, payload, received_at) VALUES (?, NULL, 'invalid', '{\"email\":\"ada@example.com\"}', ?)",
      ).bind(id, at),
    ),
    ...[
      [oldLetter, now - 31 * DAY],
      [newLetter, now - 29 * DAY],
    ].map(([id, at]) =>
      env.DB.prepare(
        "INSERT INTO dead_letters (id, queue, body, created_at) VALUES (?, 'tessera-events', '{}', ?)",
      ).bind(id, at),
    ),
  ]);
  return { oldRejected, newRejected, oldLetter, newLetter };
}

async function exists(table: "rejected_events" | "dead_letters", id: string) {
  return (await env.DB.prepare(`SELECT 1 AS found FROM ${table} WHERE id = ?`).bind(id).first("found")) === 1;
}

describe("sweepRetention", () => {
  it("deletes rejected events and dead letters older than 30 days and keeps younger ones", async () => {
    const now = Date.now();
    const ids = await seed(now);
    const swept = await sweepRetention(env, now);

    expect(await exists("rejected_events", ids.oldRejected)).toBe(false);
    expect(await exists("dead_letters", ids.oldLetter)).toBe(false);
    expect(await exists("rejected_events", ids.newRejected)).toBe(true);
    expect(await exists("dead_letters", ids.newLetter)).toBe(true);
    expect(swept.rejectedEvents).toBeGreaterThanOrEqual(1);
    expect(swept.deadLetters).toBeGreaterThanOrEqual(1);
  });

  it("works off a backlog larger than one round", async () => {
    const now = Date.now();
    const old = now - 40 * DAY;
    const ids = Array.from({ length: 1500 }, () => uid("rej_"));
    const statements = [];
    for (let i = 0; i < ids.length; i += 30) {
      const part = ids.slice(i, i + 30);
      statements.push(
        env.DB.prepare(
          `INSERT INTO rejected_events (id, reason, payload, received_at) VALUES ${part.map(() => "(?, 'invalid', '{}', ?)").join(", ")}`,
        ).bind(...part.flatMap((id) => [id, old])),
      );
    }
    await env.DB.batch(statements);
    await sweepRetention(env, now);
    const left = await env.DB.prepare("SELECT count(*) AS n FROM rejected_events WHERE received_at < ?")
      .bind(now - RETENTION_MS)
      .first("n");
    expect(left).toBe(0);
  });
});
