//! The scope-token parser (SMART App Launch §"Scopes and Launch Context": the resource-scope
//! grammar, the other scopes, and the handling of what servers grant).

use std::fmt;

use super::{
    Interaction, LaunchScope, OpaqueScope, Permissions, ResourceScope, ResourceType, Scope,
    ScopeContext, ScopeSyntax, SearchParam, scope_error,
};
use crate::error::{Error, ScopeErrorKind};

/// How strictly to parse: validate what you build strictly, parse what you receive
/// leniently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ParseMode {
    /// Malformed SMART scopes are errors. Use for scopes the app configures or builds.
    #[default]
    Strict,
    /// Out-of-order or repeated permission letters (`.sr`, `.dus`, `.rr`) are accepted and
    /// normalised; any other malformed SMART-looking token is kept as [`Scope::Other`]. Each
    /// deviation yields a [`ScopeWarning`]. Use for granted scopes from a server.
    Lenient,
}

/// What a lenient parse tolerated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScopeWarningKind {
    /// Permission letters not in `cruds` order (`.sr`, `.dus`); the set was normalised.
    OutOfOrder,
    /// A permission letter appeared twice (`.rr`); the set was normalised.
    Repeated,
    /// The token is malformed (strict mode would reject it) and was kept verbatim as
    /// [`Scope::Other`], granting nothing.
    KeptOpaque,
}

/// A deviation accepted by [`ParseMode::Lenient`]; same shape as
/// [`ScopeError`](crate::error::ScopeError) plus a kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScopeWarning {
    /// The scope token concerned.
    pub scope: String,
    /// Byte offset inside `scope` where the deviation starts.
    pub position: usize,
    /// What was tolerated.
    pub kind: ScopeWarningKind,
    /// What strict mode would have said.
    pub message: String,
}

impl fmt::Display for ScopeWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ScopeWarningKind::OutOfOrder | ScopeWarningKind::Repeated => "accepted and normalised",
            ScopeWarningKind::KeptOpaque => "kept as an opaque scope",
        };
        write!(
            f,
            "scope `{}` {what} (byte {}: {})",
            self.scope, self.position, self.message
        )
    }
}

/// A problem of a kind at a byte position.
#[derive(Debug)]
pub(crate) struct Problem {
    position: usize,
    kind: ScopeErrorKind,
    message: String,
}

impl Problem {
    fn new(kind: ScopeErrorKind, position: usize, message: String) -> Self {
        Self {
            position,
            kind,
            message,
        }
    }

    /// The same problem `by` bytes further into the token.
    fn shift(self, by: usize) -> Self {
        Self {
            position: self.position + by,
            ..self
        }
    }

    /// The public error for token `scope`.
    pub(crate) fn into_error(self, scope: &str) -> Error {
        scope_error(scope, self.kind, self.position, self.message)
    }
}

/// RFC 6749 §3.3 `scope-token` characters: `%x21 / %x23-5B / %x5D-7E`.
const fn is_scope_byte(b: u8) -> bool {
    b == 0x21 || (b >= 0x23 && b <= 0x5B) || (b >= 0x5D && b <= 0x7E)
}

/// First byte outside `scope-token`, offset by `base`.
pub(crate) fn check_chars(text: &str, base: usize) -> Result<(), Problem> {
    match text.bytes().position(|b| !is_scope_byte(b)) {
        Some(p) => Err(Problem::new(ScopeErrorKind::InvalidCharacter,
            base + p,
            "character not allowed in a scope token (RFC 6749 §3.3: printable ASCII except space, `\"` and `\\`)"
                .into(),
        )),
        None => Ok(()),
    }
}

/// Every `%` must be followed by two hex digits.
fn check_percent(text: &str, base: usize) -> Result<(), Problem> {
    let b = text.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'%' {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return Err(Problem::new(
                    ScopeErrorKind::InvalidParameter,
                    base + i,
                    "`%` must be followed by two hex digits".into(),
                ));
            }
        }
    }
    Ok(())
}

