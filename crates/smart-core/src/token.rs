//! Token-endpoint responses (RFC 6749 §5.1; SMART App Launch §"Response to the access token
//! request" and Backend Services §"Response"): [`TokenResponse`] and [`parse_token_response`].
//!
//! Parsing is lenient where real servers deviate: `expires_in` as a numeric string, `scope`
//! as a JSON array or absent, `"refresh_token": ""` or `null`. Each deviation leaves a warning
//! in [`TokenResponse::warnings`]. Launch context is read by [`crate::context`]; error bodies
//! by [`crate::oauth_error`].
//!
//! No error produced here contains a token or any other text from the response body, except
//! the server's own `error`, `error_description` and `error_uri` in an
//! [`OAuthError`](crate::error::OAuthError).

use crate::context::{ContextRaw, CtxKey, LaunchContext, ctx_key, is_extension};
use crate::error::{Document, Error, ParseError};
use crate::flow::HttpResponse;
pub use crate::lenient::MAX_LIFETIME_SECS;
use crate::lenient::{BOM_WARNING, Key, KeySeed, LSecs, LStr, LStrList, Notes, Seen, strip_bom};
use crate::oauth_error::{clean_text, oauth_error_from_object, parse_oauth_error};
use crate::secret::{AccessToken, IdToken, RefreshToken};
use crate::time::UnixTime;
use serde::Deserializer as _;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use url::Url;

fn parse_err(document: Document, message: impl Into<String>) -> Error {
    Error::Parse(ParseError::new(document, message))
}

