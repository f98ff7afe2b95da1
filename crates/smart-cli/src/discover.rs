//! `smart discover`: fetch and print `{fhir-base}/.well-known/smart-configuration`; with
//! `--lint`, list every deviation from the SMART App Launch IG with the IG section it breaks.

use smart_core::FhirBaseUrl;
use smart_core::discovery::{
    Capability, ConfigSource, Discovered, Discovery, SmartConfiguration, WarningKind,
};
use smart_ureq::HttpClient;

use crate::{CliResult, print_json};

/// IG sections, named by page and heading (SMART App Launch 2.x).
const METADATA: &str = "Conformance › Metadata";
const CAPABILITIES: &str = "Conformance › Capabilities";
const WELL_KNOWN: &str = "Conformance › Using well-known";
const ASYMMETRIC: &str =
    "Client Authentication: Asymmetric › Advertising server support for this profile";
const TLS: &str = "App Launch › Security (TLS)";

/// How much a deviation matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// A REQUIRED member or a SHALL is broken.
    Required,
    /// A RECOMMENDED member or a SHOULD is not met.
    Recommended,
    /// Worth knowing; not a conformance failure.
    Note,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Self::Required => "REQUIRED",
            Self::Recommended => "RECOMMENDED",
            Self::Note => "note",
        }
    }
}

/// One deviation from the IG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Finding {
    pub level: Level,
    pub member: String,
    pub section: &'static str,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<11} `{}`: {} [{}]",
            self.level.label(),
            self.member,
            self.message,
            self.section
        )
    }
}

/// Every deviation of `d` from the IG: the parser's warnings, each placed in its IG section,
/// and the checks the parser does not make (the asymmetric-client profile, the deprecated
/// CapabilityStatement source).
pub(crate) fn lint(d: &Discovered) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut add = |level, member: &str, section, message: String| {
        out.push(Finding {
            level,
            member: member.to_owned(),
            section,
            message,
        });
    };
    if d.source == ConfigSource::CapabilityStatement {
        add(
            Level::Required,
            ".well-known/smart-configuration",
            WELL_KNOWN,
            "not served (HTTP error or not JSON); the configuration came from the deprecated \
             CapabilityStatement `oauth-uris` extension instead"
                .into(),
        );
    }
    for w in &d.warnings {
        let (level, section, message) = match w.kind {
            WarningKind::MissingRequired => (Level::Required, METADATA, w.message.clone()),
            WarningKind::MissingRecommended => (Level::Recommended, METADATA, w.message.clone()),
            WarningKind::Pkce => (Level::Required, METADATA, w.message.clone()),
            WarningKind::RelativeUrlResolved => (
                Level::Required,
                WELL_KNOWN,
                format!(
                    "{} (endpoint URLs SHALL be absolute since 2.1.0)",
                    w.message
                ),
            ),
            WarningKind::LegacyCapability => (Level::Required, CAPABILITIES, w.message.clone()),
            WarningKind::AuthMethod => (Level::Required, ASYMMETRIC, w.message.clone()),
            WarningKind::Insecure => (Level::Required, TLS, w.message.clone()),
            _ => (Level::Note, METADATA, w.message.clone()),
        };
        add(level, &w.field, section, message);
    }
    asymmetric(&d.config, &mut add);
    out
}

/// The `client-confidential-asymmetric` profile: `private_key_jwt` and RS384/ES384 advertised.
fn asymmetric(c: &SmartConfiguration, add: &mut impl FnMut(Level, &str, &'static str, String)) {
    if !c.has_capability(&Capability::ClientConfidentialAsymmetric) {
        return;
    }
    if c.token_endpoint_auth_methods_supported.is_empty() {
        add(
            Level::Required,
            "token_endpoint_auth_methods_supported",
            ASYMMETRIC,
            "absent, but `client-confidential-asymmetric` is advertised: it should list \
             `private_key_jwt`"
                .into(),
        );
    }
    let algs = &c.token_endpoint_auth_signing_alg_values_supported;
    if !algs.iter().any(|a| a == "RS384" || a == "ES384") {
        add(
            Level::Required,
            "token_endpoint_auth_signing_alg_values_supported",
            ASYMMETRIC,
            if algs.is_empty() {
                "absent, but `client-confidential-asymmetric` is advertised: it should include \
                 `RS384` or `ES384`"
                    .into()
            } else {
                format!("lists {} but neither `RS384` nor `ES384`", algs.join(", "))
            },
        );
    }
}

pub(crate) fn discover(fhir_base: &str, lint_only: bool, allow_insecure_http: bool) -> CliResult {
    let base = FhirBaseUrl::new(fhir_base)?;
    let http = HttpClient::builder()
        .allow_insecure_http(allow_insecure_http)
        .build()?;
    let discovered = http.run(Discovery::new(base).allow_insecure_http(allow_insecure_http))?;
    if !lint_only {
        print_json(&serde_json::to_value(&discovered.config)?)?;
        eprintln!("source: {:?} ({})", discovered.source, discovered.url);
        for w in &discovered.warnings {
            eprintln!("warning: {w}");
        }
        return Ok(());
    }
    let findings = lint(&discovered);
    println!("{}", discovered.url);
    for f in &findings {
        println!("{f}");
    }
    let required = findings
        .iter()
        .filter(|f| f.level == Level::Required)
        .count();
    let recommended = findings
        .iter()
        .filter(|f| f.level == Level::Recommended)
        .count();
    if findings.is_empty() {
        println!("no deviation from the SMART App Launch IG found");
    } else {
        println!("{required} REQUIRED, {recommended} RECOMMENDED deviation(s)");
    }
    if required > 0 {
        return Err(format!(
            "{} deviates from {required} REQUIRED rule(s) of the SMART App Launch IG (listed above)",
            discovered.url
        )
        .into());
    }
    Ok(())
}
