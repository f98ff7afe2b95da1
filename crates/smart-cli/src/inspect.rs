//! `smart inspect`: decode and explain a JWT (an `id_token`, a JWT access token, a client
//! assertion) or a token set (a file, or a session saved with `smart login --save`).
//! Signatures, access tokens and refresh tokens are never printed unless `--show-secrets`.
//! Nothing is verified: this is for reading, not for trusting.

use std::io::Read as _;
use std::path::Path;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use smart_core::scope::ScopeSet;
use smart_core::store::StoredToken;

use crate::store::{self, KeySource, StoreSpec};
use crate::{CliResult, print_json, when};

pub(crate) struct InspectArgs<'a> {
    pub input: Option<&'a str>,
    pub from: Option<&'a str>,
    pub session: &'a str,
    pub store_key: KeySource<'a>,
    pub show_secrets: bool,
    pub json: bool,
}

/// The largest file read.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Claims holding times (seconds since the epoch).
const TIME_CLAIMS: &[&str] = &["exp", "iat", "nbf", "auth_time", "expires_at"];

/// A decoded compact JWS.
struct Jwt {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signature: String,
}

fn decode_segment(seg: &str, what: &str) -> Result<Map<String, Value>, String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(seg.trim_end_matches('='))
        .map_err(|_| format!("the JWT {what} is not base64url"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(format!("the JWT {what} is not a JSON object")),
    }
}

/// `text` as a compact JWS (three base64url segments), if it has that shape.
fn looks_like_jwt(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

fn decode_jwt(text: &str) -> Result<Jwt, String> {
    let mut parts = text.split('.');
    let (Some(h), Some(c), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("not a compact JWT (three segments separated by dots)".into());
    };
    Ok(Jwt {
        header: decode_segment(h, "header")?,
        claims: decode_segment(c, "payload")?,
        signature: s.to_owned(),
    })
}

/// What was given: a JWT, or a token set with what is known about it.
enum Input {
    Jwt(Jwt),
    TokenSet {
        /// Where it came from (`fhir_base`, `token_endpoint`, `client_id` when known).
        meta: Vec<(&'static str, String)>,
        /// The token response in its wire shape.
        wire: Map<String, Value>,
    },
}

pub(crate) fn inspect(a: &InspectArgs<'_>) -> CliResult {
    let input = match (a.from, a.input) {
        (Some(from), _) => {
            let spec = StoreSpec::parse(from)?;
            let store = store::open_existing(&spec, &a.store_key)?;
            token_set(store::read_session(store.as_ref(), &spec, a.session)?)
        }
        (None, Some(arg)) => read_input(arg)?,
        (None, None) => return Err("give a JWT or a token file, or --from".into()),
    };
    if a.json {
        return print_json(&to_json(&input, a.show_secrets));
    }
    print!("{}", render(&input, a.show_secrets));
    Ok(())
}

fn token_set(stored: StoredToken) -> Input {
    let mut meta = Vec::new();
    if let Some(b) = &stored.fhir_base {
        meta.push(("fhir_base", b.to_string()));
    }
    meta.push(("token_endpoint", stored.token_endpoint.to_string()));
    meta.push(("client_id", stored.client_id.as_str().to_owned()));
    let mut wire = stored.token.to_wire_json();
    if let Some(at) = stored.token.expires_at {
        wire.insert("expires_at".into(), at.as_secs().into());
    }
    Input::TokenSet { meta, wire }
}

fn read_input(arg: &str) -> Result<Input, String> {
    let arg = arg.trim();
    if looks_like_jwt(arg) && !Path::new(arg).exists() {
        return decode_jwt(arg).map(Input::Jwt);
    }
    let path = Path::new(arg);
    let file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            "the argument is neither a compact JWT nor an existing file (an opaque access \
             token cannot be decoded: only its server can say what it grants, by token \
             introspection, RFC 7662; inspect the token file that holds it instead)"
                .to_owned()
        } else {
            format!("cannot read {}: {e}", path.display())
        }
    })?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e} (not a text file?)", path.display()))?;
    let text = text.trim();
    if looks_like_jwt(text) {
        return decode_jwt(text)
            .map(Input::Jwt)
            .map_err(|e| format!("{}: {e}", path.display()));
    }
    let not_a_token = || {
        format!(
            "{} is neither a JWT nor a token set (expected a compact JWT, a token response as \
             `smart token --json` prints it, or a token set saved by smart)",
            path.display()
        )
    };
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) else {
        return Err(not_a_token());
    };
    if obj.get("format").and_then(Value::as_str) == Some(smart_store::FORMAT) {
        // A token store entry: plain ones hold the token set; sealed ones need the store.
        if obj.contains_key("sealed") {
            return Err(format!(
                "{} is an encrypted token store entry: inspect it through its store, e.g. \
                 `smart inspect --from DIR --session NAME --store-key-env VAR`",
                path.display()
            ));
        }
        return match obj.get("token").cloned().map(serde_json::from_value) {
            Some(Ok(stored)) => Ok(token_set(stored)),
            _ => Err(not_a_token()),
        };
    }
    if obj.contains_key("token_endpoint") && obj.contains_key("token") {
        // A token set as the library serializes it (e.g. saved by an older smart).
        return serde_json::from_value::<StoredToken>(Value::Object(obj))
            .map(token_set)
            .map_err(|_| not_a_token());
    }
    if obj.get("access_token").is_some_and(Value::is_string) {
        return Ok(Input::TokenSet {
            meta: Vec::new(),
            wire: obj,
        });
    }
    Err(not_a_token())
}

