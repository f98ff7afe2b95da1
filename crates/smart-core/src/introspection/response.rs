//! Reading introspection and revocation responses (RFC 7662 §2.2, RFC 7009 §2.2).

use super::*;

/// An introspection response (RFC 7662 §2.2 plus the SMART members of SMART App Launch
/// §"Token Introspection").
///
/// When [`active`](Self::active) is `false` every other field is empty: RFC 7662 says an
/// inactive answer carries no further information, so nothing else in it is trusted (or
/// kept). Times are seconds since the epoch. `Debug` prints the names of
/// [`extra`](Self::extra) members but not their values.
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Introspection {
    /// `active` (REQUIRED): whether the token is currently valid at this server.
    pub active: bool,
    /// `scope`: space-separated scopes of the token (SMART: SHALL). A JSON array of strings
    /// is joined with spaces, as for token responses. May use SMART v1 forms (`patient/*.read`).
    pub scope: Option<String>,
    /// `client_id` the token was issued to (SMART: SHALL).
    pub client_id: Option<String>,
    /// `username`: human-readable resource-owner identifier.
    pub username: Option<String>,
    /// `token_type`, e.g. `Bearer`.
    pub token_type: Option<String>,
    /// `exp`: expiry time (SMART: SHALL, consistent with `expires_in`).
    pub exp: Option<UnixTime>,
    /// `iat`: issue time.
    pub iat: Option<UnixTime>,
    /// `nbf`: not-before time.
    pub nbf: Option<UnixTime>,
    /// `sub`: subject (SMART: SHALL when an `id_token` was issued).
    pub sub: Option<String>,
    /// `aud`: a string or an array of strings, kept as JSON.
    pub aud: Option<Value>,
    /// `iss`: issuer (SMART: SHALL when an `id_token` was issued).
    pub iss: Option<String>,
    /// `jti`: token identifier.
    pub jti: Option<String>,
    /// `patient` launch context: an id (`"456"`). A reference `"Patient/456"` (the 2.0.0
    /// example's form) has its `Patient/` prefix removed once, with a warning.
    pub patient: Option<String>,
    /// `encounter` launch context, as given.
    pub encounter: Option<String>,
    /// `fhirUser` (SMART: SHOULD when an `id_token` was issued), e.g.
    /// `"https://ehr.example.org/fhir/Patient/123"` or a relative `"Practitioner/abc"`.
    pub fhir_user: Option<crate::types::FhirUser>,
    /// `fhirContext` items (all published shapes; empty when absent).
    pub fhir_context: Vec<FhirContextItem>,
    /// Every other member (e.g. `intent`, `tenant`, `need_patient_banner`, vendor members),
    /// with its original JSON value.
    pub extra: Map<String, Value>,
    /// What was lenient about parsing (e.g. a dropped `fhirContext` item).
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let extra: Vec<&str> = self.extra.keys().map(String::as_str).collect();
        f.debug_struct("Introspection")
            .field("active", &self.active)
            .field("scope", &self.scope)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("token_type", &self.token_type)
            .field("exp", &self.exp)
            .field("iat", &self.iat)
            .field("nbf", &self.nbf)
            .field("sub", &self.sub)
            .field("aud", &self.aud)
            .field("iss", &self.iss)
            .field("jti", &self.jti)
            .field("patient", &self.patient)
            .field("encounter", &self.encounter)
            .field("fhir_user", &self.fhir_user)
            .field("fhir_context", &self.fhir_context)
            .field("extra", &extra)
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl Introspection {
    /// The patient **id**: [`patient`](Self::patient) without a leading `Patient/` (already
    /// removed when parsing; kept for values built by hand). `None` when absent or empty.
    pub fn patient_id(&self) -> Option<&str> {
        let p = self.patient.as_deref()?;
        let id = p.strip_prefix("Patient/").unwrap_or(p);
        (!id.is_empty()).then_some(id)
    }

    /// Whether `scope` lists `scope` exactly (space-separated, case-sensitive).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|s| s.split_ascii_whitespace().any(|g| g == scope))
    }

    /// Whether the token is active and usable at `now` (seconds since the epoch), allowing
    /// [`INTROSPECTION_LEEWAY_SECS`] (60 s) of clock difference with the server: `active`,
    /// `exp` absent or `now < exp + 60`, and `nbf` absent or `nbf <= now + 60`. The arithmetic
    /// saturates; it never overflows.
    pub fn is_active_at(&self, now: UnixTime) -> bool {
        self.active
            && self
                .exp
                .is_none_or(|exp| now < exp.plus_secs(INTROSPECTION_LEEWAY_SECS))
            && self
                .nbf
                .is_none_or(|nbf| nbf <= now.plus_secs(INTROSPECTION_LEEWAY_SECS))
    }
}

