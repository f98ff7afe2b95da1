// Milestone 2: SMART App Launch (authorization code + PKCE), standalone and EHR launch.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import * as jose from 'jose';
import {
  start, makeKey, registerClient, assertion, tokenRequest, fhirGet, pkcePair, Browser, basic, stats,
} from './helpers.mjs';

let sb;
let asymKey;
const REDIRECT = 'http://127.0.0.1:8123/callback'; // registered without port: any loopback port matches
const SCOPE_REG = 'openid fhirUser profile launch launch/patient launch/encounter offline_access online_access patient/*.rs user/*.rs patient/*.read';

before(async () => {
  sb = await start();
  asymKey = await makeKey('ES384');
  const common = { redirect_uris: ['http://127.0.0.1/callback'], scope: SCOPE_REG };
  await registerClient(sb, { client_id: 'app-public', token_endpoint_auth_method: 'none', ...common });
  await registerClient(sb, { client_id: 'app-symmetric', token_endpoint_auth_method: 'client_secret_basic', client_secret: 's3cret', ...common });
  await registerClient(sb, { client_id: 'app-asymmetric', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [asymKey.publicJwk] }, ...common });
});
after(async () => { await sb.close(); });

const state = () => crypto.randomBytes(24).toString('base64url');

function authParams(clientId, { scope, launch, aud, challenge, st, extra = {} }) {
  return {
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT,
    scope,
    state: st,
    aud: aud ?? sb.fhirBase,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...(launch ? { launch } : {}),
    ...extra,
  };
}

// Runs the front channel; returns the callback URL's params.
async function authorize(clientId, opts = {}) {
  const pk = opts.pkce ?? pkcePair();
  const st = opts.state ?? state();
  const params = authParams(clientId, { ...opts, challenge: pk.challenge, st });
  const browser = opts.browser ?? new Browser();
  const r = opts.post
    ? await browser.go(`${sb.url}/auth`, { method: 'POST', form: params, stopPrefix: REDIRECT })
    : await browser.go(`${sb.url}/auth?${new URLSearchParams(params)}`, { stopPrefix: REDIRECT });
  assert.ok(r.final.startsWith(REDIRECT), `did not reach redirect_uri: ${JSON.stringify(browser.trail)} ${r.body ?? ''}`);
  return { cb: new URL(r.final).searchParams, pkce: pk, state: st, browser };
}

async function clientAuth(clientId) {
  if (clientId === 'app-public' || clientId === 'app-noref') return { body: { client_id: clientId }, headers: {} };
  if (clientId === 'app-symmetric') return { body: {}, headers: { authorization: basic(clientId, 's3cret') } };
  return {
    body: {
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await assertion(sb, clientId, asymKey),
    },
    headers: {},
  };
}

async function exchange(clientId, code, verifier) {
  const a = await clientAuth(clientId);
  return tokenRequest(sb, {
    grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, ...a.body,
  }, a.headers);
}

async function refresh(clientId, refreshToken, extra = {}) {
  const a = await clientAuth(clientId);
  return tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: refreshToken, ...extra, ...a.body }, a.headers);
}

async function ehrLaunch(query) {
  const res = await fetch(`${sb.url}/_sandbox/ehr-launch?${new URLSearchParams(query)}`);
  assert.equal(res.status, 200);
  return res.json();
}

async function verifyIdToken(idToken, clientId) {
  const jwks = jose.createRemoteJWKSet(new URL(`${sb.url}/jwks`));
  const { payload, protectedHeader } = await jose.jwtVerify(idToken, jwks, { issuer: sb.url, audience: clientId });
  assert.equal(protectedHeader.alg, 'RS256');
  return payload;
}

