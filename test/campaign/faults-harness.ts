/**
 * Fault injection for the faults campaign, through wrapped bindings only (no product code is
 * changed for it):
 * - `SimQueue`: a queue in the test's hands with Cloudflare Queues' contract — at-least-once
 *   delivery in batches, per-message ack/retry, redelivery of everything not acked when the
 *   consumer throws, a retry limit, then the dead-letter queue. Its producer binding can refuse
 *   sends (`Queue.send` failing at ingest).
 * - `FaultyD1`: the D1 binding with errors, timeouts and crashes injected into chosen calls.
 * - `webhookReceivers`: fake webhook endpoints that are slow, fail, or answer 429.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";

type Consume = (batch: MessageBatch<unknown>, ctx: ExecutionContext) => Promise<void>;

interface Held {
  id: string;
  body: unknown;
  /** Deliveries so far. */
  attempts: number;
}

export interface DeliveryReport {
  messages: number;
  acked: number;
  retried: number;
  deadLettered: number;
  threw: boolean;
}

let messageSeq = 0;

// Messages travel as JSON (`contentType: "json"`): each delivery gets its own copy, so a consumer
// that mutates a body cannot change what a redelivery sees.
const copy = (body: unknown): unknown => JSON.parse(JSON.stringify(body));

/** A queue with Cloudflare Queues' delivery contract, driven by the test. */
export class SimQueue {
  readonly pending: Held[] = [];
  /** Producer calls (`send`/`sendBatch`) so far, and how many of them failed. */
  sendCalls = 0;
  sendFailures = 0;
  /** Decides, per producer call (numbered from 1), whether it fails. */
  failSend: (call: number) => boolean = () => false;

  constructor(
    readonly name: string,
    readonly opts: { maxRetries: number; maxBatch: number; deadLetters?: SimQueue },
  ) {}

  /** Puts a message on the queue directly (another producer, or a poison message). */
  inject(body: unknown): void {
    this.pending.push({ id: `${this.name}-${++messageSeq}`, body: copy(body), attempts: 0 });
  }

  private accept(bodies: unknown[]): void {
    this.sendCalls++;
    if (this.failSend(this.sendCalls)) {
      this.sendFailures++;
      throw new Error(`Queue send failed (simulated outage of ${this.name})`);
    }
    for (const body of bodies) this.inject(body);
  }

  /** The producer binding (`env.EVENTS`, `env.DELIVERIES`). */
  binding(): Queue<unknown> {
    return {
      send: async (body: unknown) => this.accept([body]),
      sendBatch: async (messages: Iterable<MessageSendRequest<unknown>>) =>
        this.accept([...messages].map((m) => m.body)),
    } as unknown as Queue<unknown>;
  }

  /**
   * Delivers one batch (up to `maxBatch` messages) to `consume`. `dropAcks` models a consumer
   * that finished its work but died before its acks reached the queue: everything is redelivered.
   */
  async deliver(consume: Consume, opts: { dropAcks?: boolean } = {}): Promise<DeliveryReport> {
    const taken = this.pending.splice(0, this.opts.maxBatch);
    for (const m of taken) m.attempts++;
    const batch = createMessageBatch(
      this.name,
      taken.map((m) => ({ id: m.id, timestamp: new Date(), attempts: m.attempts, body: copy(m.body) })),
    );
    const ctx = createExecutionContext();
    let threw = false;
    try {
      await consume(batch, ctx);
    } catch {
      threw = true;
    }
    const result = await getQueueResult(batch, ctx);
    const acks = new Set(result.explicitAcks);
    const retries = new Set(result.retryMessages.map((r: { msgId: string }) => r.msgId));
    const report: DeliveryReport = { messages: taken.length, acked: 0, retried: 0, deadLettered: 0, threw };
    for (const m of taken) {
      // Queues' precedence: an explicit ack or retry wins; then a throw retries everything not
      // acked; then retryAll; otherwise a handler that returned acknowledged the message.
      const retry =
        opts.dropAcks ||
        (!acks.has(m.id) && (retries.has(m.id) || threw || (result.retryBatch.retry && !result.ackAll)));
      if (!retry) {
        report.acked++;
      } else if (m.attempts > this.opts.maxRetries) {
        report.deadLettered++;
        this.opts.deadLetters?.pending.push({ id: m.id, body: m.body, attempts: 0 });
      } else {
        report.retried++;
        this.pending.push(m);
      }
    }
    return report;
  }

