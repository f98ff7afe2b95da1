//! `smart scope explain`: each scope in plain words, and with `--granted` what the server
//! granted, narrowed, refused or added (RESP-02; cases B16, B25).

use smart_core::scope::{ScopeSet, diff};

use crate::CliResult;

pub(crate) fn explain(scopes: &str, granted: Option<&str>) -> CliResult {
    let (requested, warnings) = ScopeSet::parse_lenient(scopes);
    if requested.is_empty() {
        return Err(
            "no scopes given: pass space-separated scopes, e.g. \"patient/Observation.rs openid\""
                .into(),
        );
    }
    print!("{}", requested.explain());
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if let Some(granted) = granted {
        let (granted, warnings) = ScopeSet::parse_lenient(granted);
        for w in &warnings {
            eprintln!("warning (granted): {w}");
        }
        println!();
        print!("{}", diff(&requested, &granted));
    }
    Ok(())
}
