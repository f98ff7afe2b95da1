//! `smart scope explain`: each scope in plain words, and with `--granted` what the server
//! granted, narrowed, refused or added. Also the scope lint that `smart token` and `smart
//! login` run before any request, and the warning they print when the grant is narrower than
//! the request.

use smart_core::Error;
use smart_core::scope::{ParseMode, ScopeSet, diff};

use crate::CliResult;

/// Parse `scopes` strictly. A malformed scope is an error naming its byte position in the
/// whole list (and inside the scope token), for `what` (e.g. `--scope`).
pub(crate) fn lint(scopes: &str, what: &str) -> Result<ScopeSet, String> {
    let mut warnings = Vec::new();
    match ScopeSet::parse_with(scopes, ParseMode::Strict, &mut warnings) {
        Ok(set) => Ok(set),
        Err(Error::Scope(e)) => {
            // The position is inside the offending token; find the token in the list (the
            // first whitespace-separated token equal to it, as the parser went left to right).
            let start = token_offsets(scopes)
                .find(|(_, t)| *t == e.scope)
                .map_or(0, |(i, _)| i);
            Err(format!(
                "malformed scope in {what} at byte {} (byte {} of `{}`): {}{}",
                start + e.position,
                e.position,
                e.scope,
                e.message,
                if what.starts_with("--") {
                    " (fix the scope, or pass --no-lint to send it as it is)"
                } else {
                    ""
                }
            ))
        }
        Err(other) => Err(other.to_string()),
    }
}

/// Each whitespace-separated token of `s` with its byte offset.
fn token_offsets(s: &str) -> impl Iterator<Item = (usize, &str)> {
    s.split_ascii_whitespace()
        .map(move |t| (t.as_ptr() as usize - s.as_ptr() as usize, t))
}

/// Warn on stderr when `granted` (the token response's `scope`) gives less than `requested`.
pub(crate) fn warn_if_narrower(requested: &str, granted: Option<&str>) {
    let Some(granted) = granted else { return };
    let (req, _) = ScopeSet::parse_lenient(requested);
    let (got, _) = ScopeSet::parse_lenient(granted);
    let d = diff(&req, &got);
    if d.narrowed.is_empty() && d.refused.is_empty() {
        return;
    }
    let mut parts = Vec::new();
    if !d.refused.is_empty() {
        let refused: Vec<String> = d.refused.iter().map(ToString::to_string).collect();
        parts.push(format!("refused {}", refused.join(" ")));
    }
    for n in &d.narrowed {
        let to: Vec<String> = n.granted.iter().map(ToString::to_string).collect();
        parts.push(format!("narrowed {} to {}", n.requested, to.join(" ")));
    }
    eprintln!(
        "warning: the server granted less than requested: {} (granted: {granted}; \
         see `smart scope explain \"{requested}\" --granted \"{granted}\"`)",
        parts.join("; ")
    );
}

pub(crate) fn explain(scopes: &str, granted: Option<&str>) -> CliResult {
    let requested = lint(scopes, "the scope list")?;
    if requested.is_empty() {
        return Err(
            "no scopes given: pass space-separated scopes, e.g. \"patient/Observation.rs openid\""
                .into(),
        );
    }
    print!("{}", requested.explain());
    if let Some(granted) = granted {
        // What a server granted is read leniently, as the library reads it.
        let (granted, warnings) = ScopeSet::parse_lenient(granted);
        for w in &warnings {
            eprintln!("warning (granted): {w}");
        }
        println!();
        print!("{}", diff(&requested, &granted));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lint_names_the_byte_position_in_the_whole_list() {
        let err = lint("openid patient/Observation.rx", "--scope").unwrap_err();
        assert!(
            err.starts_with(
                "malformed scope in --scope at byte 28 (byte 21 of `patient/Observation.rx`)"
            ),
            "{err}"
        );
        assert!(lint("openid patient/Observation.rs", "--scope").is_ok());
    }
}
