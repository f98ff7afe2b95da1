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

use crate::context::{CONTEXT_FIELDS, LaunchContext, TOKEN_FIELDS, parse_launch_context};
use crate::error::{Document, Error, ParseError};
use crate::flow::HttpResponse;
use crate::oauth_error::{clean_text, oauth_error_from_object, parse_oauth_error};
use crate::secret::{AccessToken, IdToken, RefreshToken};
use crate::time::UnixTime;
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
    /// `expires_in` in **seconds**: a JSON number or a numeric string (B13); `None` when
    /// absent or `null`.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// Absolute expiry: the `now` passed to [`parse_token_response`] + `expires_in`. `None`
    /// when the lifetime is unknown (never "already expired").
    #[serde(default)]
    pub expires_at: Option<UnixTime>,
    /// `scope`: granted scopes, space-separated (a JSON array is joined with spaces, B15).
    /// `None` when absent (SMART requires it; a warning is recorded, B16).
    #[serde(default)]
    pub scope: Option<String>,
    /// Whether [`scope`](Self::scope) was filled in from the request by
    /// [`infer_missing_scope`](Self::infer_missing_scope) (B16).
    #[serde(default)]
    pub scope_inferred: bool,
    /// `refresh_token`; `null` and `""` are `None` (`""` with a warning, B19).
    #[serde(default)]
    pub refresh_token: Option<RefreshToken>,
    /// `id_token` (compact JWT, unverified here).
    #[serde(default)]
    pub id_token: Option<IdToken>,
    /// Launch context members (spec digest §3.7).
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
    /// An unknown expiry (`expires_at == None`) is never expired (B13).
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

    /// B16 / RFC 6749 §5.1: when the response had no `scope`, the granted scope is the
    /// requested one. Fills [`scope`](Self::scope) with `requested` and sets
    /// [`scope_inferred`](Self::scope_inferred); does nothing when `scope` is present.
    pub fn infer_missing_scope(&mut self, requested: &str) {
        if self.scope.is_none() {
            self.scope = Some(requested.to_owned());
            self.scope_inferred = true;
        }
    }

    /// Combine this (stored) response with the response to a refresh request (REFR-04, B19):
    /// * access token, `token_type`, `expires_in`/`expires_at` come from `new` — a missing
    ///   `expires_in` gives `expires_at = None` (the old lifetime is never extended);
    /// * `refresh_token`: `new`'s when present (rotation), else the old one is kept;
    /// * `scope`: `new`'s when present, else the old one (the refresh grant has the original
    ///   scopes) with `scope_inferred` set;
    /// * `id_token`, `authorization_details` and each launch-context member: `new`'s when
    ///   present, else the old value; `extra` and context extensions are merged, `new` winning;
    /// * `warnings` are `new`'s.
    #[must_use]
    pub fn merge_refresh(&self, new: TokenResponse) -> TokenResponse {
        let old = self;
        let (scope, scope_inferred) = match new.scope {
            Some(s) => (Some(s), new.scope_inferred),
            None => (old.scope.clone(), old.scope.is_some() || old.scope_inferred),
        };
        let mut extensions = old.context.extensions.clone();
        extensions.extend(new.context.extensions);
        let context = LaunchContext {
            patient: new.context.patient.or_else(|| old.context.patient.clone()),
            encounter: new
                .context
                .encounter
                .or_else(|| old.context.encounter.clone()),
            fhir_context: if new.context.fhir_context.is_empty() {
                old.context.fhir_context.clone()
            } else {
                new.context.fhir_context
            },
            need_patient_banner: new
                .context
                .need_patient_banner
                .or(old.context.need_patient_banner),
            smart_style_url: new
                .context
                .smart_style_url
                .or_else(|| old.context.smart_style_url.clone()),
            intent: new.context.intent.or_else(|| old.context.intent.clone()),
            tenant: new.context.tenant.or_else(|| old.context.tenant.clone()),
            extensions,
            warnings: new.context.warnings,
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
            warnings: new.warnings,
        }
    }
}

fn tr_err(message: impl Into<String>) -> Error {
    parse_err(Document::TokenResponse, message)
}

fn parse_expires_in(v: Option<&Value>) -> Result<Option<u64>, Error> {
    let bad = || tr_err("`expires_in` must be a non-negative number of seconds");
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 =>
                    {
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        Ok(Some(f as u64))
                    }
                    _ => Err(bad()),
                }
            }
        }
        Some(Value::String(s)) => s.trim().parse::<u64>().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

fn parse_scope(v: Option<&Value>, warnings: &mut Vec<String>) -> Result<Option<String>, Error> {
    match v {
        None => {
            warnings.push("`scope` is absent (SMART requires it); the granted scope is the requested one (B16)".into());
            Ok(None)
        }
        Some(Value::Null) => {
            warnings.push("`scope` is null; treated as absent".into());
            Ok(None)
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Array(items)) => {
            let mut parts = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => parts.extend(s.split_ascii_whitespace()),
                    _ => return Err(tr_err("`scope` array must contain only strings")),
                }
            }
            warnings.push("`scope` is a JSON array; joined with spaces (B15)".into());
            Ok(Some(parts.join(" ")))
        }
        Some(_) => Err(tr_err("`scope` must be a string")),
    }
}

