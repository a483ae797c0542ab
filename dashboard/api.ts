/**
 * Every call the dashboard makes to the Worker, in one place, so that a change of shape on the
 * server is adjusted here only. Types describe the contracts of issues 5–8; the server validates
 * everything, the client only renders (as text) what it gets.
 */

export type Role = "admin" | "marketer" | "viewer";

export interface User {
  id: string;
  email: string;
  name?: string | null;
  role: Role;
  createdAt?: string;
}

export interface Session {
  user: User;
  csrfToken: string;
}

/** `GET /api/auth/me`: `user` is null for a bearer-token caller (no dashboard session). */
export interface Me {
  user: User | null;
  csrfToken: string | null;
}

export interface Page<T> {
  items: T[];
  nextCursor?: string | null;
}

export interface Identity {
  type: string;
  value: string;
}

export interface SegmentRef {
  key: string;
  enteredAt?: string | null;
}

export interface Profile {
  id: string;
  traits: Record<string, unknown>;
  identities: Identity[];
  computed: Record<string, unknown>;
  /** Keys, or `{key, enteredAt}` when the server knows when the profile entered. */
  segments: (string | SegmentRef)[];
  company?: { id: string; traits: Record<string, unknown> } | null;
  /** When and from where each trait's value came. */
  traitSources?: Record<string, { at: string; source: string }>;
  email?: string | null;
  name?: string | null;
  createdAt: string;
  updatedAt: string;
  mergedFrom?: string[];
  warnings?: { identifierType: string; identifierValue: string; reason: string; createdAt: string }[];
  lifecycleStage?: string | null;
  ownerId?: string | null;
  tags?: string[];
}

export interface Contact {
  id: string;
  email: string | null;
  name: string | null;
  lifecycleStage: string | null;
  ownerId: string | null;
  tags: string[];
  lastSeenAt?: string | null;
  createdAt?: string;
}

export interface TrackedEvent {
  messageId: string;
  type: string;
  event?: string | null;
  name?: string | null;
  properties?: Record<string, unknown>;
  traits?: Record<string, unknown> | null;
  context?: Record<string, unknown>;
  userId?: string | null;
  anonymousId?: string | null;
  timestamp: string;
  receivedAt: string;
  siteId?: string;
  profileId?: string;
}

export interface LatestEvents {
  /** Newest first. */
  items: TrackedEvent[];
  /** Opaque position of the newest event seen; passed back as `after`. */
  cursor: string;
  /** More events arrived since the last poll than one poll returns; the older ones were left out. */
  truncated?: boolean;
}

export interface Note {
  id: string;
  body: string;
  authorId?: string | null;
  author?: { id?: string; email?: string; name?: string | null } | null;
  createdAt: string;
}

export interface Task {
  id: string;
  title: string;
  dueAt?: string | null;
  done: boolean;
  createdAt?: string;
}

export interface ImportPreview {
  header: string[];
  rows: string[][];
  /** The mapping in effect: the one sent, or the suggestion from the header names. */
  mapping: Record<string, string>;
  errors?: { row: number; reason: string }[];
  errorCount?: number;
  validRows?: number;
  totalRows?: number;
}

export interface ImportResult {
  importId: string;
  accepted: number;
  rejected: { row: number; reason: string }[];
}

export interface ImportReport {
  id: string;
  status: "processing" | "done";
  created: number;
  merged: number;
  rejected: number;
  pending: number;
}

/** The segment rule language of issue 6. */
export type Op =
  | "eq"
  | "neq"
  | "gt"
  | "gte"
  | "lt"
  | "lte"
  | "contains"
  | "starts_with"
  | "ends_with"
  | "in"
  | "not_in"
  | "exists"
  | "not_exists"
  | "before"
  | "after"
  | "within_last";

export interface PropertyFilter {
  property: string;
  op: Op;
  value?: unknown;
}

