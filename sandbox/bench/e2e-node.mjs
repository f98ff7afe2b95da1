// End to end Backend Services token fetch with the TypeScript ecosystem's stack — `jose` to
// sign the client assertion, Node's `fetch` (undici, kept-alive connections) to POST it — for
// comparison with smart-ureq's `e2e` criterion bench (`scripts/bench-e2e` runs both).
//
// usage: node sandbox/bench/e2e-node.mjs SANDBOX_URL [ITERATIONS]
// prints one JSON line per algorithm: {"alg":"ES384","median_ms":…,"p90_ms":…,"n":…}
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { randomUUID } from 'node:crypto';

const sandbox = (process.argv[2] ?? '').replace(/\/$/, '');
const n = Number(process.argv[3] ?? 300);
if (!sandbox) {
  console.error('usage: node sandbox/bench/e2e-node.mjs SANDBOX_URL [ITERATIONS]');
  process.exit(2);
}

async function register(alg) {
  const { publicKey, privateKey } = await generateKeyPair(alg, alg === 'RS384' ? { modulusLength: 2048 } : {});
  const jwk = { ...(await exportJWK(publicKey)), alg, kid: `node-${alg}`, use: 'sig' };
  const clientId = `node-e2e-${alg}-${process.pid}-${Date.now()}`;
  const res = await fetch(`${sandbox}/_admin/clients`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_id: clientId,
      token_endpoint_auth_method: 'private_key_jwt',
      grant_types: ['client_credentials'],
      scope: 'system/Patient.rs',
      jwks: { keys: [jwk] },
    }),
  });
  if (!res.ok) throw new Error(`register: ${res.status} ${await res.text()}`);
  return { clientId, privateKey, kid: jwk.kid };
}

async function token(tokenUrl, { clientId, privateKey, kid }, alg) {
  const now = Math.floor(Date.now() / 1000);
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg, kid, typ: 'JWT' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(tokenUrl)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + 240)
    .sign(privateKey);
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    scope: 'system/Patient.rs',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  });
  const res = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body,
  });
  const json = await res.json();
  if (!res.ok || !json.access_token) throw new Error(`token: ${res.status} ${JSON.stringify(json.error)}`);
  return json;
}

const config = await (await fetch(`${sandbox}/fhir/.well-known/smart-configuration`)).json();
for (const alg of ['ES384', 'RS384']) {
  const client = await register(alg);
  for (let i = 0; i < 20; i++) await token(config.token_endpoint, client, alg); // warm-up
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await token(config.token_endpoint, client, alg);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  console.log(JSON.stringify({ alg, median_ms: +q(0.5).toFixed(3), p90_ms: +q(0.9).toFixed(3), n }));
}
