import { describe, expect, it } from "vitest";
import { enqueueEvents } from "../../worker/pipeline/enqueue";
import { parseQueuedBatch } from "../../worker/pipeline/message";
import { identify, uid } from "./factory";

/** Records what would go on the queue (the boundary's test double). */
function recordingQueue() {
  const calls: MessageSendRequest<unknown>[][] = [];
  const queue = {
    send: async () => {},
    sendBatch: async (messages: Iterable<MessageSendRequest<unknown>>) => {
      calls.push([...messages]);
    },
  } as unknown as Queue<unknown>;
  return { calls, queue };
}

describe("enqueueEvents", () => {
  it("packs events into valid QueuedBatch messages under the queue's size limits, in order", async () => {
    const { calls, queue } = recordingQueue();
    const events = Array.from({ length: 300 }, (_, i) =>
      identify({ userId: uid("u"), traits: { bio: "x".repeat(1_000), n: i } }),
    );
    const sent = await enqueueEvents({ EVENTS: queue }, "site_1", events);
    const messages = calls.flat();
    expect(sent).toBe(messages.length);
    expect(messages.length).toBeGreaterThan(1);
    for (const call of calls) {
      expect(call.length).toBeLessThanOrEqual(100);
      expect(JSON.stringify(call.map((m) => m.body)).length).toBeLessThan(256_000);
    }
    const bodies = messages.map((m) => parseQueuedBatch(m.body));
    for (const b of bodies) {
      expect(b).not.toBeNull();
      expect(JSON.stringify(b).length).toBeLessThan(128_000);
    }
    expect(bodies.flatMap((b) => b?.events.map((e) => e.messageId) ?? [])).toEqual(events.map((e) => e.messageId));
  });

  it("fails loudly when the queue refuses, so the caller can answer 503", async () => {
    const queue = {
      sendBatch: async () => {
        throw new Error("queue unavailable");
      },
    } as unknown as Queue<unknown>;
    await expect(enqueueEvents({ EVENTS: queue }, "site_1", [identify({ userId: "u1" })])).rejects.toThrow();
  });
});
