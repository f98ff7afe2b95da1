// Static clients from clients.json (with the committed TEST-ONLY key pair).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as jose from 'jose';
import { start, backendToken, fhirGet, tokenRequest, basic } from './helpers.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
let sb;
before(async () => { sb = await start({ clientsFile: path.join(HERE, '..', 'clients.json') }); });
after(async () => { await sb.close(); });

test('sandbox-backend gets tokens with the committed ES384 and RS384 keys', async () => {
  const jwks = JSON.parse(fs.readFileSync(path.join(HERE, '..', 'keys', 'sandbox-client.private.jwks.json'), 'utf8'));
  for (const jwk of jwks.keys) {
    const key = { alg: jwk.alg, kid: jwk.kid, privateKey: await jose.importJWK(jwk, jwk.alg) };
    const r = await backendToken(sb, 'sandbox-backend', key, 'system/Patient.rs system/Observation.rs');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.scope, 'system/Patient.rs system/Observation.rs');
    assert.equal((await fhirGet(sb, 'Observation?patient=123', r.body.access_token)).status, 200);
  }
});

test('sandbox-confidential authenticates with its secret', async () => {
  const r = await tokenRequest(sb, { grant_type: 'authorization_code', code: 'nope', redirect_uri: 'http://127.0.0.1/callback', code_verifier: 'x'.repeat(43) },
    { authorization: basic('sandbox-confidential', 'sandbox-secret') });
  assert.equal(r.status, 400); // authenticated, then the bogus code is rejected
  assert.equal(r.body.error, 'invalid_grant');
});