/// A FHIR resource type name: `[A-Z][A-Za-z0-9]*`.
pub(crate) fn check_type_name(n: &str) -> Result<(), Problem> {
    let mut chars = n.char_indices();
    match chars.next() {
        None => {
            return Err(Problem::new(
                ScopeErrorKind::InvalidResourceType,
                0,
                "expected a FHIR resource type or `*`".into(),
            ));
        }
        Some((_, c)) if c.is_ascii_uppercase() => {}
        Some(_) => {
            return Err(Problem::new(ScopeErrorKind::InvalidResourceType,
                0,
                "expected a FHIR resource type (case-sensitive PascalCase, e.g. `Observation`) or `*`"
                    .into(),
            ));
        }
    }
    for (i, c) in chars {
        if !c.is_ascii_alphanumeric() {
            return Err(Problem::new(
                ScopeErrorKind::InvalidResourceType,
                i,
                format!("unexpected `{c}` in resource type"),
            ));
        }
    }
    Ok(())
}

/// A launch context type: ASCII letters/digits, non-empty (case kept).
pub(crate) fn check_launch_type(t: &str) -> Result<(), Problem> {
    if t.is_empty() {
        return Err(Problem::new(
            ScopeErrorKind::InvalidLaunch,
            0,
            "expected a context type after `launch/` (e.g. `patient`)".into(),
        ));
    }
    match t.char_indices().find(|(_, c)| !c.is_ascii_alphanumeric()) {
        Some((i, c)) => Err(Problem::new(
            ScopeErrorKind::InvalidLaunch,
            i,
            format!("unexpected `{c}` in launch context type"),
        )),
        None => Ok(()),
    }
}

/// A launch role value (the text after `role=`), offset by `base`.
pub(crate) fn check_role_value(v: &str, base: usize) -> Result<(), Problem> {
    if v.is_empty() {
        return Err(Problem::new(
            ScopeErrorKind::InvalidLaunch,
            base,
            "empty role: expected `role=<uri>`".into(),
        ));
    }
    check_chars(v, base)?;
    if let Some(i) = v.find('&') {
        return Err(Problem::new(
            ScopeErrorKind::InvalidLaunch,
            base + i,
            "at most one role per launch scope; request several roles with several scopes".into(),
        ));
    }
    check_percent(v, base)
}

/// One `name=value` search parameter, offset by `base`; returns the index of the `=`.
pub(crate) fn check_param(text: &str, base: usize) -> Result<usize, Problem> {
    if text.is_empty() {
        return Err(Problem::new(
            ScopeErrorKind::InvalidParameter,
            base,
            "empty search parameter (`&&`, or `&`/`?` at the end)".into(),
        ));
    }
    check_chars(text, base)?;
    if let Some(i) = text.find('&') {
        return Err(Problem::new(
            ScopeErrorKind::InvalidParameter,
            base + i,
            "`&` inside a search parameter".into(),
        ));
    }
    let Some(eq) = text.find('=') else {
        return Err(Problem::new(
            ScopeErrorKind::InvalidParameter,
            base + text.len(),
            "expected `=value` after the search parameter name".into(),
        ));
    };
    if eq == 0 {
        return Err(Problem::new(
            ScopeErrorKind::InvalidParameter,
            base,
            "empty search parameter name".into(),
        ));
    }
    if eq + 1 == text.len() {
        return Err(Problem::new(
            ScopeErrorKind::InvalidParameter,
            base + eq + 1,
            "empty search parameter value".into(),
        ));
    }
    check_percent(text, base)?;
    Ok(eq)
}

