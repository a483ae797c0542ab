/** Dashboard users (admin): create, change role, remove. */
import { api, type Role } from "../api";
import { text } from "../format";
import { currentUser, ErrorBox, field, Loaded, Time, useAction, useAsync } from "../ui";

const roles: { role: Role; hint: string }[] = [
  { role: "viewer", hint: "read-only" },
  { role: "marketer", hint: "contacts, segments, personalization" },
  { role: "admin", hint: "everything, incl. sites, keys, users, destinations" },
];

export function UsersPage() {
  const users = useAsync(() => api.users(), []);
  const action = useAction();
  const me = currentUser();
  return (
    <>
      <h1>Users</h1>
      <ErrorBox error={action.error} />
      <Loaded state={users}>
        {(items) => (
          <div class="table-wrap">
            <table class="list">
              <thead>
                <tr>
                  <th>Email</th>
                  <th>Name</th>
                  <th>Role</th>
                  <th>Created</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {items.map((u) => (
                  <tr>
                    <td>{text(u.email, 254)}</td>
                    <td>{text(u.name, 200)}</td>
                    <td>
                      <select
                        aria-label={`Role of ${text(u.email, 100)}`}
                        value={u.role}
                        disabled={u.id === me?.id || action.busy}
                        onChange={(e: Event) =>
                          action.run(async () => {
                            await api.updateUser(u.id, { role: (e.target as HTMLSelectElement).value as Role });
                            users.reload();
                          }, "Role changed")
                        }
                      >
                        {roles.map((r) => (
                          <option value={r.role}>{r.role}</option>
                        ))}
                      </select>
                    </td>
                    <td>
                      <Time value={u.createdAt} />
                    </td>
                    <td>
                      {u.id !== me?.id ? (
                        <button
                          type="button"
                          class="link"
                          onClick={() =>
                            confirm(`Remove ${u.email}? Their sessions end at once.`) &&
                            action.run(async () => {
                              await api.deleteUser(u.id);
                              users.reload();
                            }, "User removed")
                          }
                        >
                          Remove
                        </button>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Loaded>
      <form
        class="card form"
        onSubmit={(e: Event) => {
          e.preventDefault();
          const form = e.target as HTMLFormElement;
          const name = field(form, "name");
          action.run(async () => {
            await api.createUser({
              email: field(form, "email"),
              password: (form.elements.namedItem("password") as HTMLInputElement).value,
              role: field(form, "role") as Role,
              ...(name ? { name } : {}),
            });
            form.reset();
            users.reload();
          }, "User created");
        }}
      >
        <h2>New user</h2>
        <label for="u-email">Email</label>
        <input id="u-email" name="email" type="email" required maxlength={254} autocomplete="off" />
        <label for="u-name">Name</label>
        <input id="u-name" name="name" maxlength={200} autocomplete="off" />
        <label for="u-password">Password (at least 10 characters)</label>
        <input
          id="u-password"
          name="password"
          type="password"
          required
          minlength={10}
          maxlength={200}
          autocomplete="new-password"
        />
        <label for="u-role">Role</label>
        <select id="u-role" name="role">
          {roles.map((r) => (
            <option value={r.role}>{`${r.role} — ${r.hint}`}</option>
          ))}
        </select>
        <button type="submit" disabled={action.busy}>
          Create user
        </button>
      </form>
    </>
  );
}
