/** The dashboard's HTML shell; the client bundle (/dashboard/app.js) renders the pages. */
export function DashboardShell() {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>Tessera</title>
        <link rel="stylesheet" href="/dashboard/app.css" />
        <script defer src="/dashboard/app.js" />
      </head>
      <body>
        <main id="app">
          <h1>Sign in to Tessera</h1>
          <form method="post" action="/api/auth/login">
            <label for="email">Email</label>
            <input id="email" name="email" type="email" autocomplete="username" required />
            <label for="password">Password</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required />
            <button type="submit">Sign in</button>
          </form>
        </main>
      </body>
    </html>
  );
}