for (const clientId of ['app-public', 'app-symmetric', 'app-asymmetric']) {
  describe(`${clientId}`, () => {
    test('standalone launch: patient context, id_token with fhirUser, refresh rotation', async () => {
      const scope = 'openid fhirUser launch/patient offline_access patient/*.rs';
      const { cb, pkce, state: st } = await authorize(clientId, { scope });
      assert.equal(cb.get('state'), st);
      assert.equal(cb.get('iss'), sb.url);
      assert.ok(cb.get('code'));
      const t = await exchange(clientId, cb.get('code'), pkce.verifier);
      assert.equal(t.status, 200, JSON.stringify(t.body));
      assert.equal(t.body.token_type, 'Bearer');
      assert.equal(t.body.scope, scope);
      assert.equal(t.body.patient, '123');
      assert.equal(t.body.encounter, undefined);
      assert.equal(t.body.smart_style_url, `${sb.url}/smart-style.json`);
      assert.ok(t.body.refresh_token);
      assert.equal(typeof t.body.expires_in, 'number');
      const idt = await verifyIdToken(t.body.id_token, clientId);
      assert.equal(idt.fhirUser, 'Practitioner/smart-Practitioner-1');
      assert.equal((await fhirGet(sb, 'Patient/123', t.body.access_token)).status, 200);
      // patient/ scope is limited to the patient in context
      assert.equal((await fhirGet(sb, 'Patient/smart-1', t.body.access_token)).status, 403);
      const obs = await fhirGet(sb, 'Observation?patient=123', t.body.access_token);
      assert.equal(obs.body.total, 2);

      const r1 = await refresh(clientId, t.body.refresh_token);
      assert.equal(r1.status, 200, JSON.stringify(r1.body));
      assert.ok(r1.body.refresh_token);
      assert.notEqual(r1.body.refresh_token, t.body.refresh_token);
      assert.equal(r1.body.scope, scope);
      assert.equal(r1.body.patient, undefined, 'context omitted on refresh by default');
      assert.equal((await fhirGet(sb, 'Patient/123', r1.body.access_token)).status, 200);
      // the old refresh token is invalid now
      const r2 = await refresh(clientId, r1.body.refresh_token);
      assert.equal(r2.status, 200, JSON.stringify(r2.body));
      // the old refresh token is invalid now; reusing it revokes the whole grant (reuse detection)
      const reuse = await refresh(clientId, t.body.refresh_token);
      assert.equal(reuse.status, 400);
      assert.equal(reuse.body.error, 'invalid_grant');
      assert.match(reuse.body.error_description, /refresh token already used/);
      const afterReuse = await refresh(clientId, r2.body.refresh_token);
      assert.equal(afterReuse.status, 400);
      assert.equal(afterReuse.body.error, 'invalid_grant');
      assert.equal((await fhirGet(sb, 'Patient/123', r2.body.access_token)).status, 401);
    });

    test('EHR launch: launch id binds patient, encounter, fhirContext; need_patient_banner', async () => {
      const l = await ehrLaunch({ patient: 'smart-1', encounter: 'enc-1', fhirContext: 'DiagnosticReport/dr-1', launch_url: 'http://127.0.0.1:8123/launch' });
      assert.equal(l.iss, sb.fhirBase);
      const lu = new URL(l.url);
      assert.equal(lu.searchParams.get('iss'), sb.fhirBase);
      assert.equal(lu.searchParams.get('launch'), l.launch);
      const scope = 'launch openid fhirUser online_access user/*.rs';
      const { cb, pkce } = await authorize(clientId, { scope, launch: l.launch, post: clientId === 'app-symmetric' });
      const t = await exchange(clientId, cb.get('code'), pkce.verifier);
      assert.equal(t.status, 200, JSON.stringify(t.body));
      assert.equal(t.body.patient, 'smart-1');
      assert.equal(t.body.encounter, 'enc-1');
      assert.deepEqual(t.body.fhirContext, [{ reference: 'DiagnosticReport/dr-1' }]);
      assert.equal(t.body.need_patient_banner, true);
      assert.equal(t.body.scope, scope);
      assert.ok(t.body.refresh_token, 'online_access yields a refresh token');
      assert.equal((await fhirGet(sb, 'Encounter/enc-1', t.body.access_token)).status, 200);
    });
  });
}