export type Rule =
  | { all: Rule[] }
  | { any: Rule[] }
  | { not: Rule }
  | { trait: string; op: Op; value?: unknown }
  | { computed: string; op: Op; value?: unknown }
  | { event: string; where?: PropertyFilter[]; count?: { op: Op; value: number }; within?: string }
  | { page: true; where?: PropertyFilter[]; count?: { op: Op; value: number }; within?: string }
  | { segment: string };

export interface Segment {
  key: string;
  name: string;
  description?: string | null;
  rule: Rule;
  public?: boolean;
  count?: number;
  memberCount?: number;
  updatedAt?: string;
}

export interface Member {
  id?: string;
  profileId?: string;
  email?: string | null;
  name?: string | null;
  enteredAt?: string;
}

export interface MembershipChange {
  profileId: string;
  change: "entered" | "exited";
  at: string;
}

export interface Preview {
  count: number;
  sample: { id: string; email?: string | null; name?: string | null }[];
}

export type Content = string | Record<string, unknown>;

export interface SlotRule {
  id?: string;
  segment: string;
  content: Content;
}

export interface Slot {
  key: string;
  default: Content;
  rules: SlotRule[];
  holdout?: number;
  schedule?: { start?: string | null; end?: string | null } | null;
  goalEvent?: string | null;
  updatedAt?: string;
}

export interface VariantStats {
  variant: string;
  exposures: number;
  visitors?: number;
  /** Null when the slot has no goal event. */
  conversions: number | null;
  conversionRate?: number | null;
}

export interface SlotStats {
  goalEvent?: string | null;
  from?: string;
  to?: string;
  variants: VariantStats[];
}

export interface SlotPreview {
  content: Content | null;
  variant: string;
  rule?: { id: string; segment: string } | null;
  heldOut?: boolean;
  inSchedule?: boolean;
  segments?: string[];
}

export interface Destination {
  id: string;
  name: string;
  url: string;
  segments: string[];
  events?: string[];
  enabled?: boolean;
  secret?: string;
  createdAt?: string;
}

export interface Delivery {
  id: string;
  type: string;
  status: string;
  attempts: number;
  lastStatus?: number | null;
  lastError?: string | null;
  createdAt: string;
  updatedAt?: string;
}

export interface Site {
  id: string;
  name: string;
  writeKey: string;
  allowedOrigins: string[];
  originUrl: string | null;
  proxyHost: string | null;
  identityVerification: boolean;
  verificationSecret: string;
  createdAt: string;
}

export interface Stats {
  events: number;
  profiles: number;
  identifiedProfiles: number;
  /** Events not stored because the browser sent `Sec-GPC: 1`. */
  gpcDropped: number;
}

/** `GET /api/stats/overview`: everything the overview page shows, in one call. */
export interface Overview {
  events: { total: number; perDay: { day: string; count: number }[] };
  profiles: number;
  identifiedProfiles: number;
  identifiedShare: number;
  topEvents: { event: string; count: number }[];
  segments: { key: string; name: string; members: number }[];
}

/** A failed call, carrying the server's error envelope. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

let csrfToken = "";
let onUnauthorized: () => void = () => {};

/** Called when a request answers 401 (the session ended): the app shows the sign-in form. */
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

type Query = Record<string, string | number | boolean | null | undefined>;

/** Builds `path?query`, leaving out empty values. */
export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

const seg = encodeURIComponent;

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  // Cookie-authenticated mutations need the session's CSRF token (the server checks it).
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      // Same-origin requests carry the session cookie by default.
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", "The server could not be reached");
  }
  const text = await res.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const envelope = (data as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error;
    if (res.status === 401 && path !== "/api/auth/login") onUnauthorized();
    const retry = res.headers.get("Retry-After");
    const message = envelope?.message ?? `${res.status} ${res.statusText}`;
    throw new ApiError(
      res.status,
      envelope?.code ?? "http",
      retry && res.status === 429 ? `${message} (retry in ${retry} s)` : message,
      envelope?.details,
    );
  }
  return data as T;
}

