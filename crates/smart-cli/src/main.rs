//! `smart`: a command-line SMART on FHIR client built on `smart-ureq`.
//!
//! ```text
//! smart keygen --alg ES384 --kid k1 --out key.pem  # private key (0600, with its kid) + public JWKS
//! smart jwks --key key.pem                      # public JWKS of an existing key
//! smart discover https://ehr.example.org/fhir [--lint]   # smart-configuration (+ IG deviations)
//! smart token --fhir-base URL --client-id ID --key key.pem --scope "system/Patient.rs" [--cache]
//! smart login --fhir-base URL --client-id ID --scope "openid fhirUser patient/*.rs" [--save]
//! smart refresh [--from DIR|redis://…] [--session NAME]
//! smart inspect <JWT | token file> | --from DIR [--show-secrets]
//! smart scope explain "patient/Observation.rs?category=…" [--granted "…"]
//! smart completions bash
//! ```
//!
//! Errors print one line on stderr (the OAuth `error` and description, the URL, the HTTP
//! status, and what to do) and exit with status 1; usage errors exit with 2. Tokens are
//! printed only where the command's purpose is to print them (`smart token`, `smart login`,
//! `smart refresh`, `smart inspect --show-secrets`), never in errors.

mod discover;
mod inspect;
mod key;
mod login;
mod scope;
mod store;
mod token;
mod when;

pub(crate) use key::{SentAssertion, check_alg, keygen, load_key};

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};
use smart_core::assertion::JwsAlgorithm;
use smart_core::entropy::SystemEntropy;
use smart_core::jwk::SigningKey;

#[derive(Parser)]
#[command(
    name = "smart",
    version,
    about = "SMART on FHIR client: keys, discovery, tokens, sign-in, token inspection"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Alg {
    #[value(name = "ES384")]
    Es384,
    #[value(name = "RS384")]
    Rs384,
}

impl Alg {
    pub(crate) fn jws(self) -> JwsAlgorithm {
        match self {
            Self::Es384 => JwsAlgorithm::Es384,
            Self::Rs384 => JwsAlgorithm::Rs384,
        }
    }
}

