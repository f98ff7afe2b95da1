//! Parsing `.well-known/smart-configuration` (SMART App Launch §"Metadata").
//!
//! The body is read in one pass by a typed visitor whose members use the tolerant readers of
//! [`crate::lenient`]: a member of the wrong JSON type is normalised or dropped with a
//! warning instead of failing the document, and unknown members are kept in
//! [`SmartConfiguration::extra`].

use std::fmt;

use super::members::Ctx;
use super::*;
use crate::error::{DiscoveryError, DiscoveryErrorKind, Error};
use crate::lenient::{self, Key, KeySeed, LStr, LStrList, Notes};
use crate::types::FhirBaseUrl;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use url::Url;

/// A top-level JSON value read only as far as needed: an object's members, or "something else".
pub(super) enum Top<T> {
    Object(T),
    NotObject,
}

/// Read `body` (after one optional BOM) as a JSON object with the visitor `V`.
///
/// # Errors
/// [`DiscoveryErrorKind::NotJson`] for a body that is not JSON, [`DiscoveryErrorKind::Invalid`]
/// for JSON that is not an object.
pub(super) fn read_object<T, V>(body: &[u8], url: &Url, visitor: V) -> Result<(T, bool), Error>
where
    V: for<'de> Visitor<'de, Value = Top<T>>,
{
    let fail = |kind| {
        Error::Discovery(DiscoveryError {
            url: url.to_string(),
            status: None,
            kind,
        })
    };
    let (body, bom) = lenient::strip_bom(body);
    let mut de = serde_json::Deserializer::from_slice(body);
    let top = de
        .deserialize_any(visitor)
        .and_then(|t| de.end().map(|()| t))
        .map_err(|_| fail(DiscoveryErrorKind::NotJson))?;
    match top {
        Top::Object(t) => Ok((t, bom)),
        Top::NotObject => Err(fail(DiscoveryErrorKind::Invalid(
            "the document is not a JSON object".into(),
        ))),
    }
}

/// Implements the non-object `visit_*` methods of a top-level visitor as [`Top::NotObject`].
macro_rules! not_object {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Top::NotObject)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Top::NotObject)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Top::NotObject)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Top::NotObject)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Top::NotObject)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Top::NotObject)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Top::NotObject)
        }
    };
}

/// The members of a smart-configuration, as read.
#[derive(Default)]
struct Raw {
    issuer: LStr,
    jwks_uri: LStr,
    authorization_endpoint: LStr,
    token_endpoint: LStr,
    registration_endpoint: LStr,
    smart_app_state_endpoint: LStr,
    user_access_brand_bundle: LStr,
    management_endpoint: LStr,
    introspection_endpoint: LStr,
    revocation_endpoint: LStr,
    auth_methods: Option<LStrList>,
    auth_algs: Option<LStrList>,
    grants: Option<LStrList>,
    scopes: Option<LStrList>,
    response_types: Option<LStrList>,
    capabilities: Option<LStrList>,
    pkce: Option<LStrList>,
    brand_identifier: Option<Value>,
    associated: Option<Value>,
    extra: Map<String, Value>,
}

#[derive(Clone, Copy)]
enum K {
    Issuer,
    JwksUri,
    Authorization,
    Token,
    AuthMethods,
    AuthAlgs,
    Grants,
    Registration,
    AppState,
    Associated,
    BrandBundle,
    BrandIdentifier,
    Scopes,
    ResponseTypes,
    Management,
    Introspection,
    Revocation,
    Capabilities,
    Pkce,
}