/// Parse one token; see [`Scope::parse_with`].
pub(crate) fn parse_token(
    input: &str,
    mode: ParseMode,
    warnings: &mut Vec<ScopeWarning>,
) -> Result<Scope, Error> {
    if input.is_empty() {
        return Err(scope_error(input, ScopeErrorKind::Empty, 0, "empty scope"));
    }
    if let Some(p) = input.bytes().position(|b| b.is_ascii_whitespace()) {
        return Err(scope_error(
            input,
            ScopeErrorKind::Whitespace,
            p,
            "whitespace inside a scope token (parse a space-separated list with ScopeSet)",
        ));
    }
    let lenient = mode == ParseMode::Lenient;
    let mut local = Vec::new();
    match parse_inner(input, lenient, &mut local) {
        Ok(s) => {
            warnings.extend(local);
            Ok(s)
        }
        Err(Problem {
            position, message, ..
        }) if lenient => {
            warnings.push(ScopeWarning {
                scope: input.to_owned(),
                position,
                kind: ScopeWarningKind::KeptOpaque,
                message,
            });
            Ok(Scope::Other(OpaqueScope::new(input)))
        }
        Err(problem) => Err(problem.into_error(input)),
    }
}

fn parse_inner(
    input: &str,
    lenient: bool,
    warnings: &mut Vec<ScopeWarning>,
) -> Result<Scope, Problem> {
    check_chars(input, 0)?;
    Ok(match input {
        "openid" => Scope::OpenId,
        "fhirUser" => Scope::FhirUser,
        "profile" => Scope::Profile,
        "offline_access" => Scope::OfflineAccess,
        "online_access" => Scope::OnlineAccess,
        "launch" => Scope::Launch(LaunchScope::EHR),
        _ => {
            if input.starts_with("launch/") || input.starts_with("launch?") {
                Scope::Launch(parse_launch(input)?)
            } else {
                let ctx = input
                    .split_once('/')
                    .and_then(|(p, _)| ScopeContext::from_prefix(p));
                match ctx {
                    Some(c) => Scope::Resource(parse_resource(input, c, lenient, warnings)?),
                    None => Scope::Other(OpaqueScope::new(input)),
                }
            }
        }
    })
}

fn parse_launch(input: &str) -> Result<LaunchScope, Problem> {
    // input starts with "launch/" or "launch?"
    if input.as_bytes().get(6) == Some(&b'?') {
        return Err(Problem::new(
            ScopeErrorKind::InvalidLaunch,
            6,
            "a role needs a context type: launch/<type>?role=<uri>".into(),
        ));
    }
    let rest = &input[7..];
    let (ty, query) = match rest.find('?') {
        Some(q) => (&rest[..q], Some(7 + q)),
        None => (rest, None),
    };
    check_launch_type(ty).map_err(|e| e.shift(7))?;
    let role = match query {
        None => None,
        Some(q) => {
            let after = &input[q + 1..];
            let Some(v) = after.strip_prefix("role=") else {
                return Err(Problem::new(
                    ScopeErrorKind::InvalidLaunch,
                    q + 1,
                    "only `role=<uri>` may follow a launch context type".into(),
                ));
            };
            check_role_value(v, q + 6)?;
            Some(v.to_owned())
        }
    };
    Ok(LaunchScope::from_parts(Some(ty.to_owned()), role))
}