/// A successful token-endpoint response (code exchange, refresh, or Backend Services).
///
/// `Debug` is redacted: tokens print as `AccessToken([redacted])` and the values of
/// [`extra`](Self::extra) are not printed (only their names). `Serialize`/`Deserialize` give a
/// storage form (the field names below), for token stores; it is not the wire format.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenResponse {
    /// `access_token`: opaque; never parse it.
    pub access_token: AccessToken,
    /// `token_type` as sent (`Bearer` or `bearer`); compare with [`is_bearer`](Self::is_bearer).
    pub token_type: String,
    /// `expires_in` in **seconds**: a JSON number or a numeric string (as some servers send it);
    /// `None` when absent or `null`.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// Absolute expiry: the `now` passed to [`parse_token_response`] + `expires_in`. `None`
    /// when the lifetime is unknown (never "already expired").
    #[serde(default)]
    pub expires_at: Option<UnixTime>,
    /// `scope`: granted scopes, space-separated (a JSON array, which some servers send, is
    /// joined with spaces). `None` when absent (SMART requires it; a warning is recorded).
    #[serde(default)]
    pub scope: Option<String>,
    /// Whether [`scope`](Self::scope) was filled in from the request by
    /// [`infer_missing_scope`](Self::infer_missing_scope).
    #[serde(default)]
    pub scope_inferred: bool,
    /// `refresh_token`; `null` and `""` are `None` (`""` with a warning).
    #[serde(default)]
    pub refresh_token: Option<RefreshToken>,
    /// `id_token` (compact JWT, unverified here).
    #[serde(default)]
    pub id_token: Option<IdToken>,
    /// Launch context members (SMART App Launch §"Scopes and Launch Context", "Launch context
    /// arrives with your access_token").
    #[serde(default)]
    pub context: LaunchContext,
    /// `authorization_details` (2.2.0, experimental, RFC 9396), kept as JSON.
    #[serde(default)]
    pub authorization_details: Option<Value>,
    /// Every member not modelled above (including vendor and extension members, which also
    /// appear in [`LaunchContext::extensions`]), with original JSON values. (The storage form
    /// nests these values two levels deeper; values nested more than ~125 levels deep may
    /// exceed serde_json's recursion limit when read back.)
    #[serde(default)]
    pub extra: Map<String, Value>,
    /// What was lenient about parsing, including the launch-context warnings.
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let extra: Vec<&str> = self.extra.keys().map(String::as_str).collect();
        f.debug_struct("TokenResponse")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("scope_inferred", &self.scope_inferred)
            .field("refresh_token", &self.refresh_token)
            .field("id_token", &self.id_token)
            .field("context", &self.context)
            .field(
                "authorization_details",
                &self.authorization_details.as_ref().map(|_| "[..]"),
            )
            .field("extra", &extra)
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl TokenResponse {
    /// A response with an empty access token and nothing else (a placeholder).
    pub(crate) fn empty() -> Self {
        Self {
            access_token: AccessToken::new(String::new()),
            token_type: "Bearer".into(),
            expires_in: None,
            expires_at: Some(UnixTime::EPOCH),
            scope: None,
            scope_inferred: false,
            refresh_token: None,
            id_token: None,
            context: LaunchContext::default(),
            authorization_details: None,
            extra: Map::new(),
            warnings: Vec::new(),
        }
    }

    /// The response in its wire shape (RFC 6749 §5.1 members, SMART launch context members
    /// and every unknown member at the top level), e.g. for `smart token --json`. The storage
    /// form (`serde`) nests the context instead. **Contains the tokens.**
    pub fn to_wire_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        };
        let string = |s: &str| Value::String(s.to_owned());
        put("access_token", Some(string(self.access_token.secret())));
        put("token_type", Some(string(&self.token_type)));
        put("expires_in", self.expires_in.map(Value::from));
        put("scope", self.scope.as_deref().map(string));
        put(
            "refresh_token",
            self.refresh_token.as_ref().map(|t| string(t.secret())),
        );
        put(
            "id_token",
            self.id_token.as_ref().map(|t| string(t.secret())),
        );
        let c = &self.context;
        put("patient", c.patient.as_deref().map(string));
        put("encounter", c.encounter.as_deref().map(string));
        if !c.fhir_context.is_empty() {
            put("fhirContext", serde_json::to_value(&c.fhir_context).ok());
        }
        put(
            "need_patient_banner",
            c.need_patient_banner.map(Value::Bool),
        );
        put("smart_style_url", c.smart_style_url.as_deref().map(string));
        put("intent", c.intent.as_deref().map(string));
        put("tenant", c.tenant.as_deref().map(string));
        put("authorization_details", self.authorization_details.clone());
        for (k, v) in self.extra.iter().chain(c.extensions.iter()) {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        m
    }

    /// Whether `token_type` is `Bearer`, compared case-insensitively (RFC 6749 §5.1).
    pub fn is_bearer(&self) -> bool {
        self.token_type.eq_ignore_ascii_case("bearer")
    }

    /// Whether the access token is expired, or expires within `skew_secs` seconds of `now`.
    /// An unknown expiry (`expires_at == None`) is never expired.
    pub fn is_expired(&self, now: UnixTime, skew_secs: u64) -> bool {
        self.expires_at
            .is_some_and(|at| now.plus_secs(skew_secs) >= at)
    }

    /// The granted scopes (whitespace-separated `scope`); empty when `scope` is `None` or `""`.
    pub fn granted_scopes(&self) -> Vec<&str> {
        self.scope
            .as_deref()
            .map(|s| s.split_ascii_whitespace().collect())
            .unwrap_or_default()
    }

    /// Whether the grant includes exactly the scope token `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.granted_scopes().contains(&scope)
    }

    /// RFC 6749 §5.1: when the response had no `scope`, the granted scope is the
    /// requested one. Fills [`scope`](Self::scope) with `requested` and sets
    /// [`scope_inferred`](Self::scope_inferred); does nothing when `scope` is present.
    pub fn infer_missing_scope(&mut self, requested: &str) {
        if self.scope.is_none() {
            self.scope = Some(requested.to_owned());
            self.scope_inferred = true;
        }
    }

    /// Combine this (stored) response with the response to a refresh request (RFC 6749 §6;
    /// SMART App Launch §"Refresh access token"):
    /// * access token, `token_type`, `expires_in`/`expires_at` come from `new` — a missing
    ///   `expires_in` gives `expires_at = None` (the old lifetime is never extended);
    /// * `refresh_token`: `new`'s when present (rotation), else the old one is kept;
    /// * `scope`: `new`'s when present, else the old one (the refresh grant has the original
    ///   scopes) with `scope_inferred` set;
    /// * `id_token` and `authorization_details`: `new`'s when present, else the old ones;
    /// * launch context, **as a whole** (the IG says context "MAY be included" in a refresh
    ///   response): when `new` carries any SMART context member (`patient`, `encounter`,
    ///   `fhirContext`, `need_patient_banner`, `smart_style_url`, `intent`, `tenant`), its
    ///   context replaces the stored one entirely — never mixed member by member — and a
    ///   warning names the members that changed ([`LaunchContext::changed_members`]); when it
    ///   carries none, the stored context is kept and only extension members are merged,
    ///   `new` winning;
    /// * `extra` is merged, `new` winning; `warnings` are `new`'s (plus the context change).
    #[must_use]
    pub fn merge_refresh(&self, new: TokenResponse) -> TokenResponse {
        let old = self;
        let mut warnings = new.warnings;
        let (scope, scope_inferred) = match new.scope {
            Some(s) => (Some(s), new.scope_inferred),
            None => (old.scope.clone(), old.scope.is_some() || old.scope_inferred),
        };
        let context = if new.context.has_smart_members() {
            let changed = old.context.changed_members(&new.context);
            if !changed.is_empty() {
                warnings.push(format!(
                    "the refresh response changed the launch context ({}); the new context replaces the old one as a whole",
                    changed.join(", ")
                ));
            }
            new.context
        } else {
            let mut context = old.context.clone();
            context.extensions.extend(new.context.extensions);
            context.warnings = new.context.warnings;
            context
        };
        let mut extra = old.extra.clone();
        extra.extend(new.extra);
        TokenResponse {
            access_token: new.access_token,
            token_type: new.token_type,
            expires_in: new.expires_in,
            expires_at: new.expires_at,
            scope,
            scope_inferred,
            refresh_token: new.refresh_token.or_else(|| old.refresh_token.clone()),
            id_token: new.id_token.or_else(|| old.id_token.clone()),
            context,
            authorization_details: new
                .authorization_details
                .or_else(|| old.authorization_details.clone()),
            extra,
            warnings,
        }
    }
}

