//! Launch context returned with a token (SMART App Launch §"Launch context arrives with your
//! access_token"): `patient`, `encounter`, `fhirContext`, `need_patient_banner`,
//! `smart_style_url`, `intent`, `tenant` and extension members.
//!
//! Parsing is lenient where real servers deviate: numeric ids become strings, string
//! booleans (`"true"`) are read as booleans, all three published `fhirContext` shapes are
//! accepted, and a malformed item is dropped. Each deviation leaves a warning in
//! [`LaunchContext::warnings`].

use crate::error::Error;
use crate::lenient::{LBool, LId, LStr, Notes, Seen};
use serde::Deserialize;
use serde::de::MapAccess;
use serde_json::{Map, Value};

/// Members of a token response that [`TokenResponse`] models itself (RFC 6749 §5.1, SMART).
pub(crate) const TOKEN_FIELDS: &[&str] = &[
    "access_token",
    "token_type",
    "expires_in",
    "scope",
    "refresh_token",
    "id_token",
    "authorization_details",
];

/// Launch-context members defined by SMART (SMART App Launch §"Scopes and Launch Context",
/// "Launch context arrives with your access_token").
pub(crate) const CONTEXT_FIELDS: &[&str] = &[
    "patient",
    "encounter",
    "fhirContext",
    "need_patient_banner",
    "smart_style_url",
    "intent",
    "tenant",
];

/// Well-known OAuth/OIDC response members that are not launch-context extensions.
pub(crate) const OAUTH_MEMBERS: &[&str] = &[
    "state",
    "issued_token_type",
    "client_id",
    "iss",
    "error",
    "error_description",
    "error_uri",
];

/// One `fhirContext` item (SMART App Launch §"Scopes and Launch Context", "fhirContext"). All
/// three published shapes are accepted:
/// * 2.0.0: a string `"DiagnosticReport/123"` → `reference` only;
/// * 2.1.0: `{ "reference": "List/123", "role": "https://…" }`;
/// * 2.2.0: at least one of `reference`, `canonical` (may carry `|version`), `identifier` (a
///   FHIR Identifier object, kept as JSON), plus optional `type` and `role`.
#[derive(Clone, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct FhirContextItem {
    /// A relative FHIR reference, e.g. `"Appointment/123"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// A canonical URL, e.g. `"https://example.org/Questionnaire/123/|v2023-05-03"` (2.2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical: Option<String>,
    /// A FHIR Identifier object (2.2.0), kept verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Value>,
    /// The resource type, e.g. `"Questionnaire"` (2.2.0; RECOMMENDED with canonical/identifier).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// The role URI (2.1.0+). Absent means `"launch"`; see [`role`](Self::role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Any other members of the item, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl FhirContextItem {
    /// An item with only `reference` (the 2.0.0 string shape).
    pub fn from_reference(reference: impl Into<String>) -> Self {
        Self {
            reference: Some(reference.into()),
            ..Self::default()
        }
    }

    /// The role, `"launch"` when absent (as the IG defines it).
    pub fn role(&self) -> &str {
        self.role.as_deref().unwrap_or("launch")
    }

    /// The resource type: `type` if given, else the part of `reference` before the first `/`.
    pub fn resource_type(&self) -> Option<&str> {
        self.r#type.as_deref().or_else(|| {
            self.reference
                .as_deref()
                .and_then(|r| r.split('/').next())
                .filter(|t| !t.is_empty())
        })
    }
}