fn known(name: &str) -> Option<K> {
    Some(match name {
        "issuer" => K::Issuer,
        "jwks_uri" => K::JwksUri,
        "authorization_endpoint" => K::Authorization,
        "token_endpoint" => K::Token,
        "token_endpoint_auth_methods_supported" => K::AuthMethods,
        "token_endpoint_auth_signing_alg_values_supported" => K::AuthAlgs,
        "grant_types_supported" => K::Grants,
        "registration_endpoint" => K::Registration,
        "smart_app_state_endpoint" => K::AppState,
        "associated_endpoints" => K::Associated,
        "user_access_brand_bundle" => K::BrandBundle,
        "user_access_brand_identifier" => K::BrandIdentifier,
        "scopes_supported" => K::Scopes,
        "response_types_supported" => K::ResponseTypes,
        "management_endpoint" => K::Management,
        "introspection_endpoint" => K::Introspection,
        "revocation_endpoint" => K::Revocation,
        "capabilities" => K::Capabilities,
        "code_challenge_methods_supported" => K::Pkce,
        _ => return None,
    })
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Top<Raw>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    not_object!();

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<Raw>, A::Error> {
        let mut r = Raw::default();
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
                K::Issuer => r.issuer = map.next_value()?,
                K::JwksUri => r.jwks_uri = map.next_value()?,
                K::Authorization => r.authorization_endpoint = map.next_value()?,
                K::Token => r.token_endpoint = map.next_value()?,
                K::Registration => r.registration_endpoint = map.next_value()?,
                K::AppState => r.smart_app_state_endpoint = map.next_value()?,
                K::BrandBundle => r.user_access_brand_bundle = map.next_value()?,
                K::Management => r.management_endpoint = map.next_value()?,
                K::Introspection => r.introspection_endpoint = map.next_value()?,
                K::Revocation => r.revocation_endpoint = map.next_value()?,
                K::AuthMethods => r.auth_methods = Some(map.next_value()?),
                K::AuthAlgs => r.auth_algs = Some(map.next_value()?),
                K::Grants => r.grants = Some(map.next_value()?),
                K::Scopes => r.scopes = Some(map.next_value()?),
                K::ResponseTypes => r.response_types = Some(map.next_value()?),
                K::Capabilities => r.capabilities = Some(map.next_value()?),
                K::Pkce => r.pkce = Some(map.next_value()?),
                K::BrandIdentifier => r.brand_identifier = Some(map.next_value()?),
                K::Associated => r.associated = Some(map.next_value()?),
            }
        }
        Ok(Top::Object(r))
    }
}

/// `user_access_brand_identifier`: a FHIR Identifier object (2.2.0); its string members are
/// read, anything else is dropped with a warning.
fn brand_identifier(v: Value, notes: &mut Notes) -> Option<Identifier> {
    const FIELD: &str = "user_access_brand_identifier";
    let m = match v {
        Value::Null => return None,
        Value::Object(m) => m,
        other => {
            notes.wrong_type(FIELD, json_type(&other), "a FHIR Identifier object");
            return None;
        }
    };
    let mut s = |k: &str| match m.get(k) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            notes.wrong_type(&format!("{FIELD}.{k}"), json_type(other), "a string");
            None
        }
    };
    Some(Identifier {
        system: s("system"),
        value: s("value"),
    })
}

