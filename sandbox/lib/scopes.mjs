// SMART scope helpers: parsing (v1 and v2 syntax), "is this scope covered by the client's
// registration" (downscoping), and "does this granted scope set permit reading X".

// Scopes the authorization server knows statically (oidc-provider `scopes` config). Every other
// scope is treated as a SMART resource scope bound to the FHIR resource server.
export const STATIC_SCOPES = [
  'openid',
  'fhirUser',
  'profile',
  'offline_access',
  'online_access',
  'launch',
  'launch/patient',
  'launch/encounter',
];
const STATICS = new Set(STATIC_SCOPES);

export const isStaticScope = (s) => STATICS.has(s);

const V1 = { read: 'rs', write: 'cud', '*': 'cruds' };
const RE = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]*)\.([a-z*]+)(\?.*)?$/;

// Returns { context, type, perms (v2 letters), query, version } or null if not a SMART resource scope.
export function parseResourceScope(scope) {
  const m = RE.exec(scope);
  if (!m) return null;
  const [, context, type, p, query] = m;
  let perms;
  let version;
  if (V1[p] !== undefined) {
    perms = V1[p];
    version = 1;
  } else if (/^c?r?u?d?s?$/.test(p) && p.length > 0) {
    perms = p;
    version = 2;
  } else {
    return null;
  }
  return { context, type, perms, query: query || '', version };
}

export const splitScopes = (s) => (typeof s === 'string' ? s.split(/\s+/).filter(Boolean) : []);

// Does `held` (a parsed scope) cover `wanted` (a parsed scope)?
function covers(held, wanted) {
  if (held.context !== wanted.context) return false;
  if (held.type !== '*' && held.type !== wanted.type) return false;
  for (const ch of wanted.perms) if (!held.perms.includes(ch)) return false;
  if (held.query && held.query !== wanted.query) return false;
  return true;
}

// Registered resource scopes of a client (custom metadata `smart_scopes`); null = unrestricted.
export function registeredResourceScopes(client) {
  const s = client && (client.smart_scopes ?? client.smartScopes);
  if (typeof s !== 'string') return null;
  return splitScopes(s);
}

// Is a requested resource scope allowed for this client? (used to downscope requests)
export function resourceScopeAllowed(client, scope) {
  const wanted = parseResourceScope(scope);
  if (!wanted) return false;
  const registered = registeredResourceScopes(client);
  if (registered === null) return true; // client registered without resource scopes: anything SMART-shaped
  return registered.some((r) => {
    if (r === scope) return true;
    const held = parseResourceScope(r);
    return !!held && covers(held, wanted);
  });
}

// Does the granted scope string permit interaction `need` ('r' read, 's' search) on `type`?
// Returns the list of matching scopes (possibly empty).
export function permitting(grantedScope, type, need) {
  return splitScopes(grantedScope).filter((s) => {
    const p = parseResourceScope(s);
    return !!p && (p.type === '*' || p.type === type) && p.perms.includes(need);
  });
}