/// How a confidential client authenticates (`login`, `refresh`).
#[derive(clap::Args)]
struct ClientOpts {
    /// Confidential symmetric client: read the client_secret from this environment variable.
    #[arg(long, conflicts_with_all = ["secret_stdin", "key"])]
    secret_env: Option<String>,
    /// Confidential symmetric client: read the client_secret from standard input (first line).
    #[arg(long, conflicts_with = "key")]
    secret_stdin: bool,
    /// Form-encode client_id and secret before HTTP Basic (RFC 6749 §2.3.1); default raw.
    #[arg(long)]
    basic_form_encoded: bool,
    /// Confidential asymmetric client: private key file (private_key_jwt).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Key id override (defaults to the kid stored with the key, else the thumbprint).
    #[arg(long, allow_hyphen_values = true, requires = "key")]
    kid: Option<String>,
    /// The algorithm the key must sign with (ES384 or RS384): a mismatch is an error before
    /// any request.
    #[arg(long, value_enum, requires = "key")]
    alg: Option<Alg>,
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
    /// Fetch and print `{fhir-base}/.well-known/smart-configuration` and its warnings; with
    /// --lint, list every deviation from the SMART App Launch IG.
    Discover {
        /// The FHIR base URL (also accepted as `--fhir-base URL`).
        #[arg(required_unless_present = "fhir_base_flag")]
        fhir_base: Option<String>,
        /// The FHIR base URL.
        #[arg(long = "fhir-base", conflicts_with = "fhir_base")]
        fhir_base_flag: Option<String>,
        /// List every deviation from the SMART App Launch IG with its IG section instead of
        /// printing the configuration (exit status 1 when a REQUIRED rule is broken).
        #[arg(long)]
        lint: bool,
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
        /// The algorithm the key must sign with (ES384 or RS384): a mismatch is an error before
        /// any request.
        #[arg(long, value_enum)]
        alg: Option<Alg>,
        /// Reuse a still-fresh token across runs: the default cache directory without a value,
        /// else a directory or redis://HOST:PORT/DB. Keyed by token endpoint, client_id and scope.
        #[arg(long, value_name = "DIR|redis://HOST:PORT/DB", num_args = 0..=1, default_missing_value = "")]
        cache: Option<String>,
        /// Encrypt the cache with the base64 32-byte key in this environment variable.
        #[arg(
            long,
            value_name = "NAME",
            requires = "cache",
            conflicts_with = "cache_key_file"
        )]
        cache_key_env: Option<String>,
        /// Encrypt the cache with the base64 32-byte key in this file.
        #[arg(long, value_name = "PATH", requires = "cache")]
        cache_key_file: Option<PathBuf>,
        /// Print the whole token response as JSON (with `expires_at` in epoch seconds) instead
        /// of the bare access token.
        #[arg(long)]
        json: bool,
        /// Also print the token's scope and expiry on stderr.
        #[arg(long, short)]
        verbose: bool,
        /// Send the scope as it is, without checking its syntax first.
        #[arg(long)]
        no_lint: bool,
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
        #[command(flatten)]
        client: ClientOpts,
        /// Print the authorization URL instead of opening a browser.
        #[arg(long)]
        no_browser: bool,
        /// Loopback port for the redirect listener (0 = any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Seconds to wait for the browser to come back.
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
        /// Do not check the authorization URL with a GET before opening the browser (done for
        /// standalone launches only; an EHR launch's `launch` value may be single-use).
        #[arg(long)]
        no_probe: bool,
        /// Print the whole token response as JSON (with `expires_at` in epoch seconds).
        #[arg(long)]
        json: bool,
        /// Save the session (with its refresh token) in a token store: the default directory
        /// without a value, else a directory or redis://HOST:PORT/DB.
        #[arg(long, value_name = "DIR|redis://HOST:PORT/DB", num_args = 0..=1, default_missing_value = "")]
        save: Option<String>,
        /// The name of the saved session (several sessions can share a store).
        #[arg(long, default_value = "default", requires = "save")]
        session: String,
        /// Encrypt the saved session with the base64 32-byte key in this environment variable.
        #[arg(
            long,
            value_name = "NAME",
            requires = "save",
            conflicts_with = "store_key_file"
        )]
        store_key_env: Option<String>,
        /// Encrypt the saved session with the base64 32-byte key in this file.
        #[arg(long, value_name = "PATH", requires = "save")]
        store_key_file: Option<PathBuf>,
        /// Send the scope as it is, without checking its syntax first.
        #[arg(long)]
        no_lint: bool,
        /// Permit plain http:// to non-loopback hosts.
        #[arg(long)]
        allow_insecure_http: bool,
    },
    /// Refresh a session saved by `smart login --save` (the store is updated before the new
    /// token is printed). The client_id comes from the saved session.
    Refresh {
        /// The token store holding the session: the default directory when absent, else a
        /// directory or redis://HOST:PORT/DB (`--token-file` is accepted as another name).
        #[arg(long, alias = "token-file", value_name = "DIR|redis://HOST:PORT/DB")]
        from: Option<String>,
        /// The name of the saved session.
        #[arg(long, default_value = "default")]
        session: String,
        /// The key the session was encrypted with, from this environment variable.
        #[arg(long, value_name = "NAME", conflicts_with = "store_key_file")]
        store_key_env: Option<String>,
        /// The key the session was encrypted with, from this file.
        #[arg(long, value_name = "PATH")]
        store_key_file: Option<PathBuf>,
        /// The FHIR base URL: checked against the saved session's.
        #[arg(long)]
        fhir_base: Option<String>,
        /// The registered client_id: checked against the saved session's (not needed).
        #[arg(long)]
        client_id: Option<String>,
        /// Ask for a narrower scope.
        #[arg(long)]
        scope: Option<String>,
        #[command(flatten)]
        client: ClientOpts,
        /// Print the whole token response as JSON (with `expires_at` in epoch seconds).
        #[arg(long)]
        json: bool,
        /// Permit plain http:// to non-loopback hosts.
        #[arg(long)]
        allow_insecure_http: bool,
    },
    /// Decode and explain a JWT (id_token, JWT access token, client assertion) or a token
    /// file; signatures, access and refresh tokens stay hidden unless --show-secrets.
    Inspect {
        /// A compact JWT, or a file holding one, a token response (`--json` output) or a saved
        /// token set.
        #[arg(required_unless_present = "from")]
        input: Option<String>,
        /// Inspect a session saved by `smart login --save` instead: the default directory
        /// without a value, else a directory or redis://HOST:PORT/DB.
        #[arg(long, value_name = "DIR|redis://HOST:PORT/DB", num_args = 0..=1, default_missing_value = "", conflicts_with = "input")]
        from: Option<String>,
        /// The name of the saved session (with --from).
        #[arg(long, default_value = "default", requires = "from")]
        session: String,
        /// The key the session was encrypted with, from this environment variable.
        #[arg(
            long,
            value_name = "NAME",
            requires = "from",
            conflicts_with = "store_key_file"
        )]
        store_key_env: Option<String>,
        /// The key the session was encrypted with, from this file.
        #[arg(long, value_name = "PATH", requires = "from")]
        store_key_file: Option<PathBuf>,
        /// Also print signatures, access tokens and refresh tokens.
        #[arg(long)]
        show_secrets: bool,
        /// Print JSON (times in epoch seconds).
        #[arg(long)]
        json: bool,
    },
    /// Explain SMART scopes in plain words.
    Scope {
        #[command(subcommand)]
        command: ScopeCommand,
    },
    /// Print a shell completion script (e.g. `smart completions bash > ~/.local/share/bash-completion/completions/smart`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum ScopeCommand {
    /// Explain each scope; with --granted, show what was granted, narrowed, refused or added.
    /// A malformed scope is an error (exit status 1) naming its byte position.
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
            // The error and its sources on one line ("request to … could not connect:
            // Connection refused (os error 111)").
            let mut message = e.to_string();
            let mut source = e.source();
            while let Some(s) = source {
                let text = s.to_string();
                if !message.contains(&text) {
                    message.push_str(": ");
                    message.push_str(&text);
                }
                source = s.source();
            }
            let message = message.replace('\n', " ");
            eprintln!("smart: error: {message}{}", hint(&message));
            ExitCode::FAILURE
        }
    }
}

