// Milestone 1: SMART Backend Services (client_credentials + private_key_jwt, RFC 7523).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  start, makeKey, registerClient, backendToken, assertion, fhirGet, stats, adminPost, tokenRequest,
} from './helpers.mjs';

let sb;
let es;
let rs;
const CLIENT = 'bs-client';

before(async () => {
  sb = await start();
  es = await makeKey('ES384');
  rs = await makeKey('RS384');
  await registerClient(sb, {
    client_id: CLIENT,
    token_endpoint_auth_method: 'private_key_jwt',
    grant_types: ['client_credentials'],
    jwks: { keys: [es.publicJwk, rs.publicJwk] },
    scope: 'system/Patient.rs system/Observation.read',
  });
});
after(async () => { await sb.close(); });

describe('discovery', () => {
  test('smart-configuration has the STU 2.2 fields', async () => {
    const res = await fetch(`${sb.fhirBase}/.well-known/smart-configuration`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    const c = await res.json();
    assert.equal(c.issuer, sb.url);
    assert.equal(c.token_endpoint, `${sb.url}/token`);
    assert.equal(c.authorization_endpoint, `${sb.url}/auth`);
    assert.equal(c.jwks_uri, `${sb.url}/jwks`);
    assert.deepEqual(c.code_challenge_methods_supported, ['S256']);
    assert.ok(c.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
    assert.ok(c.token_endpoint_auth_signing_alg_values_supported.includes('ES384'));
    assert.ok(c.token_endpoint_auth_signing_alg_values_supported.includes('RS384'));
    assert.ok(c.grant_types_supported.includes('client_credentials'));
    for (const cap of ['launch-ehr', 'launch-standalone', 'client-confidential-asymmetric', 'permission-v2', 'authorize-post']) {
      assert.ok(c.capabilities.includes(cap), cap);
    }
    assert.ok(c.introspection_endpoint && c.revocation_endpoint);
    // issuer equals the OIDC issuer
    const oidc = await (await fetch(`${sb.url}/.well-known/openid-configuration`)).json();
    assert.equal(oidc.issuer, c.issuer);
  });

  test('metadata carries the oauth-uris extension', async () => {
    const res = await fetch(`${sb.fhirBase}/metadata`);
    assert.equal(res.status, 200);
    const cs = await res.json();
    assert.equal(cs.resourceType, 'CapabilityStatement');
    const ext = cs.rest[0].security.extension.find((e) => e.url === 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris');
    const token = ext.extension.find((e) => e.url === 'token');
    assert.equal(token.valueUri, `${sb.url}/token`);
  });
});

describe('client_credentials happy path', () => {
  for (const name of ['ES384', 'RS384']) {
    test(`${name} assertion gets a token that reads Patient/123`, async () => {
      const key = name === 'ES384' ? es : rs;
      const r = await backendToken(sb, CLIENT, key, 'system/Patient.rs');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.token_type, 'Bearer');
      assert.equal(r.body.expires_in, 300);
      assert.equal(r.body.scope, 'system/Patient.rs');
      assert.equal(r.body.refresh_token, undefined);
      assert.equal(r.headers.get('cache-control'), 'no-store');
      const p = await fhirGet(sb, 'Patient/123', r.body.access_token);
      assert.equal(p.status, 200);
      assert.equal(p.body.resourceType, 'Patient');
      assert.equal(p.body.id, '123');
      const s = await fhirGet(sb, 'Patient?_id=smart-1', r.body.access_token);
      assert.equal(s.status, 200);
      assert.equal(s.body.resourceType, 'Bundle');
      assert.equal(s.body.entry[0].resource.id, 'smart-1');
    });
  }

  test('v1 scope works for Observation search; unregistered scopes are dropped (downscoped)', async () => {
    const r = await backendToken(sb, CLIENT, es, 'system/Observation.read system/Encounter.rs system/Patient.rs');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.scope, 'system/Observation.read system/Patient.rs');
    const o = await fhirGet(sb, 'Observation?patient=123', r.body.access_token);
    assert.equal(o.status, 200);
    assert.equal(o.body.total, 2);
    const e = await fhirGet(sb, 'Encounter/enc-1', r.body.access_token);
    assert.equal(e.status, 403);
    assert.match(e.headers.get('www-authenticate'), /insufficient_scope/);
  });

  test('wildcard registration covers narrower v2 requests; access_token_ttl is honoured', async () => {
    const k = await makeKey('ES384');
    await registerClient(sb, {
      client_id: 'bs-wild',
      jwks: { keys: [k.publicJwk] },
      scope: 'system/*.read',
      access_token_ttl: 60,
    });
    const r = await backendToken(sb, 'bs-wild', k, 'system/Patient.rs system/Observation.r');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.expires_in, 60);
    assert.equal(r.body.scope, 'system/Patient.rs system/Observation.r');
    assert.equal((await fhirGet(sb, 'Patient/123', r.body.access_token)).status, 200);
    // .r permits read but not search
    assert.equal((await fhirGet(sb, 'Observation?patient=123', r.body.access_token)).status, 403);
    assert.equal((await fhirGet(sb, 'Observation/obs-1', r.body.access_token)).status, 200);
  });
});

