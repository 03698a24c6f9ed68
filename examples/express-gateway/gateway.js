// A minimal Express gateway in the seed articles' style: express-session sessions in
// Redis (connect-redis), and for every proxied request one call to Tessera's /exchange
// that turns the session into a short-lived RS256 JWT for the downstream service.
import express from "express";
import session from "express-session";
import { RedisStore } from "connect-redis";
import { createClient } from "redis";

const env = (name, fallback) => process.env[name] ?? fallback;
const port = Number(env("GATEWAY_PORT", "3000"));
const tesseraUrl = env("TESSERA_URL", "http://127.0.0.1:8080");
const inventoryUrl = env("INVENTORY_URL", "http://127.0.0.1:3002");
const clientId = env("TESSERA_CLIENT_ID", "demo-gateway");
const clientSecret = env("TESSERA_CLIENT_SECRET", "demo-gateway-secret");

const redis = createClient({ url: env("REDIS_URL", "redis://127.0.0.1:6379") });
await redis.connect();

const app = express();
app.use(
  session({
    store: new RedisStore({ client: redis, prefix: env("SESSION_PREFIX", "sess:") }),
    secret: env("SESSION_SECRET", "keyboard cat"),
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, maxAge: 24 * 3600 * 1000 },
  }),
);

// Stand-in for the login against the identity provider (FusionAuth in the seeds): the
// user object has the provider's shape, which Tessera maps with JSON pointers.
const users = {
  admin: { id: "user-1", email: "admin@example.com", registrations: [{ roles: ["admin"] }] },
  user: { id: "user-2", email: "user@example.com", registrations: [{ roles: [] }] },
};
app.post("/login", (req, res) => {
  const user = users[req.query.user];
  if (!user) return res.status(400).json({ error: "unknown demo user" });
  req.session.user = user;
  res.json({ logged_in: user.id });
});
app.post("/logout", (req, res) => req.session.destroy(() => res.json({ logged_out: true })));

// One exchange per request: the session id for a logged-in user, nothing for the public.
async function exchange(req, audience) {
  const body = { audience, request: { method: req.method, path: req.originalUrl } };
  if (req.session.user) body.subject_token = req.sessionID;
  const response = await fetch(`${tesseraUrl}/exchange`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: "Basic " + Buffer.from(`${clientId}:${clientSecret}`).toString("base64"),
    },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

app.get("/branches/:id/products", async (req, res) => {
  let exchanged;
  try {
    exchanged = await exchange(req, "product-inventory");
  } catch {
    return res.status(502).json({ error: "tessera_unreachable" });
  }
  if (exchanged.status !== 200) {
    // invalid_grant: the session was revoked or expired at Tessera; log the user out.
    if (exchanged.body.error === "invalid_grant") req.session.destroy(() => {});
    const status = exchanged.body.error === "invalid_grant" ? 401 : exchanged.status;
    return res.status(status).json(exchanged.body);
  }
  const downstream = await fetch(`${inventoryUrl}/branches/${encodeURIComponent(req.params.id)}/products`, {
    headers: { authorization: `Bearer ${exchanged.body.access_token}` },
  });
  res.status(downstream.status).json(await downstream.json());
});

app.listen(port, "127.0.0.1", () => console.log(`gateway on http://127.0.0.1:${port}`));
