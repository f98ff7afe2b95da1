//! Plain-words descriptions of scopes, for a CLI (`smart scope explain`) or logs.

use std::fmt;

use super::{LaunchScope, ResourceScope, ResourceType, Scope, ScopeContext, ScopeSet, ScopeSyntax};

use super::{OIDC_SCOPE_URI_PREFIX as OIDC_URI_PREFIX, SMART_SCOPE_URI_PREFIX as SMART_URI_PREFIX};

/// A scope explained in plain words; `Display` writes `"<scope>: <summary>"`.
#[derive(Clone, Copy, Debug)]
pub struct Explanation<'a> {
    scope: &'a Scope,
}

/// Explain `scope` in plain words: context, resource type, interactions, parameters and
/// syntax for resource scopes; purpose for the others. No printing: use `Display` or
/// [`Explanation::summary`].
pub fn explain(scope: &Scope) -> Explanation<'_> {
    Explanation { scope }
}

impl Explanation<'_> {
    /// The explanation without the leading scope text, e.g. for `patient/Observation.rs`:
    /// "read and search Observation resources about the patient in context (SMART v2
    /// syntax)".
    pub fn summary(&self) -> String {
        match self.scope {
            Scope::Resource(r) => resource_summary(r),
            Scope::Launch(l) => launch_summary(l),
            Scope::OpenId => "OpenID Connect sign-in: the server issues an id_token".into(),
            Scope::FhirUser => {
                "adds the fhirUser claim (the FHIR resource of the signed-in user) to the id_token; needs openid"
                    .into()
            }
            Scope::Profile => "standard OpenID Connect profile claims (legacy in SMART)".into(),
            Scope::OfflineAccess => {
                "a refresh token that keeps working while the user is offline".into()
            }
            Scope::OnlineAccess => {
                "a refresh token that works only while the user stays online (EHR launch; experimental)"
                    .into()
            }
            Scope::Other(o) => other_summary(o.as_str()),
        }
    }
}

fn join_words(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn resource_summary(r: &ResourceScope) -> String {
    let verbs: Vec<&str> = r.permissions().iter().map(|i| i.name()).collect();
    let what = match r.resource_type() {
        ResourceType::Any => {
            "resources of every type (wildcard `*`, including future types)".to_owned()
        }
        ResourceType::Named(n) => format!("{n} resources"),
    };
    let whose = match r.context() {
        ScopeContext::Patient => "about the patient in context",
        ScopeContext::User => "that the user may access",
        ScopeContext::System => "that this client may access (backend system access)",
    };
    let mut s = format!("{} {what} {whose}", join_words(&verbs));
    if r.is_granular() {
        let conds: Vec<String> = r.params().iter().map(|p| p.to_string()).collect();
        s.push_str(", only where ");
        s.push_str(&conds.join(" and "));
    }
    let p = r.permissions();
    if !p.contains(super::Interaction::Read) && !p.contains(super::Interaction::Search) {
        s.push_str("; no read or search access");
    }
    match r.syntax() {
        ScopeSyntax::V1 => {
            s.push_str(&format!(
                " (SMART v1 syntax; v2 equivalent `{}`)",
                r.to_v2()
            ));
        }
        ScopeSyntax::V2 if r.is_granular() => s.push_str(" (granular SMART v2 scope)"),
        ScopeSyntax::V2 => s.push_str(" (SMART v2 syntax)"),
    }
    s
}

fn launch_summary(l: &LaunchScope) -> String {
    let mut s = match l.context_type() {
        None => {
            "EHR launch: use the context the EHR established (sent with the `launch` parameter)"
                .to_owned()
        }
        Some("patient") => {
            "ask for a patient in context (`patient` in the token response)".to_owned()
        }
        Some("encounter") => {
            "ask for an encounter in context (`encounter` in the token response)".to_owned()
        }
        Some(t) => format!("ask for {t} context (delivered in `fhirContext`)"),
    };
    if let Some(r) = l.role() {
        s.push_str(&format!(", with role {r} (experimental)"));
    }
    s
}

fn other_summary(s: &str) -> String {
    if let Some(inner) = s.strip_prefix(SMART_URI_PREFIX) {
        format!("URI form of the SMART scope `{inner}`, kept as is")
    } else if let Some(inner) = s.strip_prefix(OIDC_URI_PREFIX) {
        format!("URI form of the OpenID Connect scope `{inner}`, kept as is")
    } else if s.starts_with("__") {
        "vendor extension scope (`__` prefix), kept as is".to_owned()
    } else if s.contains("://") || s.starts_with("urn:") {
        "extension scope (full URI), kept as is".to_owned()
    } else {
        "unrecognised scope, kept as is (grants nothing this library interprets)".to_owned()
    }
}

impl fmt::Display for Explanation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.scope, self.summary())
    }
}

/// Every scope of a set explained, one line each; see [`ScopeSet::explain`].
#[derive(Clone, Copy, Debug)]
pub struct SetExplanation<'a> {
    set: &'a ScopeSet,
}

impl ScopeSet {
    /// Explain every scope, one line each (`Display`), in set order.
    pub fn explain(&self) -> SetExplanation<'_> {
        SetExplanation { set: self }
    }
}

impl fmt::Display for SetExplanation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in self.set {
            writeln!(f, "{}", explain(s))?;
        }
        Ok(())
    }
}
