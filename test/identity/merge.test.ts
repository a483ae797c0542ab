import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDb } from "../../worker/db";
import { mergeProfiles, unmergeProfile } from "../../worker/identity";
import { ApiError } from "../../worker/lib/errors";
import { saveSegment } from "../../worker/segments/service";
import { interleaveBeforeWrite } from "../helpers/race";
import {
  identify,
  identitiesOf,
  makeEvent,
  makeSiteRow,
  page,
  profileOf,
  profileRow,
  run,
  T0,
  uid,
} from "../pipeline/factory";

const MIN = 60_000;
const NOW = T0 + 60 * MIN;

/**
 * Two people the stitcher never linked: the winner signed in (user id, older traits), the loser
 * filled a form (email, a newer `city`, a page view). Returns both profile ids and identifiers.
 */
async function twoContacts(site: string) {
  const [winnerAnon, loserAnon, user] = [uid("a"), uid("a"), uid("u")];
  const email = `${uid("m")}@example.com`;
  await run(site, [
    identify({ anonymousId: winnerAnon, userId: user, traits: { plan: "pro", city: "Paris" }, timestamp: T0 }),
    makeEvent({ anonymousId: winnerAnon, event: "Order Completed", properties: { revenue: 10 }, timestamp: T0 + 1 }),
  ]);
  await run(site, [
    identify({ anonymousId: loserAnon, traits: { email, city: "Berlin" }, timestamp: T0 + MIN }),
    page({ anonymousId: loserAnon, timestamp: T0 + 2 * MIN }),
    makeEvent({
      anonymousId: loserAnon,
      event: "Order Completed",
      properties: { revenue: 5 },
      timestamp: T0 + 3 * MIN,
    }),
  ]);
  const winner = (await profileOf("user_id", user)) as string;
  const loser = (await profileOf("anonymous_id", loserAnon)) as string;
  expect(winner).not.toBe(loser);
  return { winner, loser, winnerAnon, loserAnon, user, email };
}

async function refusal(promise: Promise<unknown>): Promise<ApiError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  return err as ApiError;
}

async function memberships(profileId: string): Promise<string[]> {
  const { results } = await env.DB.prepare("SELECT segment_key FROM memberships WHERE profile_id = ? ORDER BY 1")
    .bind(profileId)
    .all<{ segment_key: string }>();
  return results.map((r) => r.segment_key);
}

