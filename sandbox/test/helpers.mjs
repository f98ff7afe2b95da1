// Shared helpers for the sandbox tests (node --test).
import crypto from 'node:crypto';
import * as jose from 'jose';
import { startSandbox } from '../server.mjs';

export async function start(opts = {}) {
  return startSandbox({ port: 0, quiet: !process.env.SANDBOX_TEST_LOG, clientsFile: null, ...opts });
}

export async function makeKey(alg, kid = crypto.randomUUID()) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicJwk: jwk };
}

export async function adminPost(sb, path, body) {
  const res = await fetch(`${sb.url}${path}`, {
    method: 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

export async function registerClient(sb, metadata) {
  const r = await adminPost(sb, '/_admin/clients', metadata);
  if (r.status !== 201) throw new Error(`register failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function stats(sb, clientId) {
  const res = await fetch(`${sb.url}/_admin/stats?client_id=${encodeURIComponent(clientId)}`);
  return res.json();
}

// RFC 7523 client assertion; `over` overrides claims, `header` overrides the protected header.
export async function assertion(sb, clientId, key, { over = {}, header = {}, signWith } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: clientId,
    sub: clientId,
    aud: sb.tokenEndpoint,
    exp: now + 240,
    iat: now,
    jti: crypto.randomUUID(),
    ...over,
  };
  for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
  return new jose.SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header })
    .sign(signWith ?? key.privateKey);
}

export async function tokenRequest(sb, params, headers = {}) {
  const res = await fetch(sb.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body: new URLSearchParams(params).toString(),
  });
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.status, headers: res.headers, body };
}

export async function backendToken(sb, clientId, key, scope, opts = {}) {
  return tokenRequest(sb, {
    grant_type: 'client_credentials',
    scope,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: opts.assertion ?? await assertion(sb, clientId, key, opts),
  });
}

export async function fhirGet(sb, path, token) {
  const res = await fetch(`${sb.fhirBase}/${path}`, {
    headers: token ? { authorization: `Bearer ${token}`, accept: 'application/fhir+json' } : {},
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

export const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

export function pkcePair() {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

// Minimal cookie jar + redirect follower (what a Rust test with reqwest + cookie_store does).
export class Browser {
  constructor({ cookies = true } = {}) { this.jar = cookies; this.cookies = new Map(); this.trail = []; }

  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  store(res) {
    if (!this.jar) return;
    for (const sc of res.headers.getSetCookie?.() ?? []) {
      const [pair, ...attrs] = sc.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=thu, 01 jan 1970/i.test(a)) || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  // Follows redirects until one points at `stopPrefix` (the app's redirect_uri); returns that URL.
  async go(url, { method = 'GET', form, stopPrefix, max = 10 } = {}) {
    let next = url;
    let m = method;
    let body = form ? new URLSearchParams(form).toString() : undefined;
    for (let i = 0; i < max; i += 1) {
      const headers = { cookie: this.cookieHeader() };
      if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
      const res = await fetch(next, { method: m, headers, body, redirect: 'manual' });
      this.store(res);
      this.trail.push({ method: m, url: next, status: res.status });
      if (res.status < 300 || res.status >= 400) {
        return { final: next, status: res.status, body: await res.text() };
      }
      const loc = new URL(res.headers.get('location'), next).href;
      await res.arrayBuffer();
      if (stopPrefix && loc.startsWith(stopPrefix)) {
        this.trail.push({ method: 'GET', url: loc, status: 'stop' });
        return { final: loc, status: res.status };
      }
      next = loc;
      m = 'GET';
      body = undefined;
    }
    throw new Error(`too many redirects: ${JSON.stringify(this.trail)}`);
  }
}