describe('assertion rejections', () => {
  const expectInvalidClient = (r) => {
    assert.equal(r.status, 401, JSON.stringify(r.body));
    assert.equal(r.body.error, 'invalid_client');
    assert.equal(typeof r.body.error_description, 'string');
  };

  test('aud not the token endpoint', async () => {
    expectInvalidClient(await backendToken(sb, CLIENT, es, 'system/Patient.rs', { over: { aud: 'https://wrong.example/token' } }));
  });
  test('aud = issuer (oidc-provider default would accept; SMART-strict rejects)', async () => {
    expectInvalidClient(await backendToken(sb, CLIENT, es, 'system/Patient.rs', { over: { aud: sb.url } }));
  });
  test('expired exp', async () => {
    const now = Math.floor(Date.now() / 1000);
    expectInvalidClient(await backendToken(sb, CLIENT, es, 'system/Patient.rs', { over: { exp: now - 60, iat: now - 120 } }));
  });
  test('exp more than 5 minutes ahead', async () => {
    const now = Math.floor(Date.now() / 1000);
    expectInvalidClient(await backendToken(sb, CLIENT, es, 'system/Patient.rs', { over: { exp: now + 3600 } }));
  });
  test('signed by another key (same kid)', async () => {
    const other = await makeKey('ES384');
    expectInvalidClient(await backendToken(sb, CLIENT, es, 'system/Patient.rs', { signWith: other.privateKey }));
  });
  test('unknown kid', async () => {
    const other = await makeKey('ES384');
    expectInvalidClient(await backendToken(sb, CLIENT, other, 'system/Patient.rs'));
  });
  test('RS256 is not an accepted client-auth alg', async () => {
    const k = await makeKey('RS256');
    await registerClient(sb, { client_id: 'bs-rs256', jwks: { keys: [k.publicJwk] }, scope: 'system/Patient.rs' });
    expectInvalidClient(await backendToken(sb, 'bs-rs256', k, 'system/Patient.rs'));
  });
  test('missing typ header', async () => {
    expectInvalidClient(await backendToken(sb, CLIENT, es, 'system/Patient.rs', { header: { typ: undefined } }));
  });
  test('error_description carries the reason', async () => {
    const r = await backendToken(sb, CLIENT, es, 'system/Patient.rs', { over: { aud: sb.url } });
    assert.match(r.body.error_description, /^client authentication failed: aud must be exactly the token endpoint URL/);
  });
  test('replayed jti', async () => {
    const a = await assertion(sb, CLIENT, es);
    const first = await backendToken(sb, CLIENT, es, 'system/Patient.rs', { assertion: a });
    assert.equal(first.status, 200);
    expectInvalidClient(await backendToken(sb, CLIENT, es, 'system/Patient.rs', { assertion: a }));
  });
  test('unknown client', async () => {
    const k = await makeKey('ES384');
    expectInvalidClient(await backendToken(sb, 'nobody', k, 'system/Patient.rs'));
  });
  test('no client authentication at all', async () => {
    const r = await tokenRequest(sb, { grant_type: 'client_credentials', scope: 'system/Patient.rs' });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'invalid_request');
  });
});

