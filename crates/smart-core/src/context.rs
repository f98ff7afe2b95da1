//! Launch context returned with a token (SMART App Launch §"Launch context arrives with your
//! access_token"): `patient`, `encounter`, `fhirContext`, `need_patient_banner`,
//! `smart_style_url`, `intent`, `tenant` and extension members.
//!
//! Parsing is lenient where real servers deviate: numeric ids become strings, string
//! booleans (`"true"`) are read as booleans, all three published `fhirContext` shapes are
//! accepted, and a malformed item is dropped. Each deviation leaves a warning in
//! [`LaunchContext::warnings`].

use crate::error::{Document, Error, ParseError};
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

/// Launch-context members defined by SMART (spec digest §3.7).
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

fn parse_err(document: Document, message: impl Into<String>) -> Error {
    Error::Parse(ParseError::new(document, message))
}

/// One `fhirContext` item (CTX-02). All three published shapes are accepted:
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

    /// The role, `"launch"` when absent (CTX-02).
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

/// Launch context returned alongside a token (spec digest §3.7, CTX-01..03).
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
    /// `need_patient_banner`: JSON boolean, or the strings `"true"`/`"false"` (B27, warned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub need_patient_banner: Option<bool>,
    /// `smart_style_url`: kept verbatim (no percent-decoding; B27).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smart_style_url: Option<String>,
    /// `intent`: unknown or absent → show the default UI (CTX-03).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// `tenant`: opaque identifier of the launching organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Extension members: URI-named (`"https://ehr.example.org/props/dark-mode"`),
    /// `__`-prefixed (`"__darkMode"`) and vendor members (`location`, `loginDepartment`, …;
    /// B27) — every member that is neither a token-response field, a SMART context field, nor a
    /// known OAuth member (`state`, `client_id`, `iss`, …). Original JSON values.
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

    /// `fhirContext` items with the given role (`"launch"` matches items without a role).
    pub fn items_with_role<'a>(
        &'a self,
        role: &'a str,
    ) -> impl Iterator<Item = &'a FhirContextItem> + 'a {
        self.fhir_context.iter().filter(move |i| i.role() == role)
    }
}

fn context_id(
    members: &Map<String, Value>,
    field: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, Error> {
    match members.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => {
            warnings.push(format!("`{field}` is an empty string; treated as absent"));
            Ok(None)
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => {
            warnings.push(format!("`{field}` is a number; converted to a string id"));
            Ok(Some(n.to_string()))
        }
        Some(_) => Err(parse_err(
            Document::LaunchContext,
            format!("`{field}` must be a string id"),
        )),
    }
}

fn context_string(
    members: &Map<String, Value>,
    field: &str,
    warnings: &mut Vec<String>,
) -> Option<String> {
    match members.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            warnings.push(format!("`{field}` is not a string; ignored"));
            None
        }
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

/// Extract launch context (CTX-01, CTX-02) from the members of a token response (or of any JSON
/// object carrying them, e.g. an introspection response).
///
/// Lenient: a bad `fhirContext` item is dropped with a warning, a non-string
/// `intent`/`tenant`/`smart_style_url` is ignored with a warning, `need_patient_banner` accepts
/// `"true"`/`"false"` strings (B27) and anything else non-boolean becomes `None` with a
/// warning; numeric `patient`/`encounter` ids are converted to strings. Warnings are in
/// [`LaunchContext::warnings`].
///
/// # Errors
/// [`Error::Parse`] (document [`Document::LaunchContext`]) only when `patient` or `encounter`
/// has a shape that cannot be an id (object, array, boolean): guessing there could put the
/// wrong patient in context.
pub fn parse_launch_context(members: &Map<String, Value>) -> Result<LaunchContext, Error> {
    let mut w = Vec::new();
    let patient = context_id(members, "patient", &mut w)?;
    let encounter = context_id(members, "encounter", &mut w)?;
    let mut fhir_context = Vec::new();
    match members.get("fhirContext") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                if let Some(item) = fhir_context_item(i, v, &mut w) {
                    if item.role.is_none()
                        && matches!(item.resource_type(), Some("Patient" | "Encounter"))
                    {
                        w.push(format!(
                            "`fhirContext[{i}]` is a Patient/Encounter with the launch role (not permitted by the spec); kept"
                        ));
                    }
                    fhir_context.push(item);
                }
            }
        }
        Some(_) => w.push("`fhirContext` is not an array; ignored".into()),
    }
    let need_patient_banner = match members.get("need_patient_banner") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => {
            w.push("`need_patient_banner` is the string \"true\"; read as true".into());
            Some(true)
        }
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => {
            w.push("`need_patient_banner` is the string \"false\"; read as false".into());
            Some(false)
        }
        Some(_) => {
            w.push("`need_patient_banner` is not a boolean; ignored".into());
            None
        }
    };
    let smart_style_url = context_string(members, "smart_style_url", &mut w);
    let intent = context_string(members, "intent", &mut w);
    let tenant = context_string(members, "tenant", &mut w);
    let extensions = members
        .iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            !TOKEN_FIELDS.contains(&k)
                && !CONTEXT_FIELDS.contains(&k)
                && !OAUTH_MEMBERS.contains(&k)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(LaunchContext {
        patient,
        encounter,
        fhir_context,
        need_patient_banner,
        smart_style_url,
        intent,
        tenant,
        extensions,
        warnings: w,
    })
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