/// Members [`Introspection`] models itself (everything else goes to `extra`).
const MODELLED: &[&str] = &[
    "active",
    "scope",
    "client_id",
    "username",
    "token_type",
    "exp",
    "iat",
    "nbf",
    "sub",
    "aud",
    "iss",
    "jti",
    "patient",
    "encounter",
    "fhirUser",
    "fhirContext",
];

fn intro_err(message: impl Into<String>) -> Error {
    Error::Parse(ParseError::new(Document::Introspection, message))
}

/// The leeway, in seconds, that [`Introspection::is_active_at`] allows between the server's
/// clock and the caller's when checking `exp` and `nbf` (one minute, the skew that real
/// deployments show; RFC 7519 §4.1.4 allows "some small leeway").
pub const INTROSPECTION_LEEWAY_SECS: u64 = 60;

/// Read a member with a tolerant reader (which accepts every JSON value).
fn read<'a, T: serde::Deserialize<'a> + Default>(obj: &'a Map<String, Value>, field: &str) -> T {
    obj.get(field)
        .map(|v| T::deserialize(v).unwrap_or_default())
        .unwrap_or_default()
}

/// A time member (`exp`, `iat`, `nbf`): seconds since the epoch, a fraction floored and a
/// numeric string read (with a warning). An unreadable value is an error for `exp` and
/// `nbf` (dropping it would make the token look valid for longer), a warning for `iat`.
fn opt_time(
    obj: &Map<String, Value>,
    field: &str,
    notes: &mut Notes,
) -> Result<Option<UnixTime>, Error> {
    match notes.seconds(field, read::<LSecs>(obj, field), false) {
        Ok(s) => Ok(s.map(UnixTime::from_secs)),
        Err(why) if field == "iat" => {
            notes.push(field, NoteKind::Dropped, format!("is {why}; ignored"));
            Ok(None)
        }
        Err(_) => Err(intro_err(format!(
            "`{field}` must be a non-negative number of seconds"
        ))),
    }
}

/// `scope`: a string, or an array of strings joined with spaces (other items dropped).
fn opt_scope(obj: &Map<String, Value>, notes: &mut Notes) -> Option<String> {
    let mut l = read::<LStrList>(obj, "scope");
    let lone = std::mem::take(&mut l.lone); // a string is the normal form here
    let list = l.into_parts("scope", notes)?;
    if lone {
        return list.into_iter().next();
    }
    let mut parts = Vec::with_capacity(list.len());
    for item in &list {
        parts.extend(item.split_ascii_whitespace());
    }
    Some(parts.join(" "))
}