describe('scope errors', () => {
  test('nothing requested is allowed -> 400 invalid_scope', async () => {
    const r = await backendToken(sb, CLIENT, es, 'system/Encounter.rs');
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'invalid_scope');
  });
  test('no scope parameter -> 400 invalid_scope', async () => {
    const r = await tokenRequest(sb, {
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await assertion(sb, CLIENT, es),
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'invalid_scope');
  });
});

describe('FHIR API', () => {
  test('no token / garbage token / wrong scope', async () => {
    const none = await fhirGet(sb, 'Patient/123');
    assert.equal(none.status, 401);
    assert.equal(none.body.resourceType, 'OperationOutcome');
    const bad = await fhirGet(sb, 'Patient/123', 'not-a-token');
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate'), /^Bearer .*error="invalid_token"/);
    assert.equal(bad.body.resourceType, 'OperationOutcome');
  });
  test('unknown patient is 404', async () => {
    const r = await backendToken(sb, CLIENT, es, 'system/Patient.rs');
    assert.equal((await fhirGet(sb, 'Patient/nope', r.body.access_token)).status, 404);
  });
});

describe('admin: stats, revoke, reset', () => {
  test('stats count every token request of a client, successful or not', async () => {
    const k = await makeKey('ES384');
    await registerClient(sb, { client_id: 'bs-stats', jwks: { keys: [k.publicJwk] }, scope: 'system/Patient.rs' });
    assert.equal((await stats(sb, 'bs-stats')).token_requests, 0);
    await backendToken(sb, 'bs-stats', k, 'system/Patient.rs');
    await backendToken(sb, 'bs-stats', k, 'system/Patient.rs', { over: { aud: 'https://wrong.example/token' } });
    const s = await stats(sb, 'bs-stats');
    assert.equal(s.token_requests, 2);
    assert.equal(s.token_success, 1);
    assert.equal(s.token_errors, 1);
    assert.ok(s.total_token_requests >= 2);
  });

  test('revoke makes existing tokens 401; new tokens work again', async () => {
    const r = await backendToken(sb, CLIENT, rs, 'system/Patient.rs');
    assert.equal((await fhirGet(sb, 'Patient/123', r.body.access_token)).status, 200);
    const rev = await adminPost(sb, `/_admin/revoke?client_id=${CLIENT}`);
    assert.equal(rev.status, 200);
    assert.ok(rev.body.revoked.access_tokens >= 1);
    const after = await fhirGet(sb, 'Patient/123', r.body.access_token);
    assert.equal(after.status, 401);
    assert.match(after.headers.get('www-authenticate'), /error="invalid_token"/);
    const r2 = await backendToken(sb, CLIENT, rs, 'system/Patient.rs');
    assert.equal((await fhirGet(sb, 'Patient/123', r2.body.access_token)).status, 200);
  });

  test('reset clears stats', async () => {
    await adminPost(sb, '/_admin/reset');
    const s = await stats(sb, CLIENT);
    assert.equal(s.token_requests, 0);
    assert.equal(s.total_token_requests, 0);
  });

  test('register returns 201 without secrets; bad metadata is 400', async () => {
    const r = await adminPost(sb, '/_admin/clients', {
      client_id: 'sym', client_secret: 'shh', token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: ['http://127.0.0.1/callback'], scope: 'openid fhirUser launch/patient patient/*.rs offline_access',
    });
    assert.equal(r.status, 201);
    assert.equal(r.body.client_secret, undefined);
    assert.equal(r.body.scope, 'openid fhirUser launch/patient patient/*.rs offline_access');
    const bad = await adminPost(sb, '/_admin/clients', { client_id: 'x', token_endpoint_auth_method: 'bogus' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'invalid_client_metadata');
  });
});