/// A value on one line: strings as they are, times in words, the rest as compact JSON.
fn show_value(name: &str, v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if TIME_CLAIMS.contains(&name) => n
            .as_u64()
            .map_or_else(|| n.to_string(), |t| format!("{t} = {}", when::human(t))),
        other => other.to_string(),
    }
}

fn hidden(what: &str, len: usize) -> String {
    format!("(hidden: {what}, {len} characters; --show-secrets prints it)")
}

fn explain_scope(out: &mut String, scope: &str) {
    let (set, _) = ScopeSet::parse_lenient(scope);
    for line in set.explain().to_string().lines() {
        out.push_str(&format!("    {line}\n"));
    }
}

fn render_jwt(out: &mut String, title: &str, jwt: &Jwt, show_secrets: bool) {
    out.push_str(&format!("{title} (JWT; signature not verified)\n"));
    out.push_str("  header:\n");
    for (k, v) in &jwt.header {
        out.push_str(&format!("    {k:<14} {}\n", show_value(k, v)));
    }
    out.push_str("  claims:\n");
    for (k, v) in &jwt.claims {
        out.push_str(&format!("    {k:<14} {}\n", show_value(k, v)));
        if (k == "scope" || k == "scp")
            && let Some(s) = v.as_str()
        {
            explain_scope(out, s);
        }
    }
    if let Some(exp) = jwt.claims.get("exp").and_then(Value::as_u64) {
        out.push_str(&format!("  {}\n", when::expiry(exp)));
    }
    let sig = if show_secrets {
        jwt.signature.clone()
    } else {
        hidden("signature", jwt.signature.len())
    };
    out.push_str(&format!("  signature        {sig}\n"));
}

fn render(input: &Input, show_secrets: bool) -> String {
    let mut out = String::new();
    match input {
        Input::Jwt(jwt) => render_jwt(&mut out, "token", jwt, show_secrets),
        Input::TokenSet { meta, wire } => {
            out.push_str("token set\n");
            for (k, v) in meta {
                out.push_str(&format!("  {k:<20} {v}\n"));
            }
            for (k, v) in wire {
                match k.as_str() {
                    "access_token" | "refresh_token" | "id_token" => {}
                    "expires_at" => {
                        if let Some(t) = v.as_u64() {
                            out.push_str(&format!("  {:<20} {}\n", "expires", when::human(t)));
                        }
                    }
                    "expires_in" => {
                        out.push_str(&format!(
                            "  {k:<20} {} (lifetime when issued)\n",
                            v.as_u64().map_or_else(|| v.to_string(), when::span)
                        ));
                    }
                    _ => {
                        out.push_str(&format!("  {k:<20} {}\n", show_value(k, v)));
                        if k == "scope"
                            && let Some(s) = v.as_str()
                        {
                            explain_scope(&mut out, s);
                        }
                    }
                }
            }
            let secret = |name: &str| wire.get(name).and_then(Value::as_str);
            let access = secret("access_token").unwrap_or("");
            let access_jwt = looks_like_jwt(access)
                .then(|| decode_jwt(access).ok())
                .flatten();
            let shown = if show_secrets {
                access.to_owned()
            } else if access_jwt.is_some() {
                hidden("a JWT, decoded below", access.len())
            } else {
                hidden("opaque", access.len())
            };
            out.push_str(&format!("  {:<20} {shown}\n", "access_token"));
            if let Some(r) = secret("refresh_token") {
                let shown = if show_secrets {
                    r.to_owned()
                } else {
                    hidden("present", r.len())
                };
                out.push_str(&format!("  {:<20} {shown}\n", "refresh_token"));
            }
            if let Some(jwt) = &access_jwt {
                out.push('\n');
                render_jwt(&mut out, "access_token", jwt, show_secrets);
            }
            if let Some(id) = secret("id_token") {
                out.push('\n');
                match decode_jwt(id) {
                    Ok(jwt) => render_jwt(&mut out, "id_token", &jwt, show_secrets),
                    Err(e) => out.push_str(&format!("id_token: cannot decode: {e}\n")),
                }
            }
        }
    }
    out
}

fn jwt_json(jwt: &Jwt, show_secrets: bool) -> Value {
    let mut v = json!({ "header": jwt.header, "claims": jwt.claims });
    if show_secrets {
        v["signature"] = jwt.signature.clone().into();
    }
    v
}

fn to_json(input: &Input, show_secrets: bool) -> Value {
    match input {
        Input::Jwt(jwt) => {
            let mut v = jwt_json(jwt, show_secrets);
            v["kind"] = "jwt".into();
            v
        }
        Input::TokenSet { meta, wire } => {
            let mut token = wire.clone();
            let mut v = json!({ "kind": "token_set" });
            for (k, val) in meta {
                v[*k] = val.clone().into();
            }
            if let Some(id) = wire.get("id_token").and_then(Value::as_str)
                && let Ok(jwt) = decode_jwt(id)
            {
                v["id_token"] = jwt_json(&jwt, show_secrets);
            }
            if let Some(at) = wire.get("access_token").and_then(Value::as_str)
                && looks_like_jwt(at)
                && let Ok(jwt) = decode_jwt(at)
            {
                v["access_token_jwt"] = jwt_json(&jwt, show_secrets);
            }
            if !show_secrets {
                for k in ["access_token", "refresh_token", "id_token"] {
                    if token.contains_key(k) {
                        token.insert(k.into(), "(hidden)".into());
                    }
                }
            }
            v["token"] = Value::Object(token);
            v
        }
    }
}
