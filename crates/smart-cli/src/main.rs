//! `smart`: a command-line SMART on FHIR client built on `smart-ureq`.
//!
//! ```text
//! smart keygen --alg ES384 --kid k1 --out key.pem  # private key (0600, with its kid) + public JWKS
//! smart jwks --key key.pem                      # public JWKS of an existing key
//! smart discover https://ehr.example.org/fhir   # parsed smart-configuration + warnings
//! smart token --fhir-base URL --client-id ID --key key.pem --scope "system/Patient.rs"
//! smart login --fhir-base URL --client-id ID --scope "openid fhirUser patient/*.rs" [--key|--secret-env]
//! smart refresh --token-file tokens.json --client-id ID
//! smart scope explain "patient/Observation.rs?category=…" [--granted "…"]
//! ```
//!
//! Errors print one line on stderr (the OAuth `error` and description, the URL, the HTTP
//! status) and exit with status 1; usage errors exit with 2. Tokens are printed only where
//! the command's purpose is to print them (`smart token`), never in errors.

mod login;
mod scope;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use smart_core::assertion::JwsAlgorithm;
use smart_core::backend::BackendServicesConfig;
use smart_core::discovery::Discovery;
use smart_core::entropy::SystemEntropy;
use smart_core::jwk::SigningKey;
use smart_core::{ClientId, FhirBaseUrl};
use smart_ureq::{BackendServicesAuth, HttpClient};