describe('front-channel and token errors', () => {
  test('authorization by POST works', async () => {
    const { cb, pkce } = await authorize('app-public', { scope: 'launch/patient patient/Patient.rs', post: true });
    const t = await exchange('app-public', cb.get('code'), pkce.verifier);
    assert.equal(t.status, 200);
    assert.equal(t.body.scope, 'launch/patient patient/Patient.rs');
    assert.equal(t.body.refresh_token, undefined);
    assert.equal(t.body.id_token, undefined);
  });

  test('PKCE mismatch -> 400 invalid_grant', async () => {
    const { cb } = await authorize('app-public', { scope: 'launch/patient patient/*.rs' });
    const t = await exchange('app-public', cb.get('code'), pkcePair().verifier);
    assert.equal(t.status, 400);
    assert.equal(t.body.error, 'invalid_grant');
  });

  test('code reuse -> 400 invalid_grant', async () => {
    const { cb, pkce } = await authorize('app-public', { scope: 'launch/patient patient/*.rs' });
    assert.equal((await exchange('app-public', cb.get('code'), pkce.verifier)).status, 200);
    const again = await exchange('app-public', cb.get('code'), pkce.verifier);
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_grant');
  });

  test('deny via login_hint=deny -> access_denied redirect with state', async () => {
    const { cb, state: st } = await authorize('app-public', { scope: 'openid launch/patient patient/*.rs', extra: { login_hint: 'deny' } });
    assert.equal(cb.get('error'), 'access_denied');
    assert.ok(cb.get('error_description'));
    assert.equal(cb.get('state'), st);
    assert.equal(cb.get('iss'), sb.url);
    assert.equal(cb.get('code'), null);
  });

  test('wrong aud -> invalid_request redirect', async () => {
    const { cb, state: st } = await authorize('app-public', { scope: 'launch/patient patient/*.rs', aud: 'https://other.example/fhir' });
    assert.equal(cb.get('error'), 'invalid_request');
    assert.match(cb.get('error_description'), /aud/);
    assert.equal(cb.get('state'), st);
  });

  test('missing aud -> invalid_request redirect', async () => {
    const pk = pkcePair();
    const params = authParams('app-public', { scope: 'launch/patient patient/*.rs', challenge: pk.challenge, st: 'x'.repeat(24) });
    delete params.aud;
    const r = await new Browser().go(`${sb.url}/auth?${new URLSearchParams(params)}`, { stopPrefix: REDIRECT });
    assert.equal(new URL(r.final).searchParams.get('error'), 'invalid_request');
  });

  test('missing PKCE / plain PKCE -> invalid_request redirect', async () => {
    const params = authParams('app-public', { scope: 'launch/patient patient/*.rs', challenge: 'x', st: 's'.repeat(24) });
    delete params.code_challenge;
    delete params.code_challenge_method;
    let r = await new Browser().go(`${sb.url}/auth?${new URLSearchParams(params)}`, { stopPrefix: REDIRECT });
    assert.equal(new URL(r.final).searchParams.get('error'), 'invalid_request');
    params.code_challenge = pkcePair().verifier;
    params.code_challenge_method = 'plain';
    r = await new Browser().go(`${sb.url}/auth?${new URLSearchParams(params)}`, { stopPrefix: REDIRECT });
    assert.equal(new URL(r.final).searchParams.get('error'), 'invalid_request');
  });

  test('unknown launch id -> invalid_request redirect', async () => {
    const { cb } = await authorize('app-public', { scope: 'launch patient/*.rs', launch: 'nope' });
    assert.equal(cb.get('error'), 'invalid_request');
  });

  test('login_hint=Patient/smart-1 logs in as that patient (fhirUser + patient context)', async () => {
    const { cb, pkce } = await authorize('app-public', { scope: 'openid fhirUser launch/patient patient/*.rs', extra: { login_hint: 'Patient/smart-1' } });
    const t = await exchange('app-public', cb.get('code'), pkce.verifier);
    assert.equal(t.body.patient, 'smart-1');
    const idt = await verifyIdToken(t.body.id_token, 'app-public');
    assert.equal(idt.fhirUser, 'Patient/smart-1');
  });

  test('same cookie jar, second EHR launch gets the new context', async () => {
    const browser = new Browser();
    for (const patient of ['123', 'smart-2']) {
      const l = await ehrLaunch({ patient });
      const { cb, pkce } = await authorize('app-public', { scope: 'launch patient/*.rs', launch: l.launch, browser });
      const t = await exchange('app-public', cb.get('code'), pkce.verifier);
      assert.equal(t.body.patient, patient);
    }
  });

  test('client without a cookie jar also completes the auto-approve flow (and deny)', async () => {
    const { cb, pkce } = await authorize('app-public', { scope: 'openid fhirUser launch/patient online_access patient/*.rs', browser: new Browser({ cookies: false }) });
    const t = await exchange('app-public', cb.get('code'), pkce.verifier);
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.equal(t.body.patient, '123');
    const r = await refresh('app-public', t.body.refresh_token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const d = await authorize('app-public', { scope: 'launch/patient patient/*.rs', extra: { login_hint: 'deny' }, browser: new Browser({ cookies: false }) });
    assert.equal(d.cb.get('error'), 'access_denied');
  });

  test('confidential clients must authenticate on refresh', async () => {
    const { cb, pkce } = await authorize('app-symmetric', { scope: 'launch/patient offline_access patient/*.rs' });
    const t = await exchange('app-symmetric', cb.get('code'), pkce.verifier);
    const r = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: 'app-symmetric' });
    assert.equal(r.status, 401);
    assert.equal(r.body.error, 'invalid_client');
    const bad = await tokenRequest(sb, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token }, { authorization: basic('app-symmetric', 'wrong') });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.error, 'invalid_client');
    const ok = await refresh('app-symmetric', t.body.refresh_token);
    assert.equal(ok.status, 200);
  });

  test('offline_access without refresh_token grant is dropped; unregistered scopes are dropped', async () => {
    await registerClient(sb, { client_id: 'app-noref', token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], redirect_uris: ['http://127.0.0.1/callback'], scope: 'launch/patient offline_access patient/Patient.rs' });
    const { cb, pkce } = await authorize('app-noref', { scope: 'launch/patient offline_access patient/Patient.rs patient/Observation.rs' });
    const t = await exchange('app-noref', cb.get('code'), pkce.verifier);
    assert.equal(t.status, 200);
    assert.equal(t.body.scope, 'launch/patient patient/Patient.rs');
    assert.equal(t.body.refresh_token, undefined);
  });

  test('token requests of app clients are counted', async () => {
    const s = await stats(sb, 'app-public');
    assert.ok(s.token_requests > 5);
    assert.ok(s.token_errors >= 1);
  });
});