describe("mergeProfiles (manual merge)", () => {
  it("folds the loser into the winner: identities, traits by event time and combined computed traits", async () => {
    const site = await makeSiteRow();
    const c = await twoContacts(site);
    await mergeProfiles(env.DB, c.winner, c.loser, NOW, "usr_test");

    expect((await profileRow(c.loser)).merged_into).toBe(c.winner);
    expect(await profileOf("email", c.email)).toBe(c.winner);
    expect(await identitiesOf(c.winner)).toEqual(
      [`anonymous_id:${c.loserAnon}`, `anonymous_id:${c.winnerAnon}`, `email:${c.email}`, `user_id:${c.user}`].sort(),
    );
    const winner = await profileRow(c.winner);
    // The loser's city came from a later event, so it wins; the winner's plan stays.
    expect(winner.traits).toMatchObject({ plan: "pro", city: "Berlin", email: c.email });
    expect(winner.email).toBe(c.email);
    expect(winner.computed.page_views).toBe(1);
    expect(winner.computed.event_counts["Order Completed"]).toBe(2);
    expect(winner.computed.total_revenue).toBe(15);
    expect(winner.merge_count).toBe(1);
  });

  it("moves the loser's notes and tasks to the winner and logs the merge with who asked for it", async () => {
    const site = await makeSiteRow();
    const c = await twoContacts(site);
    const [note, task] = [uid("note_"), uid("task_")];
    await env.DB.batch([
      env.DB.prepare("INSERT INTO notes (id, profile_id, body, created_at) VALUES (?, ?, 'called', ?)").bind(
        note,
        c.loser,
        T0,
      ),
      env.DB.prepare(
        "INSERT INTO tasks (id, profile_id, title, done, created_at, updated_at) VALUES (?, ?, 'call back', 0, ?, ?)",
      ).bind(task, c.loser, T0, T0),
    ]);
    const { mergeId } = await mergeProfiles(env.DB, c.winner, c.loser, NOW, "usr_test");

    expect(await env.DB.prepare("SELECT profile_id FROM notes WHERE id = ?").bind(note).first("profile_id")).toBe(
      c.winner,
    );
    expect(await env.DB.prepare("SELECT profile_id FROM tasks WHERE id = ?").bind(task).first("profile_id")).toBe(
      c.winner,
    );
    const log = await env.DB.prepare("SELECT * FROM profile_merges WHERE id = ?")
      .bind(mergeId)
      .first<{ winner_id: string; loser_id: string; actor: string; message_id: string | null; created_at: number }>();
    expect(log).toMatchObject({ winner_id: c.winner, loser_id: c.loser, actor: "usr_test", message_id: null });
    expect(log?.created_at).toBe(NOW);
  });

  it("can be undone with unmerge, which restores the loser with its identities and traits", async () => {
    const site = await makeSiteRow();
    const c = await twoContacts(site);
    const { mergeId } = await mergeProfiles(env.DB, c.winner, c.loser, NOW);
    const undone = await unmergeProfile(env.DB, c.winner, mergeId, NOW + MIN);

    expect(undone).toMatchObject({ restoredId: c.loser, survivorId: c.winner });
    expect((await profileRow(c.loser)).merged_into).toBeNull();
    expect(await profileOf("email", c.email)).toBe(c.loser);
    expect(await profileOf("anonymous_id", c.loserAnon)).toBe(c.loser);
    const winner = await profileRow(c.winner);
    expect(winner.traits).toMatchObject({ plan: "pro", city: "Paris" });
    expect(winner.computed.page_views).toBe(0);
    expect(winner.computed.total_revenue).toBe(10);
  });

  it("resolves old merged-away ids to their survivors, so a merge chain stays one hop long", async () => {
    const site = await makeSiteRow();
    const c = await twoContacts(site);
    const third = uid("a");
    await run(site, [page({ anonymousId: third, timestamp: T0 + 10 * MIN })]);
    const thirdId = (await profileOf("anonymous_id", third)) as string;
    await mergeProfiles(env.DB, c.loser, thirdId, NOW);
    // Named by the id that was merged away first: it stands for the loser's live profile.
    await mergeProfiles(env.DB, c.winner, thirdId, NOW + MIN);

    expect((await profileRow(c.loser)).merged_into).toBe(c.winner);
    expect((await profileRow(thirdId)).merged_into).toBe(c.winner);
    expect(await profileOf("anonymous_id", third)).toBe(c.winner);
    expect((await profileRow(c.winner)).merge_count).toBe(2);
  });

  it("refuses to merge two profiles that each hold a user id, leaving both untouched", async () => {
    const site = await makeSiteRow();
    const [a, b] = [uid("u"), uid("u")];
    await run(site, [
      identify({ userId: a, traits: { name: "Ann" } }),
      identify({ userId: b, traits: { name: "Bob" } }),
    ]);
    const [first, second] = [(await profileOf("user_id", a)) as string, (await profileOf("user_id", b)) as string];
    const before = await profileRow(second);

    const err = await refusal(mergeProfiles(env.DB, first, second, NOW));
    expect(err.status).toBe(409);
    expect(err.details).toMatchObject({ reason: "limit:user_id" });
    expect(await profileRow(second)).toEqual(before);
    expect(await profileOf("user_id", b)).toBe(second);
  });

  it("refuses a merge that would break a site's limit on a custom identifier type", async () => {
    const site = await makeSiteRow({ policy: { types: { crm_id: { limit: 1, priority: 2 } } } });
    const [x, y] = [uid("a"), uid("a")];
    await run(site, [
      identify({ anonymousId: x, context: { externalIds: [{ type: "crm_id", id: uid("crm") }] } }),
      identify({ anonymousId: y, context: { externalIds: [{ type: "crm_id", id: uid("crm") }] } }),
    ]);
    const [first, second] = [
      (await profileOf("anonymous_id", x)) as string,
      (await profileOf("anonymous_id", y)) as string,
    ];
    const err = await refusal(mergeProfiles(env.DB, first, second, NOW));
    expect(err.status).toBe(409);
    expect(err.details).toMatchObject({ reason: "limit:crm_id" });
  });

  it("answers 404 for an unknown profile and 409 for two ids of one profile", async () => {
    const site = await makeSiteRow();
    const c = await twoContacts(site);
    expect((await refusal(mergeProfiles(env.DB, c.winner, "prf_nobody", NOW))).status).toBe(404);
    expect((await refusal(mergeProfiles(env.DB, "prf_nobody", c.loser, NOW))).status).toBe(404);
    await mergeProfiles(env.DB, c.winner, c.loser, NOW);
    expect((await refusal(mergeProfiles(env.DB, c.loser, c.winner, NOW + 1))).status).toBe(409);
  });

  it("enters the winner into a segment only the combined profile qualifies for, and drops the loser's memberships", async () => {
    const site = await makeSiteRow();
    const c = await twoContacts(site);
    const city = uid("City");
    await run(site, [identify({ anonymousId: c.loserAnon, traits: { city }, timestamp: T0 + 5 * MIN })]);
    const [both, cityOnly] = [uid("both-"), uid("city-")];
    const rule = {
      all: [
        { trait: "plan", op: "eq", value: "pro" },
        { trait: "city", op: "eq", value: city },
      ],
    };
    await saveSegment(env.DB, { key: both, name: both, rule: rule as never }, NOW, "create");
    await saveSegment(
      env.DB,
      { key: cityOnly, name: cityOnly, rule: { trait: "city", op: "eq", value: city } as never },
      NOW,
      "create",
    );
    expect(await memberships(c.loser)).toEqual([cityOnly]);
    expect(await memberships(c.winner)).toEqual([]);

    await mergeProfiles(env.DB, c.winner, c.loser, NOW + MIN);
    expect(await memberships(c.loser)).toEqual([]);
    expect(await memberships(c.winner)).toEqual([both, cityOnly].sort());
  });

  it("keeps a trait the pipeline wrote to the winner between the merge's read and its write", async () => {
    const site = await makeSiteRow();
    const c = await twoContacts(site);
    // The merge's write batch is its only large one: the pipeline commits just before it.
    const racing = interleaveBeforeWrite(env.DB, 10, () =>
      run(site, [identify({ userId: c.user, traits: { tier: "gold" }, timestamp: T0 + 30 * MIN })], NOW),
    );
    await mergeProfiles(racing.db, c.winner, c.loser, NOW);

    expect(racing.count()).toBe(1);
    const winner = await profileRow(c.winner);
    expect(winner.traits).toMatchObject({ tier: "gold", city: "Berlin", email: c.email });
    expect((await profileRow(c.loser)).merged_into).toBe(c.winner);
  });

  it("accepts the drizzle client as well as the D1 binding", async () => {
    const site = await makeSiteRow();
    const c = await twoContacts(site);
    await mergeProfiles(createDb(env.DB), c.winner, c.loser, NOW);
    expect((await profileRow(c.loser)).merged_into).toBe(c.winner);
  });
});