const get = <T>(path: string, query?: Query) => request<T>("GET", withQuery(path, query));
const post = <T>(path: string, body: unknown = {}) => request<T>("POST", path, body);
const put = <T>(path: string, body: unknown) => request<T>("PUT", path, body);
const patch = <T>(path: string, body: unknown) => request<T>("PATCH", path, body);
const del = (path: string) => request<unknown>("DELETE", path);

/** Lists arrive as `{items}`; a bare array is accepted too. */
async function items<T>(promise: Promise<Page<T> | T[]>): Promise<T[]> {
  const data = await promise;
  return Array.isArray(data) ? data : (data?.items ?? []);
}

function remember<T extends { csrfToken: string | null }>(session: T): T {
  csrfToken = session.csrfToken ?? "";
  return session;
}

export const api = {
  me: async () => remember(await get<Me>("/api/auth/me")),
  login: async (email: string, password: string) =>
    remember(await post<Session>("/api/auth/login", { email, password })),
  logout: async () => {
    await post("/api/auth/logout");
    csrfToken = "";
  },

  stats: () => get<Stats>("/api/stats"),
  overview: (days = 30) => get<Overview>("/api/stats/overview", { days, top: 10 }),

  users: () => items(get<Page<User>>("/api/users")),
  createUser: (input: { email: string; password: string; role: Role; name?: string }) =>
    post<User>("/api/users", input),
  updateUser: (id: string, input: { role?: Role; name?: string; password?: string }) =>
    patch<User>(`/api/users/${seg(id)}`, input),
  deleteUser: (id: string) => del(`/api/users/${seg(id)}`),

  contacts: (query: Query) => get<Page<Contact>>("/api/contacts", query),
  contactsExportUrl: (query: Query) => withQuery("/api/contacts/export.csv", query),
  createContact: (input: { email: string; name?: string; phone?: string; traits?: Record<string, unknown> }) =>
    post<{ status: string; messageId: string }>("/api/contacts", input),
  updateContact: (id: string, input: { lifecycleStage?: string | null; ownerId?: string | null; tags?: string[] }) =>
    patch<Contact>(`/api/contacts/${seg(id)}`, input),
  updateTraits: (id: string, traits: Record<string, unknown>) =>
    patch<unknown>(`/api/contacts/${seg(id)}/traits`, { traits }),
  contact: (id: string) => get<Contact>(`/api/contacts/${seg(id)}`),
  merge: (winnerId: string, loserId: string) => post<unknown>("/api/contacts/merge", { winnerId, loserId }),
  unmerge: (id: string) => post<unknown>(`/api/profiles/${seg(id)}/unmerge`, {}),
  notes: (id: string) => items(get<Page<Note>>(`/api/contacts/${seg(id)}/notes`)),
  addNote: (id: string, body: string) => post<Note>(`/api/contacts/${seg(id)}/notes`, { body }),
  deleteNote: (noteId: string) => del(`/api/notes/${seg(noteId)}`),
  tasks: (id: string) => items(get<Page<Task>>(`/api/contacts/${seg(id)}/tasks`)),
  addTask: (id: string, input: { title: string; dueAt?: string }) =>
    post<Task>(`/api/contacts/${seg(id)}/tasks`, input),
  updateTask: (taskId: string, input: { done?: boolean; title?: string; dueAt?: string | null }) =>
    patch<Task>(`/api/tasks/${seg(taskId)}`, input),
  deleteTask: (taskId: string) => del(`/api/tasks/${seg(taskId)}`),
  previewImport: (csv: string, mapping?: Record<string, string>) =>
    post<ImportPreview>("/api/imports/preview", mapping ? { csv, mapping } : { csv }),
  runImport: (csv: string, mapping: Record<string, string>, siteId?: string) =>
    post<ImportResult>("/api/imports", siteId ? { csv, mapping, siteId } : { csv, mapping }),
  importReport: (id: string) => get<ImportReport>(`/api/imports/${seg(id)}`),

  profile: (id: string) => get<Profile>(`/api/profiles/${seg(id)}`),
  lookup: (type: string, value: string) => get<Profile>("/api/profiles/lookup", { type, value }),
  profileEvents: (id: string, cursor?: string | null) =>
    get<Page<TrackedEvent>>(`/api/profiles/${seg(id)}/events`, { cursor, limit: 25 }),
  eraseProfile: (id: string) => del(`/api/profiles/${seg(id)}`),
  profileExportUrl: (id: string) => `/api/profiles/${seg(id)}/export`,
  latestEvents: (query: { after?: string | null; site?: string; type?: string }) =>
    get<LatestEvents>("/api/events/latest", query),

  segments: () => items(get<Page<Segment>>("/api/segments")),
  segment: (key: string) => get<Segment>(`/api/segments/${seg(key)}`),
  createSegment: (input: Omit<Segment, "count" | "memberCount" | "updatedAt">) => post<Segment>("/api/segments", input),
  updateSegment: (key: string, input: Omit<Segment, "key" | "count" | "memberCount" | "updatedAt">) =>
    put<Segment>(`/api/segments/${seg(key)}`, input),
  deleteSegment: (key: string) => del(`/api/segments/${seg(key)}`),
  previewSegment: (rule: Rule) => post<Preview>("/api/segments/preview", { rule }),
  members: (key: string, cursor?: string | null) => get<Page<Member>>(`/api/segments/${seg(key)}/members`, { cursor }),
  history: (key: string, cursor?: string | null) =>
    get<Page<MembershipChange>>(`/api/segments/${seg(key)}/history`, { cursor }),
  segmentExportUrl: (key: string) => `/api/segments/${seg(key)}/export.csv`,

  slots: () => items(get<Page<Slot>>("/api/slots")),
  slot: (key: string) => get<Slot>(`/api/slots/${seg(key)}`),
  saveSlot: (key: string, input: Omit<Slot, "key" | "updatedAt">) => put<Slot>(`/api/slots/${seg(key)}`, input),
  deleteSlot: (key: string) => del(`/api/slots/${seg(key)}`),
  slotStats: (key: string) => get<SlotStats>(`/api/slots/${seg(key)}/stats`),
  slotPreview: (key: string, profileId: string) => get<SlotPreview>(`/api/slots/${seg(key)}/preview`, { profileId }),

  destinations: () => items(get<Page<Destination>>("/api/destinations")),
  destination: (id: string) => get<Destination>(`/api/destinations/${seg(id)}`),
  createDestination: (input: { name: string; url: string; segments: string[]; events?: string[] }) =>
    post<Destination>("/api/destinations", input),
  updateDestination: (id: string, input: { enabled?: boolean }) =>
    patch<Destination>(`/api/destinations/${seg(id)}`, input),
  deleteDestination: (id: string) => del(`/api/destinations/${seg(id)}`),
  deliveries: (id: string, cursor?: string | null) =>
    get<Page<Delivery>>(`/api/destinations/${seg(id)}/deliveries`, { cursor }),

  sites: () => items(get<Page<Site>>("/api/sites")),
  createSite: (input: {
    name: string;
    allowedOrigins: string[];
    proxyHost?: string | null;
    originUrl?: string | null;
    identityVerification?: boolean;
  }) => post<Site>("/api/sites", input),
  updateSite: (
    id: string,
    input: {
      name?: string;
      allowedOrigins?: string[];
      proxyHost?: string | null;
      originUrl?: string | null;
      identityVerification?: boolean;
    },
  ) => patch<Site>(`/api/sites/${seg(id)}`, input),
  rotateKey: (id: string) => post<Site>(`/api/sites/${seg(id)}/rotate-key`),
};