/// Launch context returned alongside a token (SMART App Launch §"Scopes and Launch Context",
/// "Launch context arrives with your access_token").
///
/// `Debug` prints the names of [`extensions`](Self::extensions) but not their values (vendor
/// members may carry credentials).
#[derive(Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct LaunchContext {
    /// `patient`: a Patient **id** (not a reference): `"123"` means `[base]/Patient/123`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// `encounter`: an Encounter id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encounter: Option<String>,
    /// `fhirContext`: additional context items (empty when absent).
    #[serde(rename = "fhirContext", default, skip_serializing_if = "Vec::is_empty")]
    pub fhir_context: Vec<FhirContextItem>,
    /// `need_patient_banner`: JSON boolean, or the strings `"true"`/`"false"` (some servers
    /// send a string; it is accepted with a warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub need_patient_banner: Option<bool>,
    /// `smart_style_url`: kept verbatim (no percent-decoding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smart_style_url: Option<String>,
    /// `intent`: unknown or absent → show the default UI (the IG's advice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// `tenant`: opaque identifier of the launching organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Extension members: URI-named (`"https://ehr.example.org/props/dark-mode"`), `__`-prefixed
    /// (`"__darkMode"`) and vendor members (`location`, `loginDepartment`, …, as some EHRs send) —
    /// every member that is neither a token-response field, a SMART context field, nor a known
    /// OAuth member (`state`, `client_id`, `iss`, …). Original JSON values.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extensions: Map<String, Value>,
    /// What was lenient about parsing (e.g. a string `need_patient_banner`, a dropped
    /// `fhirContext` item).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for LaunchContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let extensions: Vec<&str> = self.extensions.keys().map(String::as_str).collect();
        f.debug_struct("LaunchContext")
            .field("patient", &self.patient)
            .field("encounter", &self.encounter)
            .field("fhir_context", &self.fhir_context)
            .field("need_patient_banner", &self.need_patient_banner)
            .field("smart_style_url", &self.smart_style_url)
            .field("intent", &self.intent)
            .field("tenant", &self.tenant)
            .field("extensions", &extensions)
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl LaunchContext {
    /// Whether no launch context at all was given.
    pub fn is_empty(&self) -> bool {
        self.patient.is_none()
            && self.encounter.is_none()
            && self.fhir_context.is_empty()
            && self.need_patient_banner.is_none()
            && self.smart_style_url.is_none()
            && self.intent.is_none()
            && self.tenant.is_none()
            && self.extensions.is_empty()
    }

    /// Whether any SMART launch-context member is set (`patient`, `encounter`, `fhirContext`,
    /// `need_patient_banner`, `smart_style_url`, `intent`, `tenant`; extensions not counted).
    pub fn has_smart_members(&self) -> bool {
        self.patient.is_some()
            || self.encounter.is_some()
            || !self.fhir_context.is_empty()
            || self.need_patient_banner.is_some()
            || self.smart_style_url.is_some()
            || self.intent.is_some()
            || self.tenant.is_some()
    }

    /// The names of the SMART members whose value differs between `self` and `new` (added,
    /// changed or removed), in the order `patient`, `encounter`, `fhirContext`,
    /// `need_patient_banner`, `smart_style_url`, `intent`, `tenant`. Names only: values are
    /// never put into warnings.
    pub fn changed_members(&self, new: &LaunchContext) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut check = |name, differs: bool| {
            if differs {
                out.push(name);
            }
        };
        check("patient", self.patient != new.patient);
        check("encounter", self.encounter != new.encounter);
        check("fhirContext", self.fhir_context != new.fhir_context);
        check(
            "need_patient_banner",
            self.need_patient_banner != new.need_patient_banner,
        );
        check(
            "smart_style_url",
            self.smart_style_url != new.smart_style_url,
        );
        check("intent", self.intent != new.intent);
        check("tenant", self.tenant != new.tenant);
        out
    }

    /// `fhirContext` items with the given role (`"launch"` matches items without a role).
    pub fn items_with_role<'a>(
        &'a self,
        role: &'a str,
    ) -> impl Iterator<Item = &'a FhirContextItem> + 'a {
        self.fhir_context.iter().filter(move |i| i.role() == role)
    }
}

fn fhir_context_item(i: usize, v: &Value, warnings: &mut Vec<String>) -> Option<FhirContextItem> {
    let obj = match v {
        Value::String(s) if !s.is_empty() => {
            return Some(FhirContextItem::from_reference(s.clone()));
        }
        Value::Object(o) => o,
        _ => {
            warnings.push(format!(
                "`fhirContext[{i}]` is neither a reference string nor an object; dropped"
            ));
            return None;
        }
    };
    let mut item = FhirContextItem::default();
    for (k, v) in obj {
        let slot = match k.as_str() {
            "reference" => &mut item.reference,
            "canonical" => &mut item.canonical,
            "type" => &mut item.r#type,
            "role" => &mut item.role,
            "identifier" => {
                match v {
                    Value::Object(_) => item.identifier = Some(v.clone()),
                    Value::Null => {}
                    _ => warnings.push(format!(
                        "`fhirContext[{i}].identifier` is not an object; ignored"
                    )),
                }
                continue;
            }
            _ => {
                item.extra.insert(k.clone(), v.clone());
                continue;
            }
        };
        match v {
            Value::String(s) if !s.is_empty() => *slot = Some(s.clone()),
            Value::Null => {}
            Value::String(_) => warnings.push(format!(
                "`fhirContext[{i}].{k}` is an empty string; ignored"
            )),
            _ => warnings.push(format!("`fhirContext[{i}].{k}` is not a string; ignored")),
        }
    }
    if item.reference.is_none() && item.canonical.is_none() && item.identifier.is_none() {
        warnings.push(format!(
            "`fhirContext[{i}]` has none of `reference`, `canonical`, `identifier`; dropped"
        ));
        return None;
    }
    Some(item)
}

