//! Keys: `smart keygen`, loading key files (PEM or JWK, with their kid), the `--alg`
//! check, and what an assertion was signed with (for error hints).

use std::path::Path;

use super::*;

pub(crate) fn keygen(alg: Alg, kid: Option<&str>, out: &Path, force: bool) -> CliResult {
    let alg = alg.jws();
    let key = SigningKey::generate(alg, kid, &SystemEntropy)?;
    // The kid goes into the file (RFC 7468 explanatory text) so that `token`, `jwks`, `login`
    // and `refresh` sign with the registered kid without `--kid`.
    let pem = key.to_pkcs8_pem_with_kid()?;
    write_private(out, pem.secret().as_bytes(), force).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!(
                "{} already exists (use --force to overwrite it)",
                out.display()
            )
        } else {
            e.to_string()
        }
    })?;
    eprintln!(
        "wrote {} private key (kid `{}`) to {} (mode 0600); register this public JWKS:",
        alg.as_str(),
        key.kid(),
        out.display()
    );
    print_json(&key.public_jwks())
}

/// Write `data` to `path` readable by the owner only (0600 on Unix).
fn write_private(path: &Path, data: &[u8], force: bool) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(data)
}

/// The signing key in `path` (PEM, JWK or JWK Set). Its `kid`: `kid` when given, else the one
/// stored with the key (the PEM's `kid:` line, the JWK's `kid`), else the RFC 7638 thumbprint.
pub(crate) fn load_key(
    path: &Path,
    kid: Option<&str>,
) -> Result<SigningKey, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read key file {}: {e}", path.display()))?;
    if !text.trim_start().starts_with('{') {
        let key = SigningKey::from_pem(&text)?;
        return Ok(match kid {
            Some(kid) => key.with_kid(kid)?,
            None => key,
        });
    }
    // A JWK or JWK Set. With --kid, pick that key's private entry from a set.
    let key = match (kid, serde_json::from_str::<serde_json::Value>(&text)) {
        (Some(kid), Ok(serde_json::Value::Object(set)))
            if set.get("keys").is_some_and(|k| k.is_array()) =>
        {
            let chosen = set["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|k| k["kid"] == kid && k.get("d").is_some())
                .ok_or_else(|| format!("{} has no private key with kid `{kid}`", path.display()))?;
            SigningKey::from_jwk(&chosen.to_string())?
        }
        _ => {
            let key = SigningKey::from_jwk(&text)?;
            match kid {
                Some(kid) => key.with_kid(kid)?,
                None => key,
            }
        }
    };
    Ok(key)
}

/// `--alg`: the key must sign with that algorithm. Each key type signs with one algorithm
/// here (EC P-384: ES384; RSA: RS384), so a mismatch means the wrong key file.
pub(crate) fn check_alg(key: &SigningKey, wanted: Option<Alg>, path: &Path) -> CliResult {
    let Some(wanted) = wanted.map(Alg::jws) else {
        return Ok(());
    };
    let has = key.algorithm();
    if has == wanted {
        return Ok(());
    }
    Err(format!(
        "--alg {wanted}: the key in {} is an {} key and signs {has} only (use an {} key for \
         {wanted}, e.g. `smart keygen --alg {wanted} --out FILE`, or drop --alg)",
        path.display(),
        has.key_type(),
        wanted.key_type(),
    )
    .into())
}

/// What a `client_assertion` was signed with, for the hint after `invalid_client`.
#[derive(Clone, Debug)]
pub(crate) struct SentAssertion {
    pub alg: JwsAlgorithm,
    pub kid: String,
}

impl SentAssertion {
    pub(crate) fn of(key: &SigningKey) -> Self {
        Self {
            alg: key.algorithm(),
            kid: key.kid().to_owned(),
        }
    }

    /// `e` with, after `invalid_client`, which alg and kid were sent and what to check.
    pub(crate) fn explain(sent: Option<&Self>, e: smart_core::Error) -> Box<dyn std::error::Error> {
        let message = e.to_string();
        match sent {
            Some(s) if message.contains("`invalid_client`") => format!(
                "{message}; sent a client_assertion signed with alg {} and kid `{}`: the \
                 client's registered JWKS must hold the public key with this kid and a matching \
                 alg (compare with `smart jwks --key FILE`; --kid overrides the kid)",
                s.alg, s.kid
            )
            .into(),
            _ => e.into(),
        }
    }
}