fn opt_secret(
    obj: &Map<String, Value>,
    field: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, Error> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => {
            warnings.push(format!("`{field}` is an empty string; treated as absent"));
            Ok(None)
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(tr_err(format!("`{field}` must be a string"))),
    }
}

/// Parse the members of a successful token response (the JSON object), computing `expires_at`
/// from `now`.
///
/// # Errors
/// [`Error::Parse`] ([`Document::TokenResponse`]) when `access_token` is missing, empty or not
/// a string, `token_type` is not a string, `expires_in` is not a non-negative number or numeric
/// string, `scope` is neither a string nor an array of strings, `refresh_token`/`id_token` is
/// not a string; [`Error::Parse`] ([`Document::LaunchContext`]) from [`parse_launch_context`].
pub fn parse_token_members(
    obj: &Map<String, Value>,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    let mut warnings = Vec::new();
    let access_token = match obj.get("access_token") {
        Some(Value::String(s)) if !s.is_empty() => AccessToken::new(s.clone()),
        Some(Value::String(_)) => return Err(tr_err("`access_token` is empty")),
        None | Some(Value::Null) => return Err(tr_err("`access_token` is missing")),
        Some(_) => return Err(tr_err("`access_token` must be a string")),
    };
    let token_type = match obj.get("token_type") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        None | Some(Value::Null) => {
            warnings.push("`token_type` is absent; assuming Bearer".into());
            "Bearer".to_owned()
        }
        Some(Value::String(_)) => {
            warnings.push("`token_type` is empty; assuming Bearer".into());
            "Bearer".to_owned()
        }
        Some(_) => return Err(tr_err("`token_type` must be a string")),
    };
    if !token_type.eq_ignore_ascii_case("bearer") {
        warnings.push("`token_type` is not Bearer".into());
    }
    if matches!(obj.get("expires_in"), Some(Value::String(_))) {
        warnings.push("`expires_in` is a string; parsed as a number (B13)".into());
    }
    let expires_in = parse_expires_in(obj.get("expires_in"))?;
    let expires_at = expires_in.map(|s| now.plus_secs(s));
    let scope = parse_scope(obj.get("scope"), &mut warnings)?;
    let refresh_token = opt_secret(obj, "refresh_token", &mut warnings)?.map(RefreshToken::new);
    let id_token = opt_secret(obj, "id_token", &mut warnings)?.map(IdToken::new);
    let authorization_details = obj
        .get("authorization_details")
        .filter(|v| !v.is_null())
        .cloned();
    let context = parse_launch_context(obj)?;
    warnings.extend(context.warnings.iter().cloned());
    let extra = obj
        .iter()
        .filter(|(k, _)| {
            !TOKEN_FIELDS.contains(&k.as_str()) && !CONTEXT_FIELDS.contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
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
        extra,
        warnings,
    })
}

/// Parse a token-endpoint answer (RFC 6749 §5.1/§5.2; spec digest §3.6, §3.9; RESP-01).
///
/// * 2xx with a JSON object carrying `access_token` → [`TokenResponse`] (`expires_at` = `now` +
///   `expires_in`).
/// * 2xx whose body is an OAuth error document (no `access_token`, an `error` string) →
///   [`Error::OAuth`] (some servers answer errors with 200).
/// * non-2xx with an RFC 6749 §5.2 error body → [`Error::OAuth`] with the status.
/// * non-2xx otherwise → [`Error::Http`] with `url` and the status.
///
/// # Errors
/// As above, plus [`Error::Parse`] ([`Document::TokenResponse`]) for a 2xx body that is not a
/// JSON object or fails [`parse_token_members`]. No error carries body text (only the
/// server's `error`, `error_description`, `error_uri` in an [`OAuthError`](crate::error::OAuthError)).
pub fn parse_token_response(
    response: &HttpResponse,
    url: &Url,
    now: UnixTime,
) -> Result<TokenResponse, Error> {
    if !response.is_success() {
        return Err(match parse_oauth_error(response.status, &response.body) {
            Some(e) => Error::OAuth(e),
            None => Error::Http {
                url: url.to_string(),
                status: response.status,
            },
        });
    }
    let obj = match serde_json::from_slice::<Value>(&response.body) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return Err(tr_err("the response is not a JSON object")),
        Err(e) => {
            return Err(Error::Parse(ParseError::from_json(
                Document::TokenResponse,
                &e,
            )));
        }
    };
    if !obj.contains_key("access_token")
        && let Some(e) = oauth_error_from_object(Some(response.status), &obj)
    {
        return Err(Error::OAuth(e));
    }
    let token = parse_token_members(&obj, now)?;
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
