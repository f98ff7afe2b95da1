// Token endpoint counters: GET /_admin/stats (global and per client), POST /_admin/stats/reset.
// A sandbox of its own, so the global counts are exact.
import { test, before, after, beforeEach, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  start, makeKey, registerClient, backendToken, stats, adminPost, tokenRequest, basic,
} from './helpers.mjs';

let sb;
let key;

async function globalStats() {
  const res = await fetch(`${sb.url}/_admin/stats`);
  assert.equal(res.status, 200);
  return res.json();
}

before(async () => {
  sb = await start();
  key = await makeKey('ES384');
  await registerClient(sb, {
    client_id: 'stats-bs', jwks: { keys: [key.publicJwk] }, scope: 'system/Patient.rs',
  });
  await registerClient(sb, {
    client_id: 'stats-sym',
    client_secret: 'stats-secret',
    redirect_uris: ['http://127.0.0.1/callback'],
    scope: 'openid launch/patient patient/*.rs offline_access',
  });
});
after(async () => { await sb.close(); });
beforeEach(async () => {
  const r = await adminPost(sb, '/_admin/stats/reset');
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, { reset: true });
});

describe('GET /_admin/stats', () => {
  test('starts at zero', async () => {
    const s = await globalStats();
    assert.equal(s.token_requests, 0);
    assert.equal(s.token_success, 0);
    assert.equal(s.token_errors, 0);
    assert.equal(s.total_token_requests, 0);
    assert.equal(s.max_concurrent_token_requests, 0);
    assert.equal(s.token_requests_in_flight, 0);
    assert.deepEqual(s.by_grant_type, {});
    assert.deepEqual(s.clients, {});
  });

  test('counts every token request of every grant type, successes and failures', async () => {
    // 1 success: client_credentials.
    assert.equal((await backendToken(sb, 'stats-bs', key, 'system/Patient.rs')).status, 200);
    // 2 failures of client_credentials: wrong audience, unknown client.
    assert.equal((await backendToken(sb, 'stats-bs', key, 'system/Patient.rs',
      { over: { aud: 'https://wrong.example/token' } })).status, 401);
    assert.equal((await backendToken(sb, 'stats-nobody', key, 'system/Patient.rs')).status, 401);
    // authorization_code with a bogus code (authenticated, then invalid_grant).
    const code = await tokenRequest(sb, {
      grant_type: 'authorization_code', code: 'nope', redirect_uri: 'http://127.0.0.1/callback', code_verifier: 'x'.repeat(43),
    }, { authorization: basic('stats-sym', 'stats-secret') });
    assert.equal(code.status, 400);
    assert.equal(code.body.error, 'invalid_grant');
    // refresh_token with a bogus refresh token.
    const refresh = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: 'nope' },
      { authorization: basic('stats-sym', 'stats-secret') });
    assert.equal(refresh.status, 400);
    // An unsupported grant type and a request without grant_type.
    const password = await tokenRequest(sb, { grant_type: 'password', username: 'u', password: 'p' },
      { authorization: basic('stats-sym', 'stats-secret') });
    assert.equal(password.status, 400);
    const none = await tokenRequest(sb, {}, { authorization: basic('stats-sym', 'stats-secret') });
    assert.equal(none.status, 400);

    const s = await globalStats();
    assert.equal(s.token_requests, 7);
    assert.equal(s.total_token_requests, 7);
    assert.equal(s.token_success, 1);
    assert.equal(s.token_errors, 6);
    assert.deepEqual(s.by_grant_type, {
      client_credentials: 3, authorization_code: 1, refresh_token: 1, password: 1, '(none)': 1,
    });
    assert.equal(s.max_concurrent_token_requests, 1, 'the requests above were sequential');
    assert.equal(s.token_requests_in_flight, 0);
    assert.deepEqual(s.clients['stats-bs'], { token_requests: 2, token_success: 1, token_errors: 1 });
    assert.deepEqual(s.clients['stats-nobody'], { token_requests: 1, token_success: 0, token_errors: 1 });
    assert.deepEqual(s.clients['stats-sym'], { token_requests: 4, token_success: 0, token_errors: 4 });

    // The per-client form keeps its fields.
    assert.deepEqual(await stats(sb, 'stats-bs'), {
      client_id: 'stats-bs', token_requests: 2, token_success: 1, token_errors: 1, total_token_requests: 7,
    });
    assert.deepEqual(await stats(sb, 'stats-unseen'), {
      client_id: 'stats-unseen', token_requests: 0, token_success: 0, token_errors: 0, total_token_requests: 7,
    });
  });

  test('other endpoints are not counted', async () => {
    await fetch(`${sb.fhirBase}/.well-known/smart-configuration`).then((r) => r.arrayBuffer());
    await fetch(`${sb.url}/token`).then((r) => r.arrayBuffer()); // GET is not a token request
    await fetch(`${sb.url}/jwks`).then((r) => r.arrayBuffer());
    assert.equal((await globalStats()).token_requests, 0);
  });

  test('max_concurrent_token_requests sees parallel requests', async () => {
    const n = 8;
    const results = await Promise.all(
      Array.from({ length: n }, () => backendToken(sb, 'stats-bs', key, 'system/Patient.rs')),
    );
    for (const r of results) assert.equal(r.status, 200);
    const s = await globalStats();
    assert.equal(s.token_requests, n);
    assert.equal(s.token_requests_in_flight, 0);
    assert.ok(s.max_concurrent_token_requests > 1 && s.max_concurrent_token_requests <= n,
      `max_concurrent_token_requests = ${s.max_concurrent_token_requests}`);
  });
});

describe('resetting', () => {
  test('POST /_admin/stats/reset clears the global and per-client counters', async () => {
    await backendToken(sb, 'stats-bs', key, 'system/Patient.rs');
    assert.equal((await globalStats()).token_requests, 1);
    assert.equal((await adminPost(sb, '/_admin/stats/reset')).status, 200);
    const s = await globalStats();
    assert.equal(s.token_requests, 0);
    assert.equal(s.max_concurrent_token_requests, 0);
    assert.deepEqual(s.clients, {});
    assert.equal((await stats(sb, 'stats-bs')).token_requests, 0);
    // Counting goes on after a reset.
    await backendToken(sb, 'stats-bs', key, 'system/Patient.rs');
    assert.equal((await globalStats()).token_requests, 1);
  });

  test('POST /_admin/reset still works', async () => {
    await backendToken(sb, 'stats-bs', key, 'system/Patient.rs');
    assert.deepEqual((await adminPost(sb, '/_admin/reset')).body, { reset: true });
    assert.equal((await globalStats()).token_requests, 0);
  });

  test('GET /_admin/stats/reset is not a reset', async () => {
    await backendToken(sb, 'stats-bs', key, 'system/Patient.rs');
    const res = await fetch(`${sb.url}/_admin/stats/reset`);
    assert.equal(res.status, 404);
    await res.arrayBuffer();
    assert.equal((await globalStats()).token_requests, 1);
  });
});
