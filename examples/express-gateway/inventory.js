// The product-inventory service: trusts only Tessera's JWTs, verified offline against
// the JWKS (cached and refreshed by jose), and requires the admin role.
import express from "express";
import { createRemoteJWKSet, jwtVerify } from "jose";

const tesseraUrl = process.env.TESSERA_URL ?? "http://127.0.0.1:8080";
const port = Number(process.env.INVENTORY_PORT ?? "3002");
// Keep the JWKS cache at or below Tessera's keys.publish_lead_seconds.
const jwks = createRemoteJWKSet(new URL(`${tesseraUrl}/.well-known/jwks.json`), { cacheMaxAge: 600_000 });

async function authorize(req, res, next) {
  const match = /^Bearer (.+)$/.exec(req.get("authorization") ?? "");
  if (!match) return res.status(401).set("WWW-Authenticate", "Bearer").json({ error: "invalid_token" });
  try {
    const { payload } = await jwtVerify(match[1], jwks, {
      issuer: tesseraUrl,
      audience: "product-inventory",
      algorithms: ["RS256"],
      typ: "at+jwt",
    });
    req.claims = payload;
    next();
  } catch {
    res.status(401).set("WWW-Authenticate", 'Bearer error="invalid_token"').json({ error: "invalid_token" });
  }
}

const app = express();
app.get("/branches/:id/products", authorize, (req, res) => {
  if (!req.claims.roles?.includes("admin")) return res.status(403).json({ error: "insufficient_role" });
  res.json({
    branch: req.params.id,
    products: [{ id: 1, name: "espresso beans", stock: 12 }],
    user: req.claims.sub,
    email: req.claims.email,
    via: req.claims.act?.sub,
  });
});
app.listen(port, "127.0.0.1", () => console.log(`inventory on http://127.0.0.1:${port}`));
