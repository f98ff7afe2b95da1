// SMART on FHIR sandbox authorization server (oidc-provider) + tiny protected FHIR API.
// Loopback only; for development and integration tests. See README.md.
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Provider, { errors } from 'oidc-provider';
import * as jose from 'jose';

import { makeMemoryAdapter } from './lib/adapter.mjs';
import {
  STATIC_SCOPES, isStaticScope, splitScopes, resourceScopeAllowed, permitting,
} from './lib/scopes.mjs';
import { RESOURCES, PATIENTS, OBSERVATIONS } from './lib/fhir-data.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

const envFlag = (name, dflt) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  return !['0', 'false', 'no', 'off'].includes(v.toLowerCase());
};

// Test users (login_hint selects one; default is the practitioner).
const ACCOUNTS = {
  'smart-Practitioner-1': { fhirUser: 'Practitioner/smart-Practitioner-1', name: 'Dr. Adam Careful' },
  123: { fhirUser: 'Patient/123', name: 'Jason Argonaut' },
  'smart-1': { fhirUser: 'Patient/smart-1', name: 'Amy V. Shaw' },
};
const DEFAULT_ACCOUNT = 'smart-Practitioner-1';
const DEFAULT_STANDALONE_PATIENT = '123';

function resolveAccount(hint) {
  if (!hint) return undefined;
  if (ACCOUNTS[hint]) return hint;
  const m = /^(?:Practitioner|Patient)\/(.+)$/.exec(hint);
  if (m && ACCOUNTS[m[1]]) return m[1];
  return undefined;
}

const CAPABILITIES = [
  'launch-ehr',
  'launch-standalone',
  'client-public',
  'client-confidential-symmetric',
  'client-confidential-asymmetric',
  'sso-openid-connect',
  'context-banner',
  'context-style',
  'context-ehr-patient',
  'context-ehr-encounter',
  'context-standalone-patient',
  'permission-offline',
  'permission-online',
  'permission-patient',
  'permission-user',
  'permission-v1',
  'permission-v2',
  'authorize-post',
];

const CLIENT_AUTH_ALGS = ['RS384', 'ES384'];
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

const isLoopbackAddr = (a) => !!a && (a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.'));

function sendJson(res, status, body, headers = {}) {
  const data = JSON.stringify(body, null, 2);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(data);
}

async function readBody(req, limit = 1 << 20) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > limit) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const randomId = (bytes = 16) => crypto.randomBytes(bytes).toString('base64url');

/**
 * Start a sandbox server.
 * options: port (0 = ephemeral), host, autoApprove, refreshContext, clientsFile, logger, quiet
 * Returns { url, fhirBase, provider, close() }.
 */
