/**
 * A small shop that loads the snippet like a customer site would, so a newcomer sees events,
 * profiles and segments move right after `npm start`.
 */
const products = [
  { sku: "tsr-mug", name: "Tessera mug", price: 12, category: "kitchen" },
  { sku: "tsr-tee", name: "Mosaic T-shirt", price: 24, category: "apparel" },
  { sku: "tsr-sock", name: "Edge socks", price: 9, category: "apparel" },
];

// Button wiring for the demo; it only calls the public snippet API.
const shopScript = `
document.addEventListener('click', function (e) {
  var b = e.target.closest('[data-action]'); if (!b) return;
  var p = b.dataset;
  if (p.action === 'add') tessera.track('Product Added', { sku: p.sku, name: p.name, price: +p.price, category: p.category });
  if (p.action === 'order') tessera.track('Order Completed', { revenue: +p.total, currency: 'USD' });
});
document.getElementById('signup').addEventListener('submit', function (e) {
  e.preventDefault();
  var email = e.target.email.value;
  tessera.identify(email, { email: email, name: e.target.name.value });
});
`;

const stub = `window.tessera=window.tessera||{q:[]};["page","track","identify","alias","group","reset","consent"].forEach(function(m){tessera[m]=tessera[m]||function(){tessera.q.push([m,[].slice.call(arguments)])}});`;

export function DemoPage({ writeKey }: { writeKey: string }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>Tessera demo shop</title>
        <script dangerouslySetInnerHTML={{ __html: stub }} />
        <script async src="/s.js" data-key={writeKey} />
        <style>
          {
            "body{font-family:system-ui;max-width:760px;margin:40px auto;padding:0 16px}.p{display:inline-block;border:1px solid #ddd;border-radius:8px;padding:12px;margin:6px}"
          }
        </style>
      </head>
      <body>
        <h1>Tessera demo shop</h1>
        <p data-tessera-slot="hero">
          Welcome! Everything you do here is tracked by the snippet and shows up in the dashboard.
        </p>
        <section>
          {products.map((p) => (
            <div class="p">
              <strong>{p.name}</strong> — ${p.price}{" "}
              <button
                type="button"
                data-action="add"
                data-sku={p.sku}
                data-name={p.name}
                data-price={String(p.price)}
                data-category={p.category}
              >
                Add to cart
              </button>
            </div>
          ))}
        </section>
        <p>
          <button type="button" data-action="order" data-total="45">
            Complete order ($45)
          </button>
        </p>
        <form id="signup">
          <h2>Sign up</h2>
          <input name="name" placeholder="Name" /> <input name="email" type="email" placeholder="Email" required />{" "}
          <button type="submit">Identify me</button>
        </form>
        <script dangerouslySetInnerHTML={{ __html: shopScript }} />
      </body>
    </html>
  );
}