#[derive(Parser)]
#[command(
    name = "smart",
    version,
    about = "SMART on FHIR client: keys, discovery, tokens"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Alg {
    #[value(name = "ES384")]
    Es384,
    #[value(name = "RS384")]
    Rs384,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a private key (written with mode 0600) and print its public JWKS.
    Keygen {
        /// Signature algorithm.
        #[arg(long, value_enum, default_value = "ES384")]
        alg: Alg,
        /// Key id (`kid`); defaults to the RFC 7638 thumbprint. Stored in the key file, so the
        /// other commands sign with it without `--kid`.
        #[arg(long, allow_hyphen_values = true)]
        kid: Option<String>,
        /// Where to write the PKCS#8 PEM private key, preceded by a `kid: …` line.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Print the public JWKS of a private key (PEM or JWK).
    Jwks {
        /// The private key file (also accepted as `--key FILE`).
        #[arg(required_unless_present = "key_flag")]
        key: Option<PathBuf>,
        /// The private key file.
        #[arg(long = "key", conflicts_with = "key")]
        key_flag: Option<PathBuf>,
        /// Key id override (defaults to the kid stored with the key, else the thumbprint).
        #[arg(long, allow_hyphen_values = true)]
        kid: Option<String>,
    },
    /// Fetch and print `{fhir-base}/.well-known/smart-configuration` and its warnings.
    Discover {
        /// The FHIR base URL (also accepted as `--fhir-base URL`).
        #[arg(required_unless_present = "fhir_base_flag")]
        fhir_base: Option<String>,
        /// The FHIR base URL.
        #[arg(long = "fhir-base", conflicts_with = "fhir_base")]
        fhir_base_flag: Option<String>,
        /// Permit plain http:// to non-loopback hosts.
        #[arg(long)]
        allow_insecure_http: bool,
    },
    /// Get a Backend Services access token (client_credentials + signed client_assertion).
    Token {
        /// The FHIR base URL (endpoints are discovered from it).
        #[arg(long)]
        fhir_base: String,
        /// The registered client_id.
        #[arg(long)]
        client_id: String,
        /// The private key file (PEM or JWK).
        #[arg(long)]
        key: PathBuf,
        /// Space-separated scopes, e.g. "system/Patient.rs".
        #[arg(long)]
        scope: String,
        /// Key id override (defaults to the kid stored with the key, else the thumbprint).
        #[arg(long, allow_hyphen_values = true)]
        kid: Option<String>,
        /// Print the whole token response as JSON instead of the bare access token.
        #[arg(long)]
        json: bool,
        /// Permit plain http:// to non-loopback hosts.
        #[arg(long)]
        allow_insecure_http: bool,
    },
    /// Sign in with the authorization-code flow + PKCE through the system browser
    /// (RFC 8252: a loopback redirect listener on an ephemeral port).
    Login {
        /// The FHIR base URL (standalone launch).
        #[arg(long, conflicts_with = "launch_url")]
        fhir_base: Option<String>,
        /// An EHR launch URL carrying `iss` and `launch` (EHR launch).
        #[arg(long)]
        launch_url: Option<String>,
        /// The registered client_id.
        #[arg(long)]
        client_id: String,
        /// Space-separated scopes, e.g. "launch/patient openid fhirUser patient/*.rs offline_access".
        #[arg(long)]
        scope: String,
        /// Confidential symmetric client: read the client_secret from this environment variable.
        #[arg(long)]
        secret_env: Option<String>,
        /// Form-encode client_id and secret before HTTP Basic (RFC 6749 §2.3.1); default raw.
        #[arg(long)]
        basic_form_encoded: bool,
        /// Confidential asymmetric client: private key file (private_key_jwt).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Key id override (defaults to the kid stored with the key, else the thumbprint).
        #[arg(long, allow_hyphen_values = true)]
        kid: Option<String>,
        /// Print the authorization URL instead of opening a browser.
        #[arg(long)]
        no_browser: bool,
        /// Loopback port for the redirect listener (0 = any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Seconds to wait for the browser to come back.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
        /// Print the whole token response as JSON.
        #[arg(long)]
        json: bool,
        /// Save the token set (including the refresh token) to this file, mode 0600.
        #[arg(long)]
        save: Option<PathBuf>,
        /// Permit plain http:// to non-loopback hosts.
        #[arg(long)]
        allow_insecure_http: bool,
    },
    /// Refresh a token set saved by `smart login --save` (the file is updated in place).
    Refresh {
        /// The saved token set.
        #[arg(long)]
        token_file: PathBuf,
        /// The registered client_id.
        #[arg(long)]
        client_id: String,
        /// Ask for a narrower scope.
        #[arg(long)]
        scope: Option<String>,
        /// Confidential symmetric client: read the client_secret from this environment variable.
        #[arg(long)]
        secret_env: Option<String>,
        /// Form-encode client_id and secret before HTTP Basic.
        #[arg(long)]
        basic_form_encoded: bool,
        /// Confidential asymmetric client: private key file.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Key id override (defaults to the kid stored with the key, else the thumbprint).
        #[arg(long, allow_hyphen_values = true)]
        kid: Option<String>,
        /// Print the whole token response as JSON.
        #[arg(long)]
        json: bool,
        /// Permit plain http:// to non-loopback hosts.
        #[arg(long)]
        allow_insecure_http: bool,
    },
    /// Explain SMART scopes in plain words.
    Scope {
        #[command(subcommand)]
        command: ScopeCommand,
    },
}

#[derive(Subcommand)]
enum ScopeCommand {
    /// Explain each scope; with --granted, show what was granted, narrowed, refused or added.
    Explain {
        /// Space-separated scopes (the request).
        scopes: String,
        /// Space-separated scopes the server granted.
        #[arg(long)]
        granted: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smart: error: {e}{}", hint(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// A short "what to do" for common failures, appended to the one error line.
fn hint(message: &str) -> &'static str {
    if message.contains("Connection refused") {
        " (is the server running? for the local sandbox: sandbox/start)"
    } else if message.contains("refusing insecure URL") {
        " (use https, or --allow-insecure-http for a test server you trust)"
    } else if message.contains("no refresh token") || message.contains("`invalid_grant`") {
        " (sign in again with `smart login`)"
    } else {
        ""
    }
}

pub(crate) type CliResult = Result<(), Box<dyn std::error::Error>>;

fn run(command: Command) -> CliResult {
    match command {
        Command::Keygen {
            alg,
            kid,
            out,
            force,
        } => keygen(alg, kid.as_deref(), &out, force),
        Command::Jwks { key, key_flag, kid } => {
            let path = key.or(key_flag).ok_or("give the private key file")?;
            let key = load_key(&path, kid.as_deref())?;
            print_json(&key.public_jwks())
        }
        Command::Discover {
            fhir_base,
            fhir_base_flag,
            allow_insecure_http,
        } => {
            let base = fhir_base
                .or(fhir_base_flag)
                .ok_or("give the FHIR base URL")?;
            discover(&base, allow_insecure_http)
        }
        Command::Token {
            fhir_base,
            client_id,
            key,
            scope,
            kid,
            json,
            allow_insecure_http,
        } => {
            let key = load_key(&key, kid.as_deref())?;
            let config = BackendServicesConfig::new(ClientId::new(client_id), scope, Arc::new(key))
                .with_fhir_base(FhirBaseUrl::new(&fhir_base)?)
                .allow_insecure_http(allow_insecure_http);
            let auth = BackendServicesAuth::new(config)?;
            let token = auth.token()?;
            if json {
                print_json(&serde_json::Value::Object(token.to_wire_json()))
            } else {
                println!("{}", token.access_token.secret());
                Ok(())
            }
        }
        other => run_more(other),
    }
}

fn run_more(command: Command) -> CliResult {
    match command {
        Command::Login {
            fhir_base,
            launch_url,
            client_id,
            scope,
            secret_env,
            basic_form_encoded,
            key,
            kid,
            no_browser,
            port,
            timeout_secs,
            json,
            save,
            allow_insecure_http,
        } => login::login(&login::LoginArgs {
            fhir_base: fhir_base.as_deref(),
            launch_url: launch_url.as_deref(),
            scope: &scope,
            client: login::ClientArgs {
                client_id: &client_id,
                secret_env: secret_env.as_deref(),
                key: key.as_deref(),
                kid: kid.as_deref(),
                basic_form_encoded,
            },
            no_browser,
            port,
            timeout: std::time::Duration::from_secs(timeout_secs),
            json,
            save: save.as_deref(),
            allow_insecure_http,
        }),
        Command::Refresh {
            token_file,
            client_id,
            scope,
            secret_env,
            basic_form_encoded,
            key,
            kid,
            json,
            allow_insecure_http,
        } => login::refresh(
            &token_file,
            &login::ClientArgs {
                client_id: &client_id,
                secret_env: secret_env.as_deref(),
                key: key.as_deref(),
                kid: kid.as_deref(),
                basic_form_encoded,
            },
            scope.as_deref(),
            json,
            allow_insecure_http,
        ),
        Command::Scope {
            command: ScopeCommand::Explain { scopes, granted },
        } => scope::explain(&scopes, granted.as_deref()),
        _ => Err("unreachable command".into()),
    }
}

fn keygen(alg: Alg, kid: Option<&str>, out: &Path, force: bool) -> CliResult {
    let alg = match alg {
        Alg::Es384 => JwsAlgorithm::Es384,
        Alg::Rs384 => JwsAlgorithm::Rs384,
    };
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
pub(crate) fn write_private(path: &Path, data: &[u8], force: bool) -> std::io::Result<()> {
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

fn discover(fhir_base: &str, allow_insecure_http: bool) -> CliResult {
    let base = FhirBaseUrl::new(fhir_base)?;
    let http = HttpClient::builder()
        .allow_insecure_http(allow_insecure_http)
        .build()?;
    let discovered = http.run(Discovery::new(base).allow_insecure_http(allow_insecure_http))?;
    print_json(&serde_json::to_value(&discovered.config)?)?;
    eprintln!("source: {:?} ({})", discovered.source, discovered.url);
    for w in &discovered.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

pub(crate) fn print_json(value: &serde_json::Value) -> CliResult {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}