  /** Delivers until the queue is empty; `before(round)` runs ahead of each delivery. */
  async drain(consume: Consume, before: (round: number) => void = () => {}, maxRounds = 60): Promise<DeliveryReport[]> {
    const reports: DeliveryReport[] = [];
    for (let round = 0; this.pending.length > 0; round++) {
      if (round >= maxRounds)
        throw new Error(`${this.name}: still ${this.pending.length} messages after ${round} rounds`);
      before(round);
      reports.push(await this.deliver(consume));
    }
    return reports;
  }
}

/**
 * - `error`: the call fails (D1 unreachable, a storage error).
 * - `timeout`: the call never reaches D1 and its promise never settles until a timer rejects it
 *   (D1's 30 s limit, compressed).
 * - `timeout-after-commit`: the write is applied, but the answer never comes back.
 * - `crash` / `crash-after-commit`: the isolate dies at this call (before or after the write
 *   commits): every later call fails until `revive()` (a new isolate for the next delivery).
 */
export type D1Fault = "error" | "timeout" | "timeout-after-commit" | "crash" | "crash-after-commit";

/** `read`: a call whose statements are all SELECTs; `write`: any other. */
export interface D1FaultRule {
  on: "read" | "write";
  fault: D1Fault;
  times?: number;
}

const READ = /^\s*(select|with)\b/i;
const WRITE_WORD = /\b(insert|update|delete|replace)\b/i;
const isRead = (sql: string) => READ.test(sql) && !WRITE_WORD.test(sql);

/** The D1 binding with faults injected into the calls that match the planned rules, in order. */
export class FaultyD1 {
  private rules: Required<D1FaultRule>[] = [];
  private dead = false;
  /** While true, every call fails (D1 unreachable), each counted as an injected error. */
  outage = false;
  private readonly sqlOf = new WeakMap<D1PreparedStatement, string>();
  readonly injected = { errors: 0, timeouts: 0, crashes: 0 };

  constructor(
    private readonly real: D1Database,
    private readonly timeoutMs = 25,
  ) {}

  /** Faults for the next matching calls. */
  plan(...rules: D1FaultRule[]): void {
    this.rules.push(...rules.map((r) => ({ times: 1, ...r })));
  }

  /** Rules planned but not yet triggered (a scenario asserts this is empty: every fault fired). */
  get unfired(): number {
    return this.rules.reduce((n, r) => n + r.times, 0);
  }

  /** The next delivery runs in a fresh isolate. */
  revive(): void {
    this.dead = false;
  }

  private async run<T>(sql: string[], call: () => Promise<T>): Promise<T> {
    if (this.dead) throw new Error("D1_ERROR: the isolate is gone (simulated crash)");
    if (this.outage) {
      this.injected.errors++;
      throw new Error("D1_ERROR: Network connection lost (simulated outage)");
    }
    const kind = sql.every(isRead) ? "read" : "write";
    const rule = this.rules.find((r) => r.on === kind && r.times > 0);
    if (!rule) return call();
    rule.times--;
    this.rules = this.rules.filter((r) => r.times > 0);
    const timer = () =>
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error("D1_ERROR: storage operation exceeded timeout")), this.timeoutMs),
      );
    switch (rule.fault) {
      case "error":
        this.injected.errors++;
        throw new Error("D1_ERROR: Network connection lost (simulated)");
      case "timeout":
        this.injected.timeouts++;
        return timer();
      case "timeout-after-commit":
        this.injected.timeouts++;
        await call();
        return timer();
      case "crash":
        this.injected.crashes++;
        this.dead = true;
        throw new Error("simulated crash: the consumer died mid-batch");
      case "crash-after-commit":
        this.injected.crashes++;
        await call();
        this.dead = true;
        throw new Error("simulated crash: the consumer died after its write committed");
    }
  }

  /** Tracks a statement's SQL through `bind` and guards its own calls. */
  private track(stmt: D1PreparedStatement, sql: string): D1PreparedStatement {
    this.sqlOf.set(stmt, sql);
    const bind = stmt.bind.bind(stmt);
    const guarded: Record<string, unknown> = {
      bind: (...values: unknown[]) => this.track(bind(...values), sql),
    };
    for (const method of ["first", "all", "run", "raw"] as const) {
      const original = (stmt[method] as (...args: unknown[]) => Promise<unknown>).bind(stmt);
      guarded[method] = (...args: unknown[]) => this.run([sql], () => original(...args));
    }
    // Own properties over the prototype's methods: the object stays the real statement, so the
    // real `batch()` accepts it.
    for (const [name, value] of Object.entries(guarded)) {
      Object.defineProperty(stmt, name, { value, configurable: true, writable: true });
    }
    return stmt;
  }

  /** The binding to put in `env.DB`. */
  get binding(): D1Database {
    const real = this.real;
    return {
      prepare: (sql: string) => this.track(real.prepare(sql), sql),
      batch: <T>(statements: D1PreparedStatement[]) =>
        this.run(
          statements.map((s) => this.sqlOf.get(s) ?? ""),
          () => real.batch<T>(statements),
        ),
      exec: (sql: string) => this.run([sql], () => real.exec(sql)),
      dump: () => real.dump(),
      withSession: (constraint?: string) => real.withSession(constraint),
    } as D1Database;
  }
}