/// Parse an introspection answer (RFC 7662 §2.2, §2.3; SMART App Launch §"Token
/// Introspection").
///
/// * 2xx with a JSON object whose `active` is `false` → `Introspection { active: false, .. }`
///   with every other field empty (nothing else in an inactive answer is trusted).
/// * 2xx with `active: true` → every member read; `patient`/`encounter`/`fhirContext` as in
///   [`parse_launch_context`].
/// * non-2xx with an RFC 6749 §5.2 error body (e.g. 401 `invalid_client`) → [`Error::OAuth`];
///   otherwise [`Error::Http`] with `url` and the status.
///
/// Tolerant, each with a warning in [`Introspection::warnings`]: one leading byte-order mark
/// is skipped (RFC 8259 §8.1); `active` as the string `"true"`/`"false"` is read as the
/// boolean; `exp`/`iat`/`nbf` as numeric strings or with fractions are read and rounded down;
/// `scope` as an array is joined (non-string items dropped); `aud` items that are not strings
/// are dropped; a string member (`client_id`, `sub`, `iss`, `fhirUser`, …) of another JSON
/// type is dropped; launch context as in [`parse_launch_context`].
///
/// # Errors
/// As above, plus [`Error::Parse`] ([`Document::Introspection`]) when the 2xx body is not a
/// JSON object, `active` is missing or not a boolean, or `exp`/`nbf` is negative or not a
/// number (dropping them would make the token look valid for longer). Errors carry no body
/// text except the server's own OAuth error texts.
pub fn parse_introspection_response(
    resp: &HttpResponse,
    url: &Url,
) -> Result<Introspection, Error> {
    if !resp.is_success() {
        return Err(status_error(resp, url));
    }
    let (body, bom) = strip_bom(&resp.body);
    let obj = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return Err(intro_err("the response is not a JSON object")),
        Err(e) => {
            return Err(Error::Parse(ParseError::from_json(
                Document::Introspection,
                &e,
            )));
        }
    };
    let mut warnings = Vec::new();
    if bom {
        warnings.push(BOM_WARNING.to_owned());
    }
    let active = read::<LBool>(&obj, "active");
    match active.value {
        Seen::Ok(b) => {
            if active.string {
                warnings.push(format!("`active` is the string \"{b}\"; read as {b}"));
            }
            if !b {
                return Ok(Introspection {
                    warnings,
                    ..Introspection::default()
                });
            }
        }
        Seen::Null => return Err(intro_err("`active` is missing")),
        Seen::Wrong(_) => return Err(intro_err("`active` must be a boolean")),
    }
    let context = parse_launch_context(&obj)?;
    let extra = obj
        .iter()
        .filter(|(k, _)| !MODELLED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut notes = Notes::default();
    let aud = match obj.get("aud") {
        None | Some(Value::Null) => None,
        Some(v @ Value::String(_)) => Some(v.clone()),
        Some(Value::Array(items)) => {
            let kept: Vec<Value> = items.iter().filter(|v| v.is_string()).cloned().collect();
            if kept.len() < items.len() {
                notes.push(
                    "aud",
                    NoteKind::Dropped,
                    format!(
                        "has {} item(s) that are not strings; dropped",
                        items.len() - kept.len()
                    ),
                );
            }
            Some(Value::Array(kept))
        }
        Some(other) => {
            notes.wrong_type(
                "aud",
                crate::discovery::json_type(other),
                "a string or an array of strings",
            );
            None
        }
    };
    let exp = opt_time(&obj, "exp", &mut notes)?;
    let iat = opt_time(&obj, "iat", &mut notes)?;
    let nbf = opt_time(&obj, "nbf", &mut notes)?;
    let scope = opt_scope(&obj, &mut notes);
    let mut s = |field: &str| {
        let v = read::<LStr>(&obj, field);
        notes.string(field, v)
    };
    let client_id = s("client_id");
    let username = s("username");
    let token_type = s("token_type");
    let sub = s("sub");
    let iss = s("iss");
    let jti = s("jti");
    let fhir_user = s("fhirUser").map(crate::types::FhirUser::new);
    warnings.extend(notes.0.iter().map(ToString::to_string));
    warnings.extend(context.warnings);
    Ok(Introspection {
        active: true,
        scope,
        client_id,
        username,
        token_type,
        exp,
        iat,
        nbf,
        sub,
        aud,
        iss,
        jti,
        patient: context.patient,
        encounter: context.encounter,
        fhir_user,
        fhir_context: context.fhir_context,
        extra,
        warnings,
    })
}

/// Read a revocation answer (RFC 7009 §2.2): any 2xx → `Ok(())` (the server answers 200 also
/// for a token that was invalid or already revoked, so `Ok` means "this token is not usable
/// any more", not "it was valid"). The body is ignored.
///
/// # Errors
/// Non-2xx with an RFC 6749 §5.2 error body → [`Error::OAuth`] (e.g. 400
/// `unsupported_token_type`, 401 `invalid_client`, 503 `temporarily_unavailable`: retry
/// later, RFC 7009 §2.2.1); otherwise [`Error::Http`] with `url` and the status.
pub fn parse_revocation_response(resp: &HttpResponse, url: &Url) -> Result<(), Error> {
    if resp.is_success() {
        Ok(())
    } else {
        Err(status_error(resp, url))
    }
}

fn status_error(resp: &HttpResponse, url: &Url) -> Error {
    match parse_oauth_error(resp.status, &resp.body) {
        Some(e) => Error::OAuth(e),
        None => Error::Http {
            url: url.to_string(),
            status: resp.status,
        },
    }
}
