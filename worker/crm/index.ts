/**
 * The CRM: contacts (live profiles with lifecycle stage, owner and tags), notes, tasks, CSV
 * import and export. Mounted at `/api`: `/contacts…`, `/notes/:id`, `/tasks/:id`, `/imports…`.
 */
import { Hono } from "hono";
import type { AppEnv } from "../env";
import { contactsApi } from "./contacts";
import { importsApi } from "./imports";
import { contactNotesApi, notesApi, tasksApi } from "./notes";

export { readContact, resolveContactId } from "./contact";

export const crmApi = new Hono<AppEnv>()
  .route("/contacts", contactsApi)
  .route("/contacts", contactNotesApi)
  .route("/notes", notesApi)
  .route("/tasks", tasksApi)
  .route("/imports", importsApi);