fn tr_err(message: impl Into<String>) -> Error {
    parse_err(Document::TokenResponse, message)
}

/// Whether `token` may be used as an access token: `1*VSCHAR` (RFC 6749 Appendix A.12,
/// printable ASCII `%x20-7E`) without a space, which an `Authorization: Bearer` header
/// (RFC 6750 §2.1) cannot carry. CR, LF, NUL and non-ASCII characters are refused.
///
/// # Errors
/// [`Error::InvalidAccessToken`] naming the problem, never the token.
pub fn check_access_token_syntax(token: &str) -> Result<(), Error> {
    // One branch-free (vectorisable) pass over the often long token in the common case.
    let outside = token
        .bytes()
        .fold(false, |bad, b| bad | !(0x21..=0x7e).contains(&b));
    if !token.is_empty() && !outside {
        return Ok(());
    }
    let reason = if token.is_empty() {
        "is empty"
    } else if token.bytes().any(|b| b < 0x20 || b == 0x7f) {
        "contains a control character"
    } else if token.bytes().any(|b| b == b' ') {
        "contains a space"
    } else if !token.is_ascii() {
        "contains a non-ASCII character"
    } else {
        return Ok(());
    };
    Err(Error::InvalidAccessToken { reason })
}

/// The members of a token response, as read by the tolerant readers.
#[derive(Default)]
struct Raw {
    access_token: Option<LStr>,
    token_type: Option<LStr>,
    expires_in: LSecs,
    scope: Option<LStrList>,
    refresh_token: LStr,
    id_token: LStr,
    authorization_details: Option<Value>,
    context: ContextRaw,
    /// Every other member.
    extra: Map<String, Value>,
}