describe('introspection', () => {
  test('confidential client introspects an app token: active, scope, patient, fhirUser', async () => {
    const l = await ehrLaunch({ patient: '123', encounter: 'enc-1' });
    const { cb, pkce } = await authorize('app-symmetric', { scope: 'launch openid fhirUser user/*.rs', launch: l.launch });
    const t = await exchange('app-symmetric', cb.get('code'), pkce.verifier);
    const res = await fetch(`${sb.url}/token/introspection`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('app-symmetric', 's3cret') },
      body: new URLSearchParams({ token: t.body.access_token }),
    });
    assert.equal(res.status, 200);
    const i = await res.json();
    assert.equal(i.active, true);
    assert.equal(i.client_id, 'app-symmetric');
    assert.equal(i.scope, 'user/*.rs');
    assert.equal(i.patient, '123');
    assert.equal(i.encounter, 'enc-1');
    assert.equal(i.fhirUser, 'Practitioner/smart-Practitioner-1');
    assert.equal(i.aud, sb.fhirBase);
  });
});

describe('options and helpers', () => {
  test('SMART_SANDBOX_REFRESH_CONTEXT / refreshContext: context repeated on refresh', async () => {
    const sb2 = await start({ refreshContext: true });
    try {
      await registerClient(sb2, { client_id: 'p', redirect_uris: ['http://127.0.0.1/callback'] });
      const pk = pkcePair();
      const params = {
        response_type: 'code', client_id: 'p', redirect_uri: REDIRECT, scope: 'launch/patient offline_access patient/*.rs',
        state: state(), aud: sb2.fhirBase, code_challenge: pk.challenge, code_challenge_method: 'S256',
      };
      const r = await new Browser().go(`${sb2.url}/auth?${new URLSearchParams(params)}`, { stopPrefix: REDIRECT });
      const code = new URL(r.final).searchParams.get('code');
      const t = await tokenRequest(sb2, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: pk.verifier, client_id: 'p' });
      assert.equal(t.body.patient, '123');
      const rf = await tokenRequest(sb2, { grant_type: 'refresh_token', refresh_token: t.body.refresh_token, client_id: 'p' });
      assert.equal(rf.status, 200);
      assert.equal(rf.body.patient, '123');
      assert.equal(rf.body.smart_style_url, `${sb2.url}/smart-style.json`);
    } finally {
      await sb2.close();
    }
  });

  test('ehr-launch with redirect=1 answers 302 to the app launch URL', async () => {
    const res = await fetch(`${sb.url}/_sandbox/ehr-launch?patient=123&launch_url=${encodeURIComponent('http://127.0.0.1:9/launch?x=1')}&redirect=1`, { redirect: 'manual' });
    assert.equal(res.status, 302);
    const loc = new URL(res.headers.get('location'));
    assert.equal(loc.origin + loc.pathname, 'http://127.0.0.1:9/launch');
    assert.equal(loc.searchParams.get('x'), '1');
    assert.equal(loc.searchParams.get('iss'), sb.fhirBase);
    assert.ok(loc.searchParams.get('launch'));
  });

  test('smart-style.json is served', async () => {
    const res = await fetch(`${sb.url}/smart-style.json`);
    assert.equal(res.status, 200);
    assert.ok((await res.json()).color_background);
  });

  test('GET /_admin/clients/{id} shows metadata without the secret', async () => {
    const res = await fetch(`${sb.url}/_admin/clients/app-symmetric`);
    assert.equal(res.status, 200);
    const md = await res.json();
    assert.equal(md.client_id, 'app-symmetric');
    assert.equal(md.client_secret, undefined);
    assert.equal(md.application_type, 'native');
  });
});