fn parse_resource(
    input: &str,
    context: ScopeContext,
    lenient: bool,
    warnings: &mut Vec<ScopeWarning>,
) -> Result<ResourceScope, Problem> {
    let start = context.as_str().len() + 1;
    let rest = &input[start..];
    let Some(dot) = rest.find('.') else {
        // Report at the first character that cannot be part of a type, else at the end.
        let bad = if rest == "*" {
            None
        } else {
            check_type_name(rest).err()
        };
        return Err(match bad {
            Some(problem) => problem.shift(start),
            None => Problem::new(
                ScopeErrorKind::MissingPermissions,
                input.len(),
                "expected `.` and permissions (e.g. `.rs`) after the resource type".into(),
            ),
        });
    };
    let ty = &rest[..dot];
    let resource_type = if ty == "*" {
        ResourceType::Any
    } else {
        check_type_name(ty).map_err(|e| e.shift(start))?;
        ResourceType::Named(ty.to_owned())
    };
    let perm_start = start + dot + 1;
    let after = &input[perm_start..];
    let (perm_text, query) = match after.find('?') {
        Some(q) => (&after[..q], Some(perm_start + q)),
        None => (after, None),
    };
    let (permissions, syntax) = match perm_text {
        "read" => (Permissions::READ_SEARCH, ScopeSyntax::V1),
        "write" => (Permissions::CREATE_UPDATE_DELETE, ScopeSyntax::V1),
        "*" => (Permissions::ALL, ScopeSyntax::V1),
        "" => {
            return Err(Problem::new(
                ScopeErrorKind::MissingPermissions,
                perm_start,
                "empty permissions: expected letters from `cruds` or v1 `read`, `write`, `*`"
                    .into(),
            ));
        }
        letters => (
            parse_letters(input, letters, perm_start, lenient, warnings)?,
            ScopeSyntax::V2,
        ),
    };
    let params = match query {
        None => Vec::new(),
        Some(q) if syntax == ScopeSyntax::V1 => {
            return Err(Problem::new(
                ScopeErrorKind::InvalidParameter,
                q,
                "granular `?` parameters need v2 permission letters, not v1 read/write/*".into(),
            ));
        }
        Some(q) => parse_params(input, q + 1)?,
    };
    Ok(ResourceScope::from_parts(
        context,
        resource_type,
        permissions,
        syntax,
        params,
    ))
}

fn parse_letters(
    input: &str,
    letters: &str,
    base: usize,
    lenient: bool,
    warnings: &mut Vec<ScopeWarning>,
) -> Result<Permissions, Problem> {
    let mut perms = Permissions::NONE;
    let mut highest: Option<Interaction> = None;
    let mut first_issue: Option<(usize, ScopeWarningKind, String)> = None;
    for (i, c) in letters.char_indices() {
        let Some(inter) = Interaction::from_letter(c) else {
            return Err(Problem::new(
                ScopeErrorKind::UnknownPermission,
                base + i,
                format!(
                    "unknown permission `{c}`: expected c, r, u, d, s (in that order) or v1 read, write, *"
                ),
            ));
        };
        let issue = match highest {
            _ if perms.contains(inter) => Some((
                ScopeWarningKind::Repeated,
                format!("permission `{c}` repeated"),
            )),
            Some(h) if inter < h => Some((
                ScopeWarningKind::OutOfOrder,
                format!(
                    "permission `{c}` after `{}`: letters must be an in-order subset of `cruds`",
                    h.letter()
                ),
            )),
            _ => None,
        };
        if let Some((kind, msg)) = issue {
            if !lenient {
                let kind = match kind {
                    ScopeWarningKind::OutOfOrder => ScopeErrorKind::OutOfOrder,
                    _ => ScopeErrorKind::RepeatedPermission,
                };
                return Err(Problem::new(kind, base + i, msg));
            }
            if first_issue.is_none() {
                first_issue = Some((base + i, kind, msg));
            }
        }
        highest = Some(highest.map_or(inter, |h| h.max(inter)));
        perms.insert(inter);
    }
    if let Some((position, kind, message)) = first_issue {
        warnings.push(ScopeWarning {
            scope: input.to_owned(),
            position,
            kind,
            message,
        });
    }
    Ok(perms)
}

fn parse_params(input: &str, start: usize) -> Result<Vec<SearchParam>, Problem> {
    let query = &input[start..];
    let mut params = Vec::new();
    let mut pos = start;
    for part in query.split('&') {
        let eq = check_param(part, pos)?;
        params.push(SearchParam::from_raw(&part[..eq], &part[eq + 1..]));
        pos += part.len() + 1;
    }
    Ok(params)
}