export async function startSandbox(options = {}) {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? Number(process.env.SMART_SANDBOX_PORT || 4010);
  const autoApprove = options.autoApprove ?? envFlag('SMART_SANDBOX_AUTO_APPROVE', true);
  const refreshContext = options.refreshContext ?? envFlag('SMART_SANDBOX_REFRESH_CONTEXT', false);
  const clientsFile = options.clientsFile === undefined
    ? (process.env.SMART_SANDBOX_CLIENTS ?? path.join(HERE, 'clients.json'))
    : options.clientsFile;
  const log = options.quiet ? () => {} : (options.logger ?? ((...a) => console.log(new Date().toISOString(), ...a)));

  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = server.address().port;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const base = `http://${hostPart}:${actualPort}`;
  const fhirBase = `${base}/fhir`;
  const tokenEndpoint = `${base}/token`;

  // ---- state ----------------------------------------------------------------------------
  const Adapter = makeMemoryAdapter();
  // Token endpoint counters (`/_admin/stats`): every POST /token, whatever the grant type or outcome.
  const newStats = () => ({
    total: 0, success: 0, errors: 0, inFlight: 0, maxInFlight: 0, byGrantType: new Map(), perClient: new Map(),
  });
  const stats = newStats();
  const resetStats = () => {
    // In-flight requests stay in flight: they are counted when they finish, after the reset.
    const { inFlight } = stats;
    Object.assign(stats, newStats(), { inFlight, maxInFlight: inFlight });
  };
  const launches = new Map(); // launch id -> { patient, encounter, fhirContext, exp }
  const contextByGrant = new Map(); // grantId -> launch context for token responses

  function countTokenRequest(clientId, grantType, ok) {
    stats.total += 1;
    if (ok) stats.success += 1;
    else stats.errors += 1;
    const g = typeof grantType === 'string' && grantType ? grantType : '(none)';
    stats.byGrantType.set(g, (stats.byGrantType.get(g) ?? 0) + 1);
    const key = clientId ?? '(unknown)';
    const s = stats.perClient.get(key) ?? { token_requests: 0, token_success: 0, token_errors: 0 };
    s.token_requests += 1;
    if (ok) s.token_success += 1;
    else s.token_errors += 1;
    stats.perClient.set(key, s);
  }

  // ---- signing keys (generated per start; never logged) -----------------------------------
  const { privateKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const signingJwk = { ...(await jose.exportJWK(privateKey)), alg: 'RS256', use: 'sig' };
  signingJwk.kid = await jose.calculateJwkThumbprint(signingJwk);

  const ttlFor = (client, dflt) => {
    const v = client?.access_token_ttl;
    return Number.isInteger(v) && v > 0 ? v : dflt;
  };

  // Resource-server scope for the FHIR API: everything the client registered plus every requested /
  // previously granted SMART scope covered by that registration (wildcards, v1 <-> v2).
  function resourceServerScope(ctx, client) {
    const candidates = new Set();
    const reg = client?.smart_scopes;
    for (const s of splitScopes(reg)) candidates.add(s);
    const e = ctx.oidc?.entities ?? {};
    for (const s of [
      ...splitScopes(ctx.oidc?.params?.scope),
      ...splitScopes(e.AuthorizationCode?.scope),
      ...splitScopes(e.RefreshToken?.scope),
    ]) {
      if (!isStaticScope(s) && resourceScopeAllowed(client, s)) candidates.add(s);
    }
    return [...candidates].join(' ');
  }

  const configuration = {
    adapter: Adapter,
    clients: [],
    cookies: { keys: [randomId(32), randomId(32)] },
    jwks: { keys: [signingJwk] },
    scopes: STATIC_SCOPES,
    claims: {
      openid: ['sub'],
      fhirUser: ['fhirUser'],
      profile: ['name'],
    },
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    pkce: { required: () => true, methods: ['S256'] },
    clientAuthMethods: ['none', 'client_secret_basic', 'private_key_jwt'],
    enabledJWA: {
      clientAuthSigningAlgValues: CLIENT_AUTH_ALGS,
      idTokenSigningAlgValues: ['RS256'],
    },
    clockTolerance: 5,
    extraClientMetadata: {
      properties: ['access_token_ttl', 'smart_scopes'],
      validator(ctx, key, value) {
        if (key === 'access_token_ttl' && value !== undefined && !(Number.isInteger(value) && value > 0)) {
          throw new errors.InvalidClientMetadata('access_token_ttl must be a positive integer (seconds)');
        }
        if (key === 'smart_scopes' && value !== undefined && typeof value !== 'string') {
          throw new errors.InvalidClientMetadata('smart_scopes must be a string');
        }
      },
    },
    extraParams: {
      // SMART `aud`: must be the FHIR base URL (SMART-strict: also required).
      aud(ctx, value) {
        if (ctx.oidc.route !== 'authorization' && ctx.oidc.route !== 'resume') return;
        if (value === undefined) {
          throw new errors.InvalidRequest(`missing required parameter 'aud' (must be ${fhirBase})`);
        }
        if (value.replace(/\/$/, '') !== fhirBase) {
          throw new errors.InvalidRequest(`aud must be the FHIR base URL ${fhirBase}`);
        }
      },
      // EHR launch id from /_sandbox/ehr-launch.
      launch(ctx, value) {
        if (ctx.oidc.route !== 'authorization') return;
        if (value !== undefined) {
          const l = launches.get(value);
          if (!l || l.exp < Date.now()) throw new errors.InvalidRequest('unknown or expired launch parameter');
        }
        // oidc-provider drops offline_access unless prompt=consent (an OIDC rule); SMART apps never
        // send prompt=consent, so restore it here when the client may use refresh tokens.
        const raw = ctx.method === 'POST' ? ctx.oidc.body?.scope : ctx.query?.scope;
        const requested = splitScopes(raw);
        const current = splitScopes(ctx.oidc.params.scope);
        const { client } = ctx.oidc;
        const allowList = client.scope ? new Set(splitScopes(client.scope)) : null;
        if (requested.includes('offline_access') && !current.includes('offline_access')
          && client.grantTypeAllowed('refresh_token') && (!allowList || allowList.has('offline_access'))) {
          ctx.oidc.params.scope = [...current, 'offline_access'].join(' ');
        }
      },
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // confidential clients may introspect any token, public clients only their own
        allowedPolicy: (ctx, client, token) => client.clientAuthMethod !== 'none' || token.clientId === client.clientId,
      },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => fhirBase,
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, resourceIndicator, client) {
          if (resourceIndicator.replace(/\/$/, '') !== fhirBase) {
            throw new errors.InvalidTarget(`unknown resource; the only resource server is ${fhirBase}`);
          }
          if (ctx.oidc.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials') {
            const requested = splitScopes(ctx.oidc.params.scope).filter((sc) => !isStaticScope(sc));
            if (!requested.length) throw new errors.InvalidScope('scope parameter with SMART system/ scopes is required');
            if (!requested.some((sc) => resourceScopeAllowed(client, sc))) {
              throw new errors.InvalidScope('none of the requested scopes is allowed for this client', ctx.oidc.params.scope);
            }
          }
          return {
            scope: resourceServerScope(ctx, client),
            audience: fhirBase,
            accessTokenFormat: 'opaque',
          };
        },
      },
    },
    ttl: {
      AccessToken: (ctx, token, client) => ttlFor(client, 3600),
      ClientCredentials: (ctx, token, client) => ttlFor(client, 300),
      AuthorizationCode: 60,
      Interaction: 600,
      Session: 3600,
      Grant: 14 * 24 * 3600,
      IdToken: 3600,
      RefreshToken: 14 * 24 * 3600,
    },
    issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token')
      && (code.scopes.has('offline_access') || code.scopes.has('online_access')),
    rotateRefreshToken: true,
    // Launch context + fhirUser on access tokens (shows up in introspection responses).
    extraTokenClaims(ctx, token) {
      if (token.kind !== 'AccessToken') return undefined;
      const extra = {};
      const context = token.grantId ? contextByGrant.get(token.grantId) : undefined;
      if (context?.patient) extra.patient = context.patient;
      if (context?.encounter) extra.encounter = context.encounter;
      if (token.accountId && ACCOUNTS[token.accountId]) extra.fhirUser = ACCOUNTS[token.accountId].fhirUser;
      return Object.keys(extra).length ? extra : undefined;
    },
    // Never reuse a grant from the session: every authorization request goes through the
    // (auto-approving) interaction so that each launch gets its own context.
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId;
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    interactions: {
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    async findAccount(ctx, sub) {
      const acct = ACCOUNTS[sub];
      if (!acct) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub, fhirUser: acct.fhirUser, name: acct.name };
        },
      };
    },
    // SMART-strict client assertion checks on top of oidc-provider's RFC 7523 validation.
    async assertJwtClientAuthClaimsAndHeader(ctx, claims, header) {
      if (typeof header.typ !== 'string' || header.typ.toUpperCase() !== 'JWT') {
        throw new errors.InvalidClientAuth('client assertion header typ must be "JWT"');
      }
      // At the token endpoint: exactly the token URL. At introspection/revocation the endpoint's
      // own URL is accepted too.
      const auds = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
      const accepted = ctx.oidc.route === 'token' ? [tokenEndpoint] : [tokenEndpoint, `${base}${ctx.path}`];
      if (auds.length !== 1 || !accepted.includes(auds[0])) {
        throw new errors.InvalidClientAuth(`aud must be exactly the token endpoint URL ${tokenEndpoint}`);
      }
      const now = Math.floor(Date.now() / 1000);
      if (typeof claims.exp !== 'number' || claims.exp > now + 300 + 5) {
        throw new errors.InvalidClientAuth('exp must be no more than 5 minutes in the future');
      }
      if (claims.sub !== undefined && claims.sub !== claims.iss) {
        throw new errors.InvalidClientAuth('sub must equal iss (the client_id)');
      }
    },
    renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  };

  const provider = new Provider(base, configuration);
  provider.proxy = false;
  provider.on('server_error', (ctx, err) => log('server_error', err?.stack ?? err));
  // oidc-provider answers "client authentication failed" and keeps the reason in error_detail;
  // surface it (like real SMART servers do) so failing client tests are easy to diagnose.
  provider.on('grant.error', (ctx, err) => {
    if (err?.error_detail) ctx.state.sandboxErrorDetail = err.error_detail;
  });

  // ---- token endpoint: stats + SMART launch context in token responses --------------------
  const claimedClientId = (ctx) => {
    const body = ctx.oidc?.body ?? {};
    if (typeof body.client_id === 'string') return body.client_id;
    if (typeof body.client_assertion === 'string') {
      try {
        const p = jose.decodeJwt(body.client_assertion);
        if (typeof p.iss === 'string') return p.iss;
        if (typeof p.sub === 'string') return p.sub;
      } catch { /* ignore */ }
    }
    const auth = ctx.headers.authorization;
    if (auth && /^basic /i.test(auth)) {
      try {
        const dec = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
        const i = dec.indexOf(':');
        if (i > 0) return decodeURIComponent(dec.slice(0, i).replace(/\+/g, '%20'));
      } catch { /* ignore */ }
    }
    return ctx.oidc?.client?.clientId;
  };

  provider.use(async (ctx, next) => {
    const isToken = ctx.method === 'POST' && ctx.path === '/token';
    if (isToken) {
      stats.inFlight += 1;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    }
    try {
      await next();
    } finally {
      if (isToken) {
        stats.inFlight -= 1;
        if (ctx.state.sandboxErrorDetail && ctx.body && typeof ctx.body === 'object' && ctx.body.error
          && ctx.body.error_description && !ctx.body.error_description.includes(ctx.state.sandboxErrorDetail)) {
          ctx.body.error_description = `${ctx.body.error_description}: ${ctx.state.sandboxErrorDetail}`;
        }
        const ok = ctx.status === 200;
        const clientId = claimedClientId(ctx);
        countTokenRequest(clientId, ctx.oidc?.params?.grant_type ?? ctx.oidc?.body?.grant_type, ok);
        log(`token ${ctx.oidc?.params?.grant_type ?? '?'} client=${clientId ?? '?'} -> ${ctx.status}${ok ? '' : ` ${ctx.body?.error ?? ''}`}`);
      }
    }
    if (!isToken || ctx.status !== 200 || !ctx.body || typeof ctx.body !== 'object' || !ctx.body.access_token) return;
    const { entities = {}, params = {} } = ctx.oidc ?? {};
    const grantType = params.grant_type;
    if (grantType !== 'authorization_code' && grantType !== 'refresh_token') return;
    const at = entities.AccessToken;
    if (!at) return;
    const grant = entities.Grant ?? (at.grantId ? await provider.Grant.find(at.grantId) : undefined);
    // Full granted scope (oidc-provider reports only the resource-server part).
    let baseScopes;
    if (grantType === 'authorization_code') baseScopes = entities.AuthorizationCode?.scopes;
    else baseScopes = params.scope ? new Set(splitScopes(params.scope)) : entities.RefreshToken?.scopes;
    if (grant && baseScopes) {
      const oidcPart = splitScopes(grant.getOIDCScopeFiltered(baseScopes));
      const resPart = splitScopes(at.scope);
      const full = [...baseScopes].filter((s) => oidcPart.includes(s) || resPart.includes(s));
      ctx.body.scope = full.join(' ');
    }
    if (grantType === 'refresh_token' && !refreshContext) return;
    const context = at.grantId ? contextByGrant.get(at.grantId) : undefined;
    if (context) Object.assign(ctx.body, context);
  });

  // ---- client registration helpers ---------------------------------------------------------
  const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
  const SANDBOX_EXTRAS = ['jwks_file'];

  function normalizeClient(input, baseDir = HERE) {
    if (!input || typeof input !== 'object' || Array.isArray(input)) {
      throw new errors.InvalidClientMetadata('body must be a JSON object of client metadata');
    }
    const md = structuredClone(input);
    if (typeof md.client_id !== 'string' || !md.client_id) {
      throw new errors.InvalidClientMetadata('client_id is required');
    }
    if (md.jwks_file) {
      const p = path.resolve(baseDir, md.jwks_file);
      md.jwks = JSON.parse(fs.readFileSync(p, 'utf8'));
    }
    for (const k of SANDBOX_EXTRAS) delete md[k];
    if (md.jwks?.keys) {
      md.jwks = {
        keys: md.jwks.keys.map((k) => {
          const pub = { ...k };
          for (const m of PRIVATE_JWK_MEMBERS) delete pub[m];
          return pub;
        }),
      };
    }
    md.token_endpoint_auth_method ??= md.client_secret ? 'client_secret_basic' : (md.jwks || md.jwks_uri ? 'private_key_jwt' : 'none');
    const redirectUris = md.redirect_uris ?? [];
    md.grant_types ??= redirectUris.length
      ? ['authorization_code', 'refresh_token']
      : ['client_credentials'];
    if (!md.grant_types.includes('authorization_code')) {
      md.response_types ??= [];
      md.redirect_uris ??= [];
    } else {
      md.response_types ??= ['code'];
    }
    if (md.application_type === undefined && redirectUris.length && redirectUris.every((u) => {
      try {
        const x = new URL(u);
        return x.protocol === 'http:' && LOOPBACK_HOSTS.has(x.hostname);
      } catch { return false; }
    })) {
      md.application_type = 'native'; // RFC 8252: loopback redirect URIs match on any port
    }
    // Split `scope`: static scopes stay in oidc-provider's `scope` (an allow-list for them),
    // SMART resource scopes go to `smart_scopes` (the resource-server allow-list).
    const requestedScope = md.scope;
    if (typeof md.scope === 'string') {
      const all = splitScopes(md.scope);
      const statics = all.filter(isStaticScope);
      const resources = all.filter((s) => !isStaticScope(s));
      md.smart_scopes = resources.join(' ');
      if (statics.length) md.scope = statics.join(' ');
      else delete md.scope;
    }
    return { md, requestedScope };
  }

  function publicView(md, requestedScope) {
    const out = { ...md };
    delete out.client_secret;
    delete out.smart_scopes;
    if (requestedScope !== undefined) out.scope = requestedScope;
    else delete out.scope;
    return out;
  }

  async function registerClient(input, baseDir) {
    const { md, requestedScope } = normalizeClient(input, baseDir);
    await provider.Client.validate(md);
    await new Adapter('Client').upsert(md.client_id, md);
    return publicView(md, requestedScope);
  }

  if (clientsFile && fs.existsSync(clientsFile)) {
    const list = JSON.parse(fs.readFileSync(clientsFile, 'utf8'));
    for (const c of list.clients ?? list) {
      await registerClient(c, path.dirname(clientsFile));
    }
    log(`registered ${(list.clients ?? list).length} static client(s) from ${clientsFile}`);
  }

  // ---- SMART discovery ----------------------------------------------------------------------
  const smartConfiguration = () => ({
    issuer: base,
    jwks_uri: `${base}/jwks`,
    authorization_endpoint: `${base}/auth`,
    token_endpoint: tokenEndpoint,
    token_endpoint_auth_methods_supported: ['private_key_jwt', 'client_secret_basic', 'none'],
    token_endpoint_auth_signing_alg_values_supported: CLIENT_AUTH_ALGS,
    grant_types_supported: ['authorization_code', 'client_credentials', 'refresh_token'],
    introspection_endpoint: `${base}/token/introspection`,
    revocation_endpoint: `${base}/token/revocation`,
    scopes_supported: [
      ...STATIC_SCOPES,
      'patient/*.rs', 'user/*.rs', 'system/*.rs',
      'patient/*.cruds', 'user/*.cruds', 'system/*.cruds',
      'patient/*.read', 'user/*.read', 'system/*.read',
    ],
    response_types_supported: ['code'],
    id_token_signing_alg_values_supported: ['RS256'],
    code_challenge_methods_supported: ['S256'],
    capabilities: CAPABILITIES,
  });

  const capabilityStatement = () => ({
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2024-01-01',
    kind: 'instance',
    software: { name: 'smart-sandbox', version: '0.1.0' },
    implementation: { description: 'SMART sandbox FHIR API', url: fhirBase },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [{
      mode: 'server',
      security: {
        extension: [{
          url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
          extension: [
            { url: 'authorize', valueUri: `${base}/auth` },
            { url: 'token', valueUri: tokenEndpoint },
            { url: 'introspect', valueUri: `${base}/token/introspection` },
            { url: 'revoke', valueUri: `${base}/token/revocation` },
          ],
        }],
        service: [{
          coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }],
        }],
      },
      resource: ['Patient', 'Observation', 'Practitioner', 'Encounter'].map((type) => ({
        type,
        interaction: [{ code: 'read' }, { code: 'search-type' }],
      })),
    }],
  });

  // ---- FHIR API -------------------------------------------------------------------------------
  const operationOutcome = (code, diagnostics) => ({
    resourceType: 'OperationOutcome',
    issue: [{ severity: 'error', code, diagnostics }],
  });

  function fhirError(res, status, code, diagnostics, wwwAuth) {
    const headers = { 'content-type': 'application/fhir+json; charset=utf-8' };
    if (wwwAuth) headers['www-authenticate'] = wwwAuth;
    res.writeHead(status, headers);
    res.end(JSON.stringify(operationOutcome(code, diagnostics), null, 2));
  }

  async function authenticateBearer(req) {
    const h = req.headers.authorization;
    const m = h && /^Bearer\s+([^\s]+)\s*$/i.exec(h);
    if (!m) return { error: 'missing' };
    const value = m[1];
    const token = (await provider.AccessToken.find(value)) ?? (await provider.ClientCredentials.find(value));
    if (!token || token.isExpired) return { error: 'invalid' };
    const aud = Array.isArray(token.aud) ? token.aud : [token.aud];
    if (!aud.includes(fhirBase)) return { error: 'invalid', description: 'token audience is not this FHIR server' };
    return { token, context: token.grantId ? contextByGrant.get(token.grantId) : undefined };
  }

  function filterForPatientScopes(matching, context, type, resource) {
    // patient/ scopes only reach the patient in context (if the grant has one).
    const nonPatient = matching.filter((s) => !s.startsWith('patient/'));
    if (nonPatient.length || !context?.patient) return true;
    const pid = context.patient;
    if (type === 'Patient') return resource.id === pid;
    if (type === 'Observation' || type === 'Encounter') return resource.subject?.reference === `Patient/${pid}`;
    return false;
  }

  async function handleFhir(req, res, url) {
    const rel = url.pathname.slice('/fhir'.length).replace(/^\/+/, '');
    const parts = rel.split('/').filter(Boolean);
    if (req.method !== 'GET') {
      return fhirError(res, 405, 'not-supported', 'only GET is supported by the sandbox FHIR API');
    }
    const [type, id] = parts;
    if (!RESOURCES[type] || parts.length > 2) {
      return fhirError(res, 404, 'not-found', `unknown resource type or path: ${rel}`);
    }
    const auth = await authenticateBearer(req);
    if (auth.error === 'missing') {
      return fhirError(res, 401, 'login', 'missing bearer token', `Bearer realm="${fhirBase}"`);
    }
    if (auth.error) {
      const desc = auth.description ?? 'access token is unknown, expired or revoked';
      return fhirError(res, 401, 'login', desc, `Bearer realm="${fhirBase}", error="invalid_token", error_description="${desc}"`);
    }
    const need = id ? 'r' : 's';
    const matching = permitting(auth.token.scope, type, need);
    if (!matching.length) {
      const desc = `token scope does not permit ${need === 'r' ? 'read' : 'search'} of ${type}`;
      return fhirError(res, 403, 'forbidden', desc, `Bearer realm="${fhirBase}", error="insufficient_scope", error_description="${desc}"`);
    }
    const visible = (r) => filterForPatientScopes(matching, auth.context, type, r);
    if (id) {
      const r = RESOURCES[type].find((x) => x.id === id);
      if (!r) return fhirError(res, 404, 'not-found', `${type}/${id} not found`);
      if (!visible(r)) return fhirError(res, 403, 'forbidden', `patient-scoped token cannot read ${type}/${id}`);
      res.writeHead(200, { 'content-type': 'application/fhir+json; charset=utf-8' });
      return res.end(JSON.stringify(r, null, 2));
    }
    // search
    let list = RESOURCES[type];
    const q = url.searchParams;
    if (q.get('_id')) list = list.filter((r) => q.get('_id').split(',').includes(r.id));
    if (type === 'Patient') {
      const name = (q.get('name') ?? q.get('family'))?.toLowerCase();
      if (name) list = list.filter((r) => JSON.stringify(r.name).toLowerCase().includes(name));
    }
    const subj = q.get('patient') ?? q.get('subject');
    if (subj && type !== 'Patient') {
      const ref = subj.includes('/') ? subj : `Patient/${subj}`;
      list = list.filter((r) => r.subject?.reference === ref);
    }
    list = list.filter(visible);
    const bundle = {
      resourceType: 'Bundle',
      type: 'searchset',
      total: list.length,
      link: [{ relation: 'self', url: `${fhirBase}/${type}${url.search}` }],
      entry: list.map((r) => ({ fullUrl: `${fhirBase}/${type}/${r.id}`, resource: r, search: { mode: 'match' } })),
    };
    res.writeHead(200, { 'content-type': 'application/fhir+json; charset=utf-8' });
    return res.end(JSON.stringify(bundle, null, 2));
  }

  // ---- admin endpoints (loopback only) ---------------------------------------------------------
  async function handleAdmin(req, res, url) {
    if (!isLoopbackAddr(req.socket.remoteAddress)) {
      return sendJson(res, 403, { error: 'forbidden', error_description: 'admin endpoints are loopback-only' });
    }
    const p = url.pathname;
    if (p === '/_admin/clients' && req.method === 'POST') {
      let input;
      try {
        input = JSON.parse(await readBody(req));
      } catch {
        return sendJson(res, 400, { error: 'invalid_request', error_description: 'body must be JSON' });
      }
      try {
        const stored = await registerClient(input, process.cwd());
        log(`admin: registered client ${stored.client_id} (${stored.token_endpoint_auth_method})`);
        return sendJson(res, 201, stored);
      } catch (err) {
        return sendJson(res, 400, {
          error: err.error ?? 'invalid_client_metadata',
          error_description: err.error_description ?? err.message,
        });
      }
    }
    const cm = /^\/_admin\/clients\/([^/]+)$/.exec(p);
    if (cm && (req.method === 'GET' || req.method === 'DELETE')) {
      const id = decodeURIComponent(cm[1]);
      const a = new Adapter('Client');
      const md = await a.find(id);
      if (!md) return sendJson(res, 404, { error: 'not_found' });
      if (req.method === 'DELETE') {
        await a.destroy(id);
        return sendJson(res, 200, { deleted: id });
      }
      const view = publicView(md, [md.scope, md.smart_scopes].filter(Boolean).join(' ') || undefined);
      return sendJson(res, 200, view);
    }
    if (p === '/_admin/stats' && req.method === 'GET') {
      const id = url.searchParams.get('client_id');
      const zero = { token_requests: 0, token_success: 0, token_errors: 0 };
      if (id !== null) {
        return sendJson(res, 200, { client_id: id, ...(stats.perClient.get(id) ?? zero), total_token_requests: stats.total });
      }
      return sendJson(res, 200, {
        token_requests: stats.total,
        token_success: stats.success,
        token_errors: stats.errors,
        token_requests_in_flight: stats.inFlight,
        max_concurrent_token_requests: stats.maxInFlight,
        by_grant_type: Object.fromEntries(stats.byGrantType),
        total_token_requests: stats.total,
        clients: Object.fromEntries(stats.perClient),
      });
    }
    if ((p === '/_admin/stats/reset' || p === '/_admin/reset') && req.method === 'POST') {
      resetStats();
      return sendJson(res, 200, { reset: true });
    }
    if (p === '/_admin/revoke' && req.method === 'POST') {
      const id = url.searchParams.get('client_id');
      if (!id) return sendJson(res, 400, { error: 'invalid_request', error_description: 'client_id query parameter required' });
      const byClient = (pl) => pl.clientId === id;
      const revoked = {
        access_tokens: Adapter.destroyWhere('AccessToken', byClient) + Adapter.destroyWhere('ClientCredentials', byClient),
      };
      if (['1', 'true'].includes(url.searchParams.get('refresh_tokens') ?? '')) {
        revoked.refresh_tokens = Adapter.destroyWhere('RefreshToken', byClient);
      }
      log(`admin: revoked tokens of ${id}: ${JSON.stringify(revoked)}`);
      return sendJson(res, 200, { client_id: id, revoked });
    }
    return sendJson(res, 404, { error: 'not_found', error_description: `no admin endpoint ${req.method} ${p}` });
  }

  // ---- EHR launch simulation ------------------------------------------------------------------
  function handleEhrLaunch(req, res, url) {
    const q = url.searchParams;
    const patient = q.get('patient') ?? DEFAULT_STANDALONE_PATIENT;
    const encounter = q.get('encounter') ?? undefined;
    const fhirContext = q.getAll('fhirContext').flatMap((v) => v.split(',')).filter(Boolean)
      .map((reference) => ({ reference }));
    const id = randomId(16);
    launches.set(id, {
      patient,
      encounter,
      fhirContext: fhirContext.length ? fhirContext : undefined,
      exp: Date.now() + 3600 * 1000,
    });
    const launchUrl = q.get('launch_url');
    let target;
    if (launchUrl) {
      try {
        const u = new URL(launchUrl);
        u.searchParams.set('iss', fhirBase);
        u.searchParams.set('launch', id);
        target = u.href;
      } catch {
        return sendJson(res, 400, { error: 'invalid_request', error_description: 'launch_url must be an absolute URL' });
      }
    }
    if (target && ['1', 'true'].includes(q.get('redirect') ?? '')) {
      res.writeHead(302, { location: target, 'cache-control': 'no-store' });
      return res.end();
    }
    return sendJson(res, 200, { iss: fhirBase, launch: id, url: target });
  }

  // Launch context attached to a grant at approval time.
  function buildContext(params, accountId) {
    const scopes = new Set(splitScopes(params.scope));
    const ctxOut = {};
    if (params.launch && launches.has(params.launch)) {
      const l = launches.get(params.launch);
      if (l.patient) ctxOut.patient = l.patient;
      if (l.encounter) ctxOut.encounter = l.encounter;
      if (l.fhirContext) ctxOut.fhirContext = l.fhirContext;
      ctxOut.need_patient_banner = true;
    } else if (scopes.has('launch/patient')) {
      const user = ACCOUNTS[accountId];
      ctxOut.patient = user?.fhirUser.startsWith('Patient/') ? accountId : DEFAULT_STANDALONE_PATIENT;
      ctxOut.need_patient_banner = false;
    }
    ctxOut.smart_style_url = `${base}/smart-style.json`;
    return ctxOut;
  }

  // ---- interactions: headless approval ---------------------------------------------------------
  // `finish(result)` completes the interaction: normally provider.interactionFinished (needs the
  // `_interaction` cookie); in cookieless mode the result is stored on the Interaction directly.
  async function approve(details, accountId, finish) {
    const { params } = details;
    const client = await provider.Client.find(params.client_id);
    const requested = splitScopes(params.scope);
    const grant = new provider.Grant({ accountId, clientId: params.client_id });
    const oidcScopes = requested.filter(isStaticScope);
    if (oidcScopes.length) grant.addOIDCScope(oidcScopes.join(' '));
    const resScopes = requested.filter((s) => !isStaticScope(s) && resourceScopeAllowed(client, s));
    if (resScopes.length) grant.addResourceScope(fhirBase, resScopes.join(' '));
    const grantId = await grant.save();
    contextByGrant.set(grantId, buildContext(params, accountId));
    log(`interaction ${details.uid}: approved client=${params.client_id} user=${accountId}`);
    await finish({ login: { accountId }, consent: { grantId } });
  }

  async function deny(details, why, finish) {
    log(`interaction ${details.uid}: denied client=${details.params.client_id}`);
    await finish({ error: 'access_denied', error_description: why });
  }

  const signCookie = (name, value) => crypto.createHmac('sha1', configuration.cookies.keys[0])
    .update(`${name}=${value}`).digest('base64')
    .replace(/[/+=]/g, (x) => ({ '/': '_', '+': '-', '=': '' })[x]);

  const hasCookie = (req, name) => (req.headers.cookie ?? '').split(';').some((c) => c.trim().startsWith(`${name}=`));

  async function handleInteraction(req, res, url) {
    let details;
    let finish;
    try {
      details = await provider.interactionDetails(req, res);
      finish = (result) => provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
    } catch (err) {
      // Cookieless clients (auto-approve only): find the interaction by uid and store the result
      // on it; the resume request is then given its cookie by the router (see below).
      const uid = url.pathname.split('/')[2];
      const interaction = autoApprove && uid ? await provider.Interaction.find(uid) : undefined;
      if (!interaction) {
        return sendJson(res, 400, { error: 'invalid_request', error_description: `interaction not found: ${err.message}` });
      }
      details = interaction;
      finish = async (result) => {
        interaction.result = result;
        if (interaction.session?.uid) delete interaction.session.uid;
        await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
        res.writeHead(303, { location: interaction.returnTo, 'content-length': '0' });
        res.end();
      };
    }
    const { params, session } = details;
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      if (form.get('action') !== 'approve') return deny(details, 'The user denied the request', finish);
      return approve(details, resolveAccount(form.get('user')) ?? DEFAULT_ACCOUNT, finish);
    }
    if (params.login_hint === 'deny') {
      return deny(details, 'The user denied the request (login_hint=deny)', finish);
    }
    const accountId = resolveAccount(params.login_hint) ?? session?.accountId ?? DEFAULT_ACCOUNT;
    if (autoApprove) return approve(details, accountId, finish);
    // manual mode: a minimal form
    const opts = Object.keys(ACCOUNTS).map((a) => `<option value="${a}"${a === accountId ? ' selected' : ''}>${ACCOUNTS[a].fhirUser}</option>`).join('');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    return res.end(`<!doctype html><html><body><h1>SMART sandbox: authorize ${encodeURIComponent(params.client_id)}</h1>
<p>Scopes: ${String(params.scope ?? '').replace(/[<>&"]/g, '')}</p>
<form method="post" action="${url.pathname}"><select name="user">${opts}</select>
<button name="action" value="approve">Approve</button> <button name="action" value="deny">Deny</button></form></body></html>`);
  }

  // Cookieless resume: give `GET /auth/<uid>` the signed resume cookie if the client has no cookie
  // jar and the interaction was already completed by the auto-approver.
  async function injectResumeCookie(req, url) {
    const m = /^\/auth\/([^/]+)$/.exec(url.pathname);
    if (!m || !autoApprove || hasCookie(req, '_interaction_resume')) return;
    const interaction = await provider.Interaction.find(m[1]);
    if (!interaction?.result) return;
    const extra = `_interaction_resume=${m[1]}; _interaction_resume.sig=${signCookie('_interaction_resume', m[1])}`;
    req.headers.cookie = req.headers.cookie ? `${req.headers.cookie}; ${extra}` : extra;
  }

  // ---- router ----------------------------------------------------------------------------------
  const providerCallback = provider.callback();
  server.on('request', async (req, res) => {
    let url;
    try {
      url = new URL(req.url, base);
    } catch {
      res.writeHead(400);
      return res.end();
    }
    const p = url.pathname;
    try {
      if (p === '/fhir/.well-known/smart-configuration') {
        return sendJson(res, 200, smartConfiguration(), { 'access-control-allow-origin': '*', 'cache-control': 'no-cache' });
      }
      if (p === '/fhir/metadata' || p === '/fhir/metadata/') {
        res.writeHead(200, { 'content-type': 'application/fhir+json; charset=utf-8', 'access-control-allow-origin': '*' });
        return res.end(JSON.stringify(capabilityStatement(), null, 2));
      }
      if (p === '/fhir' || p.startsWith('/fhir/')) return await handleFhir(req, res, url);
      if (p.startsWith('/_admin/')) return await handleAdmin(req, res, url);
      if (p === '/_sandbox/ehr-launch') return handleEhrLaunch(req, res, url);
      if (p.startsWith('/interaction/')) return await handleInteraction(req, res, url);
      if (p === '/smart-style.json') {
        return sendJson(res, 200, {
          color_background: '#edeae3',
          color_error: '#9e2d2d',
          color_highlight: '#69b5ce',
          color_modal_backdrop: '',
          color_success: '#498e49',
          color_text: '#303030',
          dim_border_radius: '6px',
          dim_font_size: '13px',
          dim_spacing_size: '20px',
          font_family_body: 'Georgia, Times, \'Times New Roman\', serif',
          font_family_heading: '\'HelveticaNeue-Light\', Helvetica, Arial, \'Lucida Grande\', sans-serif;',
        }, { 'cache-control': 'no-cache', 'access-control-allow-origin': '*' });
      }
      if (p === '/' && req.method === 'GET') {
        return sendJson(res, 200, { sandbox: 'smart-sandbox', issuer: base, fhir_base: fhirBase });
      }
      await injectResumeCookie(req, url);
      return providerCallback(req, res);
    } catch (err) {
      log('request error', err?.stack ?? err);
      if (!res.headersSent) sendJson(res, err.status ?? 500, { error: 'server_error', error_description: err.message });
      else res.end();
    }
  });

  log(`SMART sandbox listening on ${base} (FHIR base ${fhirBase}, auto-approve ${autoApprove ? 'on' : 'off'})`);

  return {
    url: base,
    fhirBase,
    tokenEndpoint,
    provider,
    registerClient,
    close: () => new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    }),
  };
}

// Run directly: `node server.mjs`
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  startSandbox().then((sb) => {
    // Lets `start` learn the real URL when SMART_SANDBOX_PORT=0 (ephemeral port).
    if (process.env.SMART_SANDBOX_URL_FILE) fs.writeFileSync(process.env.SMART_SANDBOX_URL_FILE, `${sb.url}\n`);
  }).catch((err) => {
    console.error('failed to start SMART sandbox:', err?.stack ?? err);
    process.exit(1);
  });
  const shutdown = () => process.exit(0);
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}
