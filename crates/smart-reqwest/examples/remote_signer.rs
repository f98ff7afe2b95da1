//! SMART Backend Services with the private key behind a remote signer (a KMS or HSM), with the
//! async adapter: the token source fixes each `client_assertion`'s claims, hands the signing
//! input to the driver (`Action::Sign`), and the driver awaits the signer without holding the
//! token source's lock or blocking the runtime (RFC 7523 §3; IG "Client Authentication:
//! Asymmetric").
//!
//! The "KMS" here is simulated in process: a task that owns the key and answers signing
//! requests over a channel, as a network client for a real KMS would (for AWS KMS, for
//! example, `Sign` with `ECDSA_SHA_384`, then convert its DER signature to the 96-byte `R||S`
//! form JWS needs).
//!
//! Environment (as for the `backend_services_async` example):
//!
//! | variable | meaning |
//! |---|---|
//! | `SMART_FHIR_BASE` | FHIR base URL (endpoints are discovered from its `.well-known/smart-configuration`) |
//! | `SMART_CLIENT_ID` | the registered `client_id` |
//! | `SMART_KEY_FILE` | PKCS#8 PEM private key (ES384 or RS384), loaded into the simulated KMS |
//! | `SMART_SCOPE` | scopes to request, e.g. `system/Patient.rs` |
//! | `SMART_FHIR_PATH` | optional, default `Patient/123` |
//!
//! ```sh
//! SMART_FHIR_BASE=$base/fhir SMART_CLIENT_ID=example-bs SMART_KEY_FILE=/tmp/key.pem \
//!   SMART_SCOPE=system/Patient.rs cargo run -p smart-reqwest --example remote_signer
//! ```
//!
//! The token itself is never printed.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use smart_core::assertion::{AssertionSigner, JwsAlgorithm, RemoteSigner, SignFuture};
use smart_core::backend::BackendServicesConfig;
use smart_core::entropy::SystemEntropy;
use smart_core::error::KeyError;
use smart_core::jwk::SigningKey;
use smart_core::{ClientId, Error, FhirBaseUrl, HttpRequest};
use smart_reqwest::{BackendServicesAuth, HttpClient};
use tokio::sync::{mpsc, oneshot};

const USAGE: &str = "usage: SMART_FHIR_BASE=… SMART_CLIENT_ID=… SMART_KEY_FILE=key.pem \
SMART_SCOPE='system/Patient.rs' [SMART_FHIR_PATH=Patient/123] \
cargo run -p smart-reqwest --example remote_signer";

/// One signing request to the simulated KMS.
type Job = (Vec<u8>, oneshot::Sender<Result<Vec<u8>, Error>>);

/// A client for the simulated KMS: the key stays in the KMS task; only the algorithm and the
/// key id are known here.
#[derive(Debug)]
struct KmsClient {
    alg: JwsAlgorithm,
    kid: String,
    jobs: mpsc::Sender<Job>,
    calls: Arc<AtomicUsize>,
}

impl KmsClient {
    /// Start the KMS task, which owns `key`, and return a client for it.
    fn start(key: SigningKey) -> Self {
        let (jobs, mut rx) = mpsc::channel::<Job>(16);
        let (alg, kid) = (key.algorithm(), key.kid().to_owned());
        tokio::spawn(async move {
            while let Some((input, reply)) = rx.recv().await {
                // A real KMS answers over the network; this one signs in place.
                let _ = reply.send(key.sign(&input, &SystemEntropy));
            }
        });
        Self {
            alg,
            kid,
            jobs,
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl RemoteSigner for KmsClient {
    fn algorithm(&self) -> JwsAlgorithm {
        self.alg
    }

    fn key_id(&self) -> &str {
        &self.kid
    }

    fn sign(&self, signing_input: Vec<u8>) -> SignFuture {
        let jobs = self.jobs.clone();
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let gone = || Error::Key(KeyError::new("the KMS task is not running"));
            let (reply, answer) = oneshot::channel();
            jobs.send((signing_input, reply))
                .await
                .map_err(|_| gone())?;
            answer.await.map_err(|_| gone())?
        })
    }
}

struct Settings {
    fhir_base: String,
    client_id: String,
    key_file: String,
    scope: String,
    path: String,
}

impl Settings {
    fn from_env() -> Option<Self> {
        let var = |name: &str| {
            let v = std::env::var(name).ok().filter(|v| !v.is_empty());
            if v.is_none() && name != "SMART_FHIR_PATH" {
                eprintln!("missing environment variable {name}");
            }
            v
        };
        Some(Self {
            fhir_base: var("SMART_FHIR_BASE")?,
            client_id: var("SMART_CLIENT_ID")?,
            key_file: var("SMART_KEY_FILE")?,
            scope: var("SMART_SCOPE")?,
            path: var("SMART_FHIR_PATH").unwrap_or_else(|| "Patient/123".to_owned()),
        })
    }
}

/// A token signed by the KMS, then a FHIR read with it. Returns the status and body.
async fn run(s: &Settings) -> Result<(u16, String), Box<dyn std::error::Error>> {
    let pem = std::fs::read_to_string(&s.key_file)
        .map_err(|e| format!("cannot read SMART_KEY_FILE {}: {e}", s.key_file))?;
    let kms = KmsClient::start(SigningKey::from_pem(&pem)?);
    let calls = kms.calls.clone();
    let alg = kms.alg;
    let fhir_base = FhirBaseUrl::new(&s.fhir_base)?;
    let config = BackendServicesConfig::new_with_remote_signer(
        ClientId::new(&s.client_id),
        &s.scope,
        Arc::new(kms),
    )
    .with_fhir_base(fhir_base.clone());
    let auth = Arc::new(BackendServicesAuth::new(config)?);

    let started = Instant::now();
    let token = auth.token().await?;
    println!(
        "token: type {}, expires_in {:?}, scope {:?}; {} assertion(s) signed remotely ({alg}) in {} ms",
        token.token_type,
        token.expires_in,
        token.scope,
        calls.load(Ordering::SeqCst),
        started.elapsed().as_millis()
    );

    let url = fhir_base.append(&s.path)?;
    let mut request = HttpRequest::get_json(url);
    request.headers.push((
        "authorization".into(),
        auth.authorization().await?.secret().to_owned(),
    ));
    let response = HttpClient::new()?.send(request).await?;
    Ok((
        response.status,
        String::from_utf8_lossy(&response.body).into_owned(),
    ))
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(settings) = Settings::from_env() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(&settings).await {
        Ok((status, body)) => {
            println!("GET {} -> {status}", settings.path);
            println!("{body}");
            if (200..300).contains(&status) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