#[derive(Clone, Copy)]
enum K {
    AccessToken,
    TokenType,
    ExpiresIn,
    Scope,
    RefreshToken,
    IdToken,
    AuthorizationDetails,
    Context(CtxKey),
}

fn known(name: &str) -> Option<K> {
    Some(match name {
        "access_token" => K::AccessToken,
        "token_type" => K::TokenType,
        "expires_in" => K::ExpiresIn,
        "scope" => K::Scope,
        "refresh_token" => K::RefreshToken,
        "id_token" => K::IdToken,
        "authorization_details" => K::AuthorizationDetails,
        other => K::Context(ctx_key(other)?),
    })
}

enum Top {
    Object(Box<Raw>),
    NotObject,
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Top;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut r = Box::<Raw>::default();
        while let Some(key) = map.next_key_seed(KeySeed(known))? {
            let k = match key {
                Key::Known(k) => k,
                Key::Other(name) => {
                    let v = map.next_value::<Value>()?;
                    r.extra.insert(name, v);
                    continue;
                }
            };
            match k {
                K::AccessToken => r.access_token = Some(map.next_value()?),
                K::TokenType => r.token_type = Some(map.next_value()?),
                K::ExpiresIn => r.expires_in = map.next_value()?,
                K::Scope => r.scope = Some(map.next_value()?),
                K::RefreshToken => r.refresh_token = map.next_value()?,
                K::IdToken => r.id_token = map.next_value()?,
                K::AuthorizationDetails => r.authorization_details = Some(map.next_value()?),
                K::Context(c) => r.context.read_next(c, &mut map)?,
            }
        }
        Ok(Top::Object(r))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top::NotObject)
    }
}

/// An optional secret string (`refresh_token`, `id_token`): `null`, `""` and a value of
/// another JSON type are `None` (the last two with a warning).
fn opt_secret(field: &str, v: LStr, warnings: &mut Vec<String>) -> Option<String> {
    match v.0 {
        Seen::Null => None,
        Seen::Ok(s) if s.is_empty() => {
            warnings.push(format!("`{field}` is an empty string; treated as absent"));
            None
        }
        Seen::Ok(s) => Some(s),
        Seen::Wrong(t) => {
            warnings.push(format!("`{field}` is {t}, not a string; ignored"));
            None
        }
    }
}

/// `scope`: a string as sent; an array of strings joined with spaces (non-string items
/// dropped); `null`, absent or another type → `None`. Warnings for each deviation.
fn read_scope(v: Option<LStrList>, warnings: &mut Vec<String>) -> Option<String> {
    let Some(l) = v else {
        warnings.push(
            "`scope` is absent (SMART requires it); the granted scope is the requested one".into(),
        );
        return None;
    };
    match l.list {
        Seen::Null => {
            warnings.push("`scope` is null; treated as absent".into());
            None
        }
        Seen::Wrong(t) => {
            warnings.push(format!(
                "`scope` is {t}, not a string; ignored (treated as absent)"
            ));
            None
        }
        Seen::Ok(mut items) if l.lone => items.pop(),
        Seen::Ok(items) => {
            warnings.push("`scope` is a JSON array; joined with spaces".into());
            if l.dropped > 0 {
                warnings.push(format!(
                    "`scope` has {} array item(s) that are not strings; dropped",
                    l.dropped
                ));
            }
            let mut parts = Vec::with_capacity(items.len());
            for item in &items {
                parts.extend(item.split_ascii_whitespace());
            }
            Some(parts.join(" "))
        }
    }
}