/// A launch-context member name.
#[derive(Clone, Copy, Debug)]
pub(crate) enum CtxKey {
    Patient,
    Encounter,
    FhirContext,
    NeedPatientBanner,
    SmartStyleUrl,
    Intent,
    Tenant,
}

/// The launch-context member named `name`, if it is one.
pub(crate) fn ctx_key(name: &str) -> Option<CtxKey> {
    Some(match name {
        "patient" => CtxKey::Patient,
        "encounter" => CtxKey::Encounter,
        "fhirContext" => CtxKey::FhirContext,
        "need_patient_banner" => CtxKey::NeedPatientBanner,
        "smart_style_url" => CtxKey::SmartStyleUrl,
        "intent" => CtxKey::Intent,
        "tenant" => CtxKey::Tenant,
        _ => return None,
    })
}

/// Launch-context members as read by the tolerant readers, before normalisation.
#[derive(Debug, Default)]
pub(crate) struct ContextRaw {
    patient: LId,
    encounter: LId,
    fhir_context: Option<Value>,
    need_patient_banner: LBool,
    smart_style_url: LStr,
    intent: LStr,
    tenant: LStr,
}

impl ContextRaw {
    /// Read the value of member `k` from a streaming map.
    pub(crate) fn read_next<'de, A: MapAccess<'de>>(
        &mut self,
        k: CtxKey,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match k {
            CtxKey::Patient => self.patient = map.next_value()?,
            CtxKey::Encounter => self.encounter = map.next_value()?,
            CtxKey::FhirContext => self.fhir_context = Some(map.next_value()?),
            CtxKey::NeedPatientBanner => self.need_patient_banner = map.next_value()?,
            CtxKey::SmartStyleUrl => self.smart_style_url = map.next_value()?,
            CtxKey::Intent => self.intent = map.next_value()?,
            CtxKey::Tenant => self.tenant = map.next_value()?,
        }
        Ok(())
    }

    /// Read member `k` from a JSON value (the tolerant readers accept any value).
    fn read_value(&mut self, k: CtxKey, v: &Value) {
        fn read<'a, T: Deserialize<'a> + Default>(v: &'a Value) -> T {
            T::deserialize(v).unwrap_or_default()
        }
        match k {
            CtxKey::Patient => self.patient = read(v),
            CtxKey::Encounter => self.encounter = read(v),
            CtxKey::FhirContext => self.fhir_context = Some(v.clone()),
            CtxKey::NeedPatientBanner => self.need_patient_banner = read(v),
            CtxKey::SmartStyleUrl => self.smart_style_url = read(v),
            CtxKey::Intent => self.intent = read(v),
            CtxKey::Tenant => self.tenant = read(v),
        }
    }

    /// Normalise into a [`LaunchContext`] with `extensions`, warnings in `w`.
    pub(crate) fn finish(
        self,
        extensions: Map<String, Value>,
        w: &mut Vec<String>,
    ) -> LaunchContext {
        let patient = context_id(self.patient, "patient", "Patient/", w);
        let encounter = context_id(self.encounter, "encounter", "Encounter/", w);
        let fhir_context = self
            .fhir_context
            .map(|v| fhir_context(v, w))
            .unwrap_or_default();
        let need_patient_banner = match self.need_patient_banner.value {
            Seen::Null => None,
            Seen::Ok(b) => {
                if self.need_patient_banner.string {
                    w.push(format!(
                        "`need_patient_banner` is the string \"{b}\"; read as {b}"
                    ));
                }
                Some(b)
            }
            Seen::Wrong(t) => {
                w.push(format!(
                    "`need_patient_banner` is {t}, not a boolean; ignored"
                ));
                None
            }
        };
        let mut notes = Notes::default();
        let smart_style_url = notes.string("smart_style_url", self.smart_style_url);
        let intent = notes.string("intent", self.intent);
        let tenant = notes.string("tenant", self.tenant);
        w.extend(notes.0.iter().map(ToString::to_string));
        LaunchContext {
            patient,
            encounter,
            fhir_context,
            need_patient_banner,
            smart_style_url,
            intent,
            tenant,
            extensions,
            warnings: Vec::new(),
        }
    }
}