/// The JSON type of `v`, as the readers name it in warnings.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `associated_endpoints`: `[{url, capabilities[]}]` (2.2.0, experimental). A lone object is
/// read as a one-element list; an item without a usable `url` is dropped with a warning.
fn associated_endpoints(cx: &mut Ctx<'_>, v: Value) -> Vec<AssociatedEndpoint> {
    const FIELD: &str = "associated_endpoints";
    let items = match v {
        Value::Null => return Vec::new(),
        Value::Array(items) => items,
        Value::Object(o) => {
            cx.warn(
                FIELD,
                WarningKind::WrongType,
                "`associated_endpoints` is a single object, not an array; read as a one-element list",
            );
            vec![Value::Object(o)]
        }
        other => {
            cx.warn(
                FIELD,
                WarningKind::WrongType,
                format!("`{FIELD}` is {}, not an array; ignored", json_type(&other)),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let field = format!("{FIELD}[{i}]");
        let Value::Object(m) = item else {
            cx.warn(
                &field,
                WarningKind::WrongType,
                format!("`{field}` is {}, not an object; dropped", json_type(&item)),
            );
            continue;
        };
        let url_field = format!("{field}.url");
        let url = m
            .get("url")
            .map(LStr::deserialize)
            .transpose()
            .ok()
            .flatten()
            .unwrap_or_default();
        let Some(url) = cx.opt_endpoint(&url_field, url) else {
            cx.warn(
                &field,
                WarningKind::WrongType,
                format!("`{field}` has no usable `url`; dropped"),
            );
            continue;
        };
        let cap_field = format!("{field}.capabilities");
        let mut notes = Notes::default();
        let caps = m
            .get("capabilities")
            .and_then(|c| LStrList::deserialize(c).ok())
            .and_then(|l| l.into_parts(&cap_field, &mut notes))
            .unwrap_or_default();
        cx.notes(notes);
        let capabilities = cx.capabilities(&cap_field, caps);
        out.push(AssociatedEndpoint { url, capabilities });
    }
    out
}

/// Parse a `.well-known/smart-configuration` body (SMART App Launch §"Metadata"; RFC 8414
/// member names).
///
/// `base` is the FHIR base URL: relative endpoints are resolved against it **as given** by
/// RFC 3986 §5.2, as the IG's conformance page asks (`auth/token` against
/// `https://ehr.example.org/fhir/r4` is `https://ehr.example.org/fhir/auth/token`), with a
/// [`RelativeUrlResolved`](WarningKind::RelativeUrlResolved) warning. `url` is the URL the
/// body was fetched from (used in errors and [`Discovered::url`]).
///
/// Tolerant (each with a warning naming the member): one leading UTF-8 byte-order mark is
/// skipped (RFC 8259 §8.1); a list member given as a single string is a one-element list;
/// list items that are not strings are dropped; an optional member of the wrong JSON type,
/// or an optional endpoint that is not a valid URL, is dropped. Every endpoint keeps its
/// advertised text next to the parsed URL ([`Endpoint`](crate::types::Endpoint)).
///
/// # Errors
/// [`Error::Discovery`] with kind
/// * [`NotJson`](DiscoveryErrorKind::NotJson) — the body is not JSON (e.g. an HTML page);
/// * [`Invalid`](DiscoveryErrorKind::Invalid) — not a JSON object, or `token_endpoint` is not
///   a string or not a valid URL reference (the message names the member);
/// * [`MissingField("token_endpoint")`](DiscoveryErrorKind::MissingField) — absent, `null` or
///   empty.
///
/// Never fails for PKCE reasons (see the [module docs](crate::discovery)).
pub fn parse_smart_configuration(
    body: &[u8],
    base: &FhirBaseUrl,
    url: &Url,
) -> Result<Discovered, Error> {
    let (raw, bom) = read_object(body, url, RawVisitor)?;
    let mut cx = Ctx::new(base, url);
    if bom {
        cx.warn("(body)", WarningKind::ByteOrderMark, lenient::BOM_WARNING);
    }

    let token_endpoint = match raw.token_endpoint.0 {
        lenient::Seen::Ok(s) if !s.trim().is_empty() => cx.endpoint("token_endpoint", s.trim())?,
        lenient::Seen::Ok(_) => {
            cx.warn(
                "token_endpoint",
                WarningKind::Other,
                "empty string treated as absent",
            );
            return Err(cx.err(DiscoveryErrorKind::MissingField("token_endpoint")));
        }
        lenient::Seen::Null => {
            return Err(cx.err(DiscoveryErrorKind::MissingField("token_endpoint")));
        }
        lenient::Seen::Wrong(_) => return Err(cx.invalid("`token_endpoint` must be a URL string")),
    };
    let mut config = SmartConfiguration::new(token_endpoint);
    let mut notes = Notes::default();
    config.issuer = notes.string("issuer", raw.issuer);
    cx.notes(std::mem::take(&mut notes));
    config.jwks_uri = cx.opt_endpoint("jwks_uri", raw.jwks_uri);
    config.authorization_endpoint =
        cx.opt_endpoint("authorization_endpoint", raw.authorization_endpoint);
    config.registration_endpoint =
        cx.opt_endpoint("registration_endpoint", raw.registration_endpoint);
    config.smart_app_state_endpoint =
        cx.opt_endpoint("smart_app_state_endpoint", raw.smart_app_state_endpoint);
    config.user_access_brand_bundle =
        cx.opt_endpoint("user_access_brand_bundle", raw.user_access_brand_bundle);
    config.management_endpoint = cx.opt_endpoint("management_endpoint", raw.management_endpoint);
    config.introspection_endpoint =
        cx.opt_endpoint("introspection_endpoint", raw.introspection_endpoint);
    config.revocation_endpoint = cx.opt_endpoint("revocation_endpoint", raw.revocation_endpoint);

    let mut list = |field: &str, l: Option<LStrList>| -> Option<Vec<String>> {
        l?.into_parts(field, &mut notes)
    };
    let methods = list("token_endpoint_auth_methods_supported", raw.auth_methods);
    let algs = list(
        "token_endpoint_auth_signing_alg_values_supported",
        raw.auth_algs,
    );
    let grants = list("grant_types_supported", raw.grants);
    let scopes = list("scopes_supported", raw.scopes);
    let responses_present = raw.response_types.is_some();
    let responses = list("response_types_supported", raw.response_types);
    let caps = list("capabilities", raw.capabilities);
    let pkce = list("code_challenge_methods_supported", raw.pkce);
    config.user_access_brand_identifier = raw
        .brand_identifier
        .and_then(|v| brand_identifier(v, &mut notes));
    cx.notes(notes);
    if let Some(v) = raw.associated {
        config.associated_endpoints = associated_endpoints(&mut cx, v);
    }

    config.token_endpoint_auth_signing_alg_values_supported = algs.unwrap_or_default();
    config.response_types_supported = responses.unwrap_or_default();

    match grants {
        Some(g) => config.grant_types_supported = g,
        None => cx.warn(
            "grant_types_supported",
            WarningKind::MissingRequired,
            "REQUIRED field absent",
        ),
    }
    match caps {
        Some(c) => config.capabilities = cx.capabilities("capabilities", c),
        None => cx.warn(
            "capabilities",
            WarningKind::MissingRequired,
            "REQUIRED field absent; no SMART capability is advertised",
        ),
    }
    match pkce {
        Some(p) => {
            if !p.iter().any(|m| m == "S256") {
                cx.warn(
                    "code_challenge_methods_supported",
                    WarningKind::Pkce,
                    "`S256` is not listed; the library still uses S256 and never `plain`",
                );
            }
            if p.iter().any(|m| m == "plain") {
                cx.warn(
                    "code_challenge_methods_supported",
                    WarningKind::Pkce,
                    "`plain` is listed (forbidden by SMART 2.x); it is never used",
                );
            }
            config.code_challenge_methods_supported = p;
        }
        None => cx.warn(
            "code_challenge_methods_supported",
            WarningKind::MissingRequired,
            "REQUIRED field absent; PKCE with S256 is still used",
        ),
    }
    if let Some(m) = methods {
        if !m.is_empty() && !m.iter().any(|x| x == "private_key_jwt") {
            cx.warn(
                "token_endpoint_auth_methods_supported",
                WarningKind::AuthMethod,
                "`private_key_jwt` is not listed; asymmetric clients may still try",
            );
        }
        config.token_endpoint_auth_methods_supported = m;
    }
    match scopes {
        Some(s) => config.scopes_supported = s,
        None => cx.warn(
            "scopes_supported",
            WarningKind::MissingRecommended,
            "RECOMMENDED field absent",
        ),
    }
    if config.response_types_supported.is_empty() && !responses_present {
        cx.warn(
            "response_types_supported",
            WarningKind::MissingRecommended,
            "RECOMMENDED field absent",
        );
    }
    for (field, present) in [
        ("management_endpoint", config.management_endpoint.is_some()),
        (
            "introspection_endpoint",
            config.introspection_endpoint.is_some(),
        ),
        ("revocation_endpoint", config.revocation_endpoint.is_some()),
    ] {
        if !present {
            cx.warn(
                field,
                WarningKind::MissingRecommended,
                "RECOMMENDED field absent",
            );
        }
    }
    let launch = config.has_capability(&Capability::LaunchEhr)
        || config.has_capability(&Capability::LaunchStandalone);
    if launch && config.authorization_endpoint.is_none() {
        cx.warn(
            "authorization_endpoint",
            WarningKind::MissingRequired,
            "required with `launch-ehr`/`launch-standalone` but absent",
        );
    }
    if config.has_capability(&Capability::SsoOpenidConnect) {
        for (field, present) in [
            ("issuer", config.issuer.is_some()),
            ("jwks_uri", config.jwks_uri.is_some()),
        ] {
            if !present {
                cx.warn(
                    field,
                    WarningKind::MissingRequired,
                    "required with `sso-openid-connect` but absent",
                );
            }
        }
    }

    config.extra = raw.extra;

    Ok(Discovered {
        config,
        warnings: cx.warnings,
        source: ConfigSource::WellKnown,
        url: url.clone(),
    })
}

/// Read a body (after one optional BOM) as a JSON object into a [`Map`], for the
/// CapabilityStatement fallback.
pub(super) fn parse_json_object(
    body: &[u8],
    url: &Url,
) -> Result<(Map<String, Value>, bool), Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Top<Map<String, Value>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        not_object!();
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut m = Map::new();
            while let Some((k, v)) = map.next_entry::<String, Value>()? {
                m.insert(k, v);
            }
            Ok(Top::Object(m))
        }
    }
    read_object(body, url, V)
}