/// A short "what to do" for common failures, appended to the one error line.
fn hint(message: &str) -> &'static str {
    if message.contains("(hint:") || message.contains("; sent a client_assertion") {
        ""
    } else if message.contains("Connection refused") {
        " (is the server running? for the local sandbox: sandbox/start)"
    } else if message.contains("refusing insecure URL") {
        " (use https, or --allow-insecure-http for a test server you trust)"
    } else if message.contains("no refresh token") || message.contains("`invalid_grant`") {
        " (sign in again with `smart login --save`)"
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
            lint,
            allow_insecure_http,
        } => {
            let base = fhir_base
                .or(fhir_base_flag)
                .ok_or("give the FHIR base URL")?;
            discover::discover(&base, lint, allow_insecure_http)
        }
        Command::Token {
            fhir_base,
            client_id,
            key,
            scope,
            kid,
            alg,
            cache,
            cache_key_env,
            cache_key_file,
            json,
            verbose,
            no_lint,
            allow_insecure_http,
        } => token::token(&token::TokenArgs {
            fhir_base: &fhir_base,
            client_id: &client_id,
            key: &key,
            kid: kid.as_deref(),
            alg,
            scope: &scope,
            cache: cache.as_deref(),
            cache_key: store::KeySource {
                env: cache_key_env.as_deref(),
                file: cache_key_file.as_deref(),
            },
            json,
            verbose,
            lint: !no_lint,
            allow_insecure_http,
        }),
        Command::Scope {
            command: ScopeCommand::Explain { scopes, granted },
        } => scope::explain(&scopes, granted.as_deref()),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "smart", &mut std::io::stdout());
            Ok(())
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
            client,
            no_browser,
            port,
            timeout_secs,
            no_probe,
            json,
            save,
            session,
            store_key_env,
            store_key_file,
            no_lint,
            allow_insecure_http,
        } => login::login(&login::LoginArgs {
            fhir_base: fhir_base.as_deref(),
            launch_url: launch_url.as_deref(),
            scope: &scope,
            client: client_args(&client, Some(&client_id)),
            no_browser,
            port,
            timeout: std::time::Duration::from_secs(timeout_secs),
            probe: !no_probe,
            json,
            save: save.as_deref(),
            session: &session,
            store_key: store::KeySource {
                env: store_key_env.as_deref(),
                file: store_key_file.as_deref(),
            },
            lint: !no_lint,
            allow_insecure_http,
        }),
        Command::Refresh {
            from,
            session,
            store_key_env,
            store_key_file,
            fhir_base,
            client_id,
            scope,
            client,
            json,
            allow_insecure_http,
        } => login::refresh(&login::RefreshArgs {
            from: from.as_deref().unwrap_or(""),
            session: &session,
            store_key: store::KeySource {
                env: store_key_env.as_deref(),
                file: store_key_file.as_deref(),
            },
            fhir_base: fhir_base.as_deref(),
            client: client_args(&client, client_id.as_deref()),
            scope: scope.as_deref(),
            json,
            allow_insecure_http,
        }),
        Command::Inspect {
            input,
            from,
            session,
            store_key_env,
            store_key_file,
            show_secrets,
            json,
        } => inspect::inspect(&inspect::InspectArgs {
            input: input.as_deref(),
            from: from.as_deref(),
            session: &session,
            store_key: store::KeySource {
                env: store_key_env.as_deref(),
                file: store_key_file.as_deref(),
            },
            show_secrets,
            json,
        }),
        _ => Err("unreachable command".into()),
    }
}

fn client_args<'a>(c: &'a ClientOpts, client_id: Option<&'a str>) -> login::ClientArgs<'a> {
    login::ClientArgs {
        client_id,
        secret_env: c.secret_env.as_deref(),
        secret_stdin: c.secret_stdin,
        key: c.key.as_deref(),
        kid: c.kid.as_deref(),
        alg: c.alg,
        basic_form_encoded: c.basic_form_encoded,
    }
}

pub(crate) fn print_json(value: &serde_json::Value) -> CliResult {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}
