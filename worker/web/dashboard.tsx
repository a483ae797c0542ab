/**
 * The dashboard's HTML shell. The client bundle (/dashboard/app.js) renders the pages; until it
 * runs (or when JavaScript is off) the shell is a plain sign-in form that posts to
 * /api/auth/login, so signing in never depends on script.
 */
/** What a failed no-JavaScript sign-in says; `reason` is the `?error=` the login route redirects with. */
const failures: Record<string, string> = {
  locked: "Too many failed sign-ins; try again later.",
  origin: "Sign-in from another site was refused.",
};

function SignInForm(props: { error?: string }) {
  return (
    <div class="signin card">
      <h1>Sign in to Tessera</h1>
      {props.error !== undefined ? (
        <p class="error" role="alert">
          {failures[props.error] ?? "Wrong email or password."}
        </p>
      ) : null}
      <form method="post" action="/api/auth/login">
        <label for="email">Email</label>
        <input id="email" name="email" type="email" autocomplete="username" required maxlength={254} />
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required maxlength={200} />
        <button type="submit">Sign in</button>
      </form>
    </div>
  );
}

/**
 * `signedIn` (a session cookie is present, not yet checked) shows a loading line instead of the
 * form, so signed-in users do not see the form flash before the app replaces it; the form stays in
 * <noscript> for browsers without JavaScript.
 */
export function DashboardShell(props: { error?: string; signedIn?: boolean } = {}) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="same-origin" />
        <title>Tessera</title>
        <link rel="stylesheet" href="/dashboard/app.css" />
        <script defer src="/dashboard/app.js" />
      </head>
      <body>
        <div id="app">
          {props.signedIn ? (
            <>
              <p class="muted boot">Loading…</p>
              <noscript>
                <SignInForm error={props.error} />
              </noscript>
            </>
          ) : (
            <SignInForm error={props.error} />
          )}
        </div>
      </body>
    </html>
  );
}