/// Build the [`TokenResponse`] from the members read (`Err` for what the flow cannot do
/// without: a usable `access_token`, a readable `expires_in`).
fn build(r: Raw, now: UnixTime) -> Result<TokenResponse, Error> {
    let mut warnings = Vec::new();
    let access_token = match r.access_token.map(|v| v.0) {
        Some(Seen::Ok(s)) if !s.is_empty() => {
            check_access_token_syntax(&s)?;
            AccessToken::new(s)
        }
        Some(Seen::Ok(_)) => return Err(tr_err("`access_token` is empty")),
        None | Some(Seen::Null) => return Err(tr_err("`access_token` is missing")),
        Some(Seen::Wrong(_)) => return Err(tr_err("`access_token` must be a string")),
    };
    let token_type = match r.token_type.map(|v| v.0) {
        Some(Seen::Ok(s)) if !s.is_empty() => s,
        None | Some(Seen::Null) => {
            warnings.push("`token_type` is absent; assuming Bearer".into());
            "Bearer".to_owned()
        }
        Some(Seen::Ok(_)) => {
            warnings.push("`token_type` is empty; assuming Bearer".into());
            "Bearer".to_owned()
        }
        Some(Seen::Wrong(t)) => {
            warnings.push(format!(
                "`token_type` is {t}, not a string; assuming Bearer"
            ));
            "Bearer".to_owned()
        }
    };
    if !token_type.eq_ignore_ascii_case("bearer") {
        warnings.push("`token_type` is not Bearer".into());
    }
    let mut notes = Notes::default();
    let expires_in = notes
        .seconds("expires_in", r.expires_in, true)
        .map_err(|_| tr_err("`expires_in` must be a non-negative number of seconds"))?;
    warnings.extend(notes.0.iter().map(ToString::to_string));
    let expires_at = expires_in.map(|s| now.plus_secs(s));
    let scope = read_scope(r.scope, &mut warnings);
    let refresh_token =
        opt_secret("refresh_token", r.refresh_token, &mut warnings).map(RefreshToken::new);
    let id_token = opt_secret("id_token", r.id_token, &mut warnings).map(IdToken::new);
    let authorization_details = r.authorization_details.filter(|v| !v.is_null());
    let extensions: Map<String, Value> = r
        .extra
        .iter()
        .filter(|(k, _)| is_extension(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut cw = Vec::new();
    let mut context = r.context.finish(extensions, &mut cw);
    warnings.extend(cw.iter().cloned());
    context.warnings = cw;
    Ok(TokenResponse {
        access_token,
        token_type,
        expires_in,
        expires_at,
        scope,
        scope_inferred: false,
        refresh_token,
        id_token,
        context,
        authorization_details,
        extra: r.extra,
        warnings,
    })
}

/// Parse the members of a successful token response (the JSON object), computing `expires_at`
/// from `now`. Tolerant as described for [`parse_token_response`].
///
/// # Errors
/// [`Error::Parse`] ([`Document::TokenResponse`]) when `access_token` is missing, empty or not
/// a string, or `expires_in` is negative, not finite or not a number;
/// [`Error::InvalidAccessToken`] when the access token has characters a Bearer header cannot
/// carry.
pub fn parse_token_members(
    obj: &Map<String, Value>,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    match obj.deserialize_any(RawVisitor) {
        Ok(Top::Object(r)) => build(*r, now),
        _ => Err(tr_err("the response is not a JSON object")),
    }
}

/// Parse a token-endpoint answer (RFC 6749 §5.1/§5.2; SMART App Launch §"Response to the
/// access token request", Backend Services §"Response").
///
/// * 2xx with a JSON object carrying `access_token` → [`TokenResponse`] (`expires_at` = `now` +
///   `expires_in`).
/// * 2xx whose body is an OAuth error document (no `access_token`, an `error` string) →
///   [`Error::OAuth`] (some servers answer errors with 200).
/// * non-2xx with an RFC 6749 §5.2 error body → [`Error::OAuth`] with the status.
/// * non-2xx otherwise → [`Error::Http`] with `url` and the status.
///
/// Tolerant, each with a warning in [`TokenResponse::warnings`]: one leading UTF-8 byte-order
/// mark is skipped (RFC 8259 §8.1); `expires_in` as a numeric string or with a fractional part
/// is read and rounded down (`35999.87` → 35999, `"3599.5"` → 3599), and a lifetime over
/// [`MAX_LIFETIME_SECS`] (ten years) is clamped to it; `scope` as a JSON array is joined with
/// spaces (non-string items dropped), and `scope` of another type is treated as absent; a
/// `token_type` that is absent, empty or not a string is taken as `Bearer`; a
/// `refresh_token`/`id_token` that is `""` or not a string is ignored; launch context as in
/// [`parse_launch_context`](crate::context::parse_launch_context).
///
/// # Errors
/// As above, plus [`Error::Parse`] ([`Document::TokenResponse`]) for a 2xx body that is not a
/// JSON object, or whose `access_token` is missing, empty or not a string, or whose
/// `expires_in` is negative, not finite or not a number (the message names `expires_in`);
/// [`Error::InvalidAccessToken`] for an access token with a space, a control or a non-ASCII
/// character; [`Error::UnsupportedTokenType`] for a `token_type` other than Bearer. No error
/// carries body text (only the server's `error`, `error_description`, `error_uri` in an
/// [`OAuthError`](crate::error::OAuthError)).
pub fn parse_token_response(
    response: &HttpResponse,
    url: &Url,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    let (body, bom) = strip_bom(&response.body);
    if !response.is_success() {
        return Err(match parse_oauth_error(response.status, body) {
            Some(e) => Error::OAuth(e),
            None => Error::Http {
                url: url.to_string(),
                status: response.status,
            },
        });
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let raw = match de
        .deserialize_any(RawVisitor)
        .and_then(|t| de.end().map(|()| t))
    {
        Ok(Top::Object(r)) => r,
        Ok(Top::NotObject) => return Err(tr_err("the response is not a JSON object")),
        Err(e) => {
            return Err(Error::Parse(ParseError::from_json(
                Document::TokenResponse,
                &e,
            )));
        }
    };
    if raw.access_token.is_none()
        && let Some(e) = oauth_error_from_object(Some(response.status), &raw.extra)
    {
        return Err(Error::OAuth(e));
    }
    let mut token = build(*raw, now)?;
    if bom {
        token.warnings.insert(0, BOM_WARNING.to_owned());
    }
    if !token.is_bearer() {
        // RFC 6749 §7.1: a client must not use a token whose type it does not understand;
        // every driver here sends `Authorization: Bearer`.
        return Err(Error::UnsupportedTokenType {
            token_type: clean_text(&token.token_type),
        });
    }
    Ok(token)
}

/// Fuzz entry point: parse arbitrary bytes as a token response; must never panic. A parsed
/// response must survive the storage serde round trip unchanged.
#[doc(hidden)]
pub fn fuzz_token_response(data: &[u8]) {
    let Ok(url) = Url::parse("https://ehr.example.org/token") else {
        return;
    };
    let now = UnixTime::from_secs(1_700_000_000);
    for status in [200, 400] {
        let resp = HttpResponse::new(status, data.to_vec());
        if let Ok(t) = parse_token_response(&resp, &url, now) {
            let json = serde_json::to_vec(&t).expect("a token response serializes");
            match serde_json::from_slice::<TokenResponse>(&json) {
                Ok(back) => {
                    crate::fuzzing::assert_json_approx_eq(
                        &back,
                        &t,
                        "token response storage round trip",
                    );
                    let _ = t.merge_refresh(back);
                }
                Err(e) => assert!(
                    crate::fuzzing::is_depth_limit(&e),
                    "stored form does not deserialize: {e}"
                ),
            }
            let _ = format!("{t:?}");
        }
    }
}