/** How a fake webhook endpoint answers its n-th request for one delivery (webhook-id). */
export type Behaviour = (attempt: number, signal: AbortSignal | null | undefined) => Promise<Response>;

export const behaviours = {
  ok: (): Behaviour => async () => new Response("ok"),
  /** Never answers within the consumer's timeout on the first attempt, then answers. */
  slowOnce:
    (compressedTimeoutMs = 20): Behaviour =>
    async (attempt, signal) => {
      if (attempt > 1) return new Response("ok");
      // The consumer's AbortSignal.timeout (10 s) is what ends this request; the test can't wait
      // for it, so the same TimeoutError arrives after a compressed delay unless the signal fires.
      return new Promise<Response>((_, reject) => {
        const fail = () => reject(new DOMException("The operation was aborted due to timeout", "TimeoutError"));
        signal?.addEventListener("abort", fail);
        setTimeout(fail, compressedTimeoutMs);
      });
    },
  failing:
    (failures: number, status = 503): Behaviour =>
    async (attempt) =>
      attempt <= failures ? new Response("unavailable", { status }) : new Response("ok"),
  rateLimitedOnce:
    (retryAfter: string): Behaviour =>
    async (attempt) =>
      attempt === 1
        ? new Response("slow down", { status: 429, headers: { "Retry-After": retryAfter } })
        : new Response("ok"),
  down: (): Behaviour => async () => new Response("down", { status: 500 }),
};

export interface ReceivedCall {
  host: string;
  webhookId: string;
  attempt: number;
  status: number | "timeout";
  hadSignal: boolean;
}

/** Fake webhook endpoints by host name; records every request and its outcome. */
export function webhookReceivers(byHost: Record<string, Behaviour>) {
  const calls: ReceivedCall[] = [];
  const perId = new Map<string, number>();
  const fetchFn = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const host = new URL(String(input)).hostname;
    const webhookId = new Headers(init?.headers).get("webhook-id") ?? "";
    const attempt = (perId.get(webhookId) ?? 0) + 1;
    perId.set(webhookId, attempt);
    const behaviour = byHost[host];
    if (!behaviour) throw new Error(`no receiver for ${host}`);
    const call: ReceivedCall = { host, webhookId, attempt, status: "timeout", hadSignal: init?.signal != null };
    calls.push(call);
    const res = await behaviour(attempt, init?.signal);
    call.status = res.status;
    return res;
  }) as typeof fetch;
  return {
    fetch: fetchFn,
    calls,
    /** Answers that were not a 2xx (timeouts included): the injected webhook failures. */
    failures: () => calls.filter((c) => c.status === "timeout" || c.status >= 300).length,
    /** 2xx answers per webhook-id. */
    successesOf: (webhookId: string) =>
      calls.filter((c) => c.webhookId === webhookId && typeof c.status === "number" && c.status < 300).length,
  };
}