/// `patient` / `encounter`: a string id; a number is converted to its text; one leading
/// `Patient/` (`Encounter/`) is stripped (the 2.0.0 example sent a reference); an empty value
/// or a value of another type is dropped. Each with a warning.
fn context_id(v: LId, field: &str, prefix: &str, w: &mut Vec<String>) -> Option<String> {
    let s = match v.value {
        Seen::Null => return None,
        Seen::Wrong(t) => {
            w.push(format!("`{field}` is {t}, not a string id; ignored"));
            return None;
        }
        Seen::Ok(s) => s,
    };
    if v.number {
        w.push(format!("`{field}` is a number; converted to a string id"));
    }
    let s = match s.strip_prefix(prefix) {
        Some(id) => {
            w.push(format!(
                "`{field}` is a reference `{prefix}…`, not an id; the prefix was removed"
            ));
            id.to_owned()
        }
        None => s,
    };
    if s.is_empty() {
        w.push(format!("`{field}` is an empty string; treated as absent"));
        return None;
    }
    Some(s)
}

/// `fhirContext`: an array of items (a single item is read as a one-element list).
fn fhir_context(v: Value, w: &mut Vec<String>) -> Vec<FhirContextItem> {
    let items = match v {
        Value::Null => return Vec::new(),
        Value::Array(items) => items,
        one @ (Value::Object(_) | Value::String(_)) => {
            w.push(
                "`fhirContext` is a single item, not an array; read as a one-element list".into(),
            );
            vec![one]
        }
        _ => {
            w.push("`fhirContext` is not an array; ignored".into());
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        if let Some(item) = fhir_context_item(i, v, w) {
            if item.role.is_none() && matches!(item.resource_type(), Some("Patient" | "Encounter"))
            {
                w.push(format!(
                    "`fhirContext[{i}]` is a Patient/Encounter with the launch role (not permitted by the spec); kept"
                ));
            }
            out.push(item);
        }
    }
    out
}

/// Whether `k` is an extension member: neither a token-response field, a SMART context field,
/// nor a known OAuth member.
pub(crate) fn is_extension(k: &str) -> bool {
    !TOKEN_FIELDS.contains(&k) && !CONTEXT_FIELDS.contains(&k) && !OAUTH_MEMBERS.contains(&k)
}

/// Extract launch context (SMART App Launch §"Launch context arrives with your
/// access_token") from the members of a token response (or of any JSON object carrying them,
/// e.g. an introspection response).
///
/// Tolerant, each with a warning in [`LaunchContext::warnings`]: numeric `patient`/`encounter`
/// ids become strings; one leading `Patient/` (`Encounter/`) is removed from `patient`
/// (`encounter`), which is an id, not a reference; a `patient`/`encounter` of another JSON type
/// (object, array, boolean) is dropped — never guessed at; `need_patient_banner` accepts the
/// strings `"true"`/`"false"`, anything else non-boolean becomes `None`; a single
/// `fhirContext` item is read as a one-element list and a bad item is dropped; a non-string
/// `intent`/`tenant`/`smart_style_url` is ignored.
///
/// # Errors
/// None today (every member is read tolerantly); the `Result` is kept for compatibility.
pub fn parse_launch_context(members: &Map<String, Value>) -> Result<LaunchContext, Error> {
    let mut raw = ContextRaw::default();
    let mut extensions = Map::new();
    for (k, v) in members {
        match ctx_key(k) {
            Some(key) => raw.read_value(key, v),
            None if is_extension(k) => {
                extensions.insert(k.clone(), v.clone());
            }
            None => {}
        }
    }
    let mut w = Vec::new();
    let mut ctx = raw.finish(extensions, &mut w);
    ctx.warnings = w;
    Ok(ctx)
}

/// Fuzz entry point: parse arbitrary bytes as launch context members; must never panic.
#[doc(hidden)]
pub fn fuzz_launch_context(data: &[u8]) {
    let Ok(Value::Object(members)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(ctx) = parse_launch_context(&members) {
        let json = serde_json::to_vec(&ctx).expect("a launch context serializes");
        match serde_json::from_slice::<LaunchContext>(&json) {
            Ok(back) => crate::fuzzing::assert_json_approx_eq(
                &back,
                &ctx,
                "launch context storage round trip",
            ),
            Err(e) => assert!(
                crate::fuzzing::is_depth_limit(&e),
                "stored form does not deserialize: {e}"
            ),
        }
    }
}
