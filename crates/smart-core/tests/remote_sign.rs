//! Scripted conversations with a remote (KMS/HSM-style) signer: every flow that authenticates
//! with `private_key_jwt` emits `Action::Sign`, waits for `handle_signature`, then sends a
//! request byte-identical to the one a local signer produces (RFC 7523 §2.2, §3; IG "Client
//! Authentication: Asymmetric"). Time is fixed by hand and entropy is deterministic.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{T0, form, jwt_part, ready, send};

use smart_core::assertion::{
    AssertionKey, AssertionSigner, CLIENT_ASSERTION_TYPE, JwsAlgorithm, RemoteSigner, SignFuture,
};
use smart_core::backend::{BackendServices, BackendServicesConfig};
use smart_core::client_auth::ClientAuth;
use smart_core::discovery::SmartConfiguration;
use smart_core::entropy::{DeterministicEntropy, Entropy};
use smart_core::error::KeyError;
use smart_core::http::Purpose;
use smart_core::introspection::{
    IntrospectionAuth, TokenTypeHint, introspect, introspection_request, revocation_request, revoke,
};
use smart_core::launch::{AppConfig, CodeExchange, PendingAuthorization};
use smart_core::refresh::{refresh, refresh_request};
use smart_core::secret::{AccessToken, CsrfToken, PkceCodeVerifier, RefreshToken};
use smart_core::session::Session;
use smart_core::sign::{MAX_LATE_SIGNATURES, REMOTE_SIGN_MARGIN_SECS};
use smart_core::token::parse_token_response;
use smart_core::{
    Action, ClientId, Error, FhirBaseUrl, Flow, HttpRequest, HttpResponse, SignRequest, UnixTime,
};
use url::Url;

const TOKEN_URL: &str = "https://ehr.example.org/oauth2/token";
const INTROSPECT_URL: &str = "https://ehr.example.org/oauth2/introspect";
const REVOKE_URL: &str = "https://ehr.example.org/oauth2/revoke";
const SCOPE: &str = "system/Patient.rs";
const REDIRECT: &str = "https://app.example.org/cb";

/// A valid-shaped ES384 signature: R and S both 0x0707…07, inside 1..n.
fn es384_sig() -> Vec<u8> {
    vec![7; 96]
}

/// A remote signer that answers from a script (default: [`es384_sig`]) and records every
/// signing input it was given.
#[derive(Debug)]
struct Scripted {
    alg: JwsAlgorithm,
    answers: Mutex<VecDeque<Result<Vec<u8>, Error>>>,
    inputs: Mutex<Vec<Vec<u8>>>,
}

impl Scripted {
    fn new(alg: JwsAlgorithm) -> Arc<Self> {
        Arc::new(Self {
            alg,
            answers: Mutex::new(VecDeque::new()),
            inputs: Mutex::new(Vec::new()),
        })
    }

    fn then(self: &Arc<Self>, answer: Result<Vec<u8>, Error>) -> Arc<Self> {
        self.answers.lock().unwrap().push_back(answer);
        self.clone()
    }

    fn inputs(&self) -> Vec<Vec<u8>> {
        self.inputs.lock().unwrap().clone()
    }
}

impl RemoteSigner for Scripted {
    fn algorithm(&self) -> JwsAlgorithm {
        self.alg
    }
    fn key_id(&self) -> &str {
        "kms-1"
    }
    fn sign(&self, signing_input: Vec<u8>) -> SignFuture {
        self.inputs.lock().unwrap().push(signing_input);
        let answer = self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Ok(es384_sig()));
        Box::pin(std::future::ready(answer))
    }
}

/// The same fixed signature from a local signer, for comparing requests.
#[derive(Debug)]
struct LocalFixed;

impl AssertionSigner for LocalFixed {
    fn algorithm(&self) -> JwsAlgorithm {
        JwsAlgorithm::Es384
    }
    fn key_id(&self) -> &str {
        "kms-1"
    }
    fn sign(&self, _: &[u8], _: &dyn Entropy) -> Result<Vec<u8>, Error> {
        Ok(es384_sig())
    }
}

/// The signing request of a `Sign`, or a panic naming what came instead.
#[track_caller]
fn sign_req<T: std::fmt::Debug>(a: Action<T>) -> SignRequest {
    match a {
        Action::Sign(r) => r,
        other => panic!("expected Sign, got {other:?}"),
    }
}

/// Run the signer's future as a driver would (these futures are ready at once).
fn run_sign(req: &SignRequest) -> Result<Vec<u8>, Error> {
    let mut fut = req.sign();
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r,
        Poll::Pending => panic!("scripted signers answer at once"),
    }
}

fn token_url() -> Url {
    Url::parse(TOKEN_URL).unwrap()
}

fn backend(signer: AssertionKey) -> BackendServices {
    let config = match signer {
        AssertionKey::Local(s) => BackendServicesConfig::new(ClientId::new("c-123"), SCOPE, s),
        AssertionKey::Remote(s) => {
            BackendServicesConfig::new_with_remote_signer(ClientId::new("c-123"), SCOPE, s)
        }
        _ => unreachable!(),
    }
    .with_smart_configuration(SmartConfiguration::new(token_url()));
    BackendServices::new(config, Arc::new(DeterministicEntropy::new(42))).unwrap()
}

fn token(access: &str, expires_in: u64) -> HttpResponse {
    HttpResponse::new(200, common::token_body(access, Some(expires_in), None))
}

fn assertion(req: &HttpRequest) -> String {
    form(req, "client_assertion").expect("client_assertion")
}

#[test]
fn backend_request_after_handle_signature_is_byte_identical_to_the_local_one() {
    let local_req = send(
        backend(AssertionKey::Local(Arc::new(LocalFixed)))
            .poll(T0)
            .unwrap(),
    );

    let signer = Scripted::new(JwsAlgorithm::Es384);
    let mut m = backend(AssertionKey::Remote(signer.clone()));
    let req = sign_req(m.poll(T0).unwrap());
    assert_eq!(req.algorithm(), JwsAlgorithm::Es384);
    assert_eq!(req.key_id(), "kms-1");
    assert_eq!(req.purpose(), Purpose::TokenRequest);
    assert_eq!(req.client_id(), "c-123");
    assert_eq!(req.made_at(), T0);
    assert_eq!(req.sign_by(), T0.plus_secs(240 - REMOTE_SIGN_MARGIN_SECS));

    // The signing input is the local assertion's header and claims, byte for byte.
    let local_jwt = assertion(&local_req);
    let (local_input, local_sig) = local_jwt.rsplit_once('.').unwrap();
    assert_eq!(req.signing_input(), local_input.as_bytes());
    assert_eq!(local_sig, URL_SAFE_NO_PAD.encode(es384_sig()));
    let claims = jwt_part(local_input, 1);
    assert_eq!(claims["iss"], "c-123");
    assert_eq!(claims["sub"], "c-123");
    assert_eq!(claims["aud"], TOKEN_URL);
    assert_eq!(claims["iat"], T0.as_secs() - 60);
    assert_eq!(claims["exp"], T0.as_secs() + 240);
    assert_eq!(
        jwt_part(local_input, 0),
        serde_json::json!({"alg": "ES384", "kid": "kms-1", "typ": "JWT"})
    );

    // Signing takes a second; nothing is sent before the signature arrives.
    let signature = run_sign(&req).unwrap();
    assert_eq!(signer.inputs(), vec![local_input.as_bytes().to_vec()]);
    m.handle_signature(Ok(signature), T0.plus_secs(1)).unwrap();
    let sent = send(m.poll(T0.plus_secs(1)).unwrap());
    assert_eq!(sent, local_req, "same URL, headers, body and context");
    assert_eq!(
        String::from_utf8(sent.body.clone()).unwrap(),
        format!(
            "grant_type=client_credentials&scope=system%2FPatient.rs&client_assertion_type={}\
             &client_assertion={local_jwt}",
            smart_core::http::form_encode(CLIENT_ASSERTION_TYPE)
        )
    );
    assert_eq!(form(&sent, "client_id"), None);

    m.handle_response(token("S1", 300), T0.plus_secs(1))
        .unwrap();
    assert_eq!(
        ready(m.poll(T0.plus_secs(2)).unwrap())
            .access_token
            .secret(),
        "S1"
    );
}

#[test]
fn while_the_signer_works_other_callers_wait_or_keep_the_valid_token() {
    let signer = Scripted::new(JwsAlgorithm::Es384);
    let mut m = backend(AssertionKey::Remote(signer.clone()));
    // Cold cache: the holder gets Sign, every other caller WaitForFlight.
    let req = sign_req(m.poll(T0).unwrap());
    assert!(matches!(m.poll(T0), Ok(Action::WaitForFlight)));
    assert!(m.is_fetching());
    m.handle_signature(run_sign(&req), T0).unwrap();
    send(m.poll(T0).unwrap());
    m.handle_response(token("S1", 300), T0).unwrap();

    // Inside the skew window: the holder signs a renewal, others keep S1 meanwhile.
    let later = T0.plus_secs(280);
    let renewal = sign_req(m.poll(later).unwrap());
    for _ in 0..3 {
        assert_eq!(ready(m.poll(later).unwrap()).access_token.secret(), "S1");
    }
    m.handle_signature(run_sign(&renewal), later).unwrap();
    let sent = send(m.poll(later).unwrap());
    assert_eq!(sent.context.attempt, 1);
    m.handle_response(token("S2", 300), later).unwrap();
    assert_eq!(ready(m.poll(later).unwrap()).access_token.secret(), "S2");
    assert_eq!(signer.inputs().len(), 2);
}

#[test]
fn a_malformed_signature_is_a_typed_key_error_and_the_valid_token_is_kept() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![7; 95], "95-byte signature"),
        (vec![7; 103], "not DER"),
        (vec![0; 96], "not an R||S pair"),
        (vec![0xff; 96], "not an R||S pair"),
        (Vec::new(), "empty signature"),
    ];
    for (bad, message) in cases {
        let signer = Scripted::new(JwsAlgorithm::Es384);
        let mut m = backend(AssertionKey::Remote(signer.clone()));
        let req = sign_req(m.poll(T0).unwrap());
        m.handle_signature(run_sign(&req), T0).unwrap();
        send(m.poll(T0).unwrap());
        m.handle_response(token("S1", 300), T0).unwrap();

        let later = T0.plus_secs(280);
        sign_req(m.poll(later).unwrap());
        let err = m.handle_signature(Ok(bad.clone()), later).unwrap_err();
        assert!(
            matches!(&err, Error::Key(k) if k.message.contains(message)),
            "{} bytes: {err}",
            bad.len()
        );
        // No token lost: the still-valid S1 is handed out during the backoff, no request made.
        assert_eq!(ready(m.poll(later).unwrap()).access_token.secret(), "S1");
        assert!(!m.is_fetching());
        // A signature for nothing pending is misuse and changes nothing.
        assert_eq!(
            m.handle_signature(Ok(es384_sig()), later),
            Err(Error::Misuse(
                "handle_signature called with no signature pending"
            ))
        );
    }
}

#[test]
fn rs384_signatures_must_be_modulus_sized() {
    for (len, ok) in [
        (256, true),
        (384, true),
        (512, true),
        (255, false),
        (1025, false),
    ] {
        let signer = Scripted::new(JwsAlgorithm::Rs384);
        let mut m = backend(AssertionKey::Remote(signer));
        let req = sign_req(m.poll(T0).unwrap());
        assert_eq!(req.algorithm(), JwsAlgorithm::Rs384);
        assert_eq!(
            jwt_part(std::str::from_utf8(req.signing_input()).unwrap(), 0)["alg"],
            "RS384"
        );
        let r = m.handle_signature(Ok(vec![1; len]), T0);
        assert_eq!(r.is_ok(), ok, "{len}: {r:?}");
        if ok {
            let sent = send(m.poll(T0).unwrap());
            let sig = assertion(&sent).rsplit_once('.').unwrap().1.to_owned();
            assert_eq!(URL_SAFE_NO_PAD.decode(sig).unwrap(), vec![1; len]);
        } else {
            assert!(
                matches!(&r, Err(Error::Key(k)) if k.message.contains("256..=1024 bytes")),
                "{r:?}"
            );
        }
    }
    let mut m = backend(AssertionKey::Remote(Scripted::new(JwsAlgorithm::Rs384)));
    sign_req(m.poll(T0).unwrap());
    let err = m.handle_signature(Ok(vec![0; 256]), T0).unwrap_err();
    assert!(
        matches!(&err, Error::Key(k) if k.message.contains("all-zero")),
        "{err}"
    );
}

#[test]
fn the_signers_own_error_ends_the_attempt_unchanged() {
    let kms_down = Error::Key(KeyError::new("KMS answered 503"));
    let signer = Scripted::new(JwsAlgorithm::Es384).then(Err(kms_down.clone()));
    let mut m = backend(AssertionKey::Remote(signer));
    let req = sign_req(m.poll(T0).unwrap());
    assert_eq!(
        m.handle_signature(run_sign(&req), T0),
        Err(kms_down.clone())
    );
    // Backing off: the same error, no new signature, until the backoff ends.
    assert_eq!(m.poll(T0).unwrap_err(), kms_down);
    let after = T0.plus_secs(3600);
    let again = sign_req(m.poll(after).unwrap());
    assert_eq!(again.made_at(), after);
}

#[test]
fn a_late_signature_is_discarded_and_the_assertion_made_anew() {
    let signer = Scripted::new(JwsAlgorithm::Es384);
    let mut m = backend(AssertionKey::Remote(signer.clone()));
    let first = sign_req(m.poll(T0).unwrap());
    let deadline = first.sign_by();
    assert_eq!(deadline, T0.plus_secs(180));

    // Exactly at the deadline is still in time; one millisecond later is not.
    let late = deadline.plus_millis(1);
    m.handle_signature(run_sign(&first), late).unwrap();
    let second = sign_req(m.poll(late).unwrap());
    assert_ne!(
        second.signing_input(),
        first.signing_input(),
        "new jti and times"
    );
    let input = std::str::from_utf8(second.signing_input()).unwrap();
    let claims = jwt_part(input, 1);
    assert_eq!(claims["iat"], late.as_secs() - 60);
    assert_eq!(claims["exp"], late.as_secs() + 240);
    assert_ne!(
        claims["jti"],
        jwt_part(std::str::from_utf8(first.signing_input()).unwrap(), 1)["jti"]
    );

    m.handle_signature(run_sign(&second), second.sign_by())
        .unwrap();
    let sent = send(m.poll(second.sign_by()).unwrap());
    let jwt = assertion(&sent);
    assert!(
        jwt.starts_with(input),
        "the second assertion is the one sent"
    );
    assert_eq!(signer.inputs().len(), 2);
}

#[test]
fn a_second_late_signature_ends_the_attempt_with_a_key_error() {
    assert_eq!(MAX_LATE_SIGNATURES, 1);
    let mut m = backend(AssertionKey::Remote(Scripted::new(JwsAlgorithm::Es384)));
    let first = sign_req(m.poll(T0).unwrap());
    let t1 = first.sign_by().plus_secs(5);
    m.handle_signature(run_sign(&first), t1).unwrap();
    let second = sign_req(m.poll(t1).unwrap());
    let t2 = second.sign_by().plus_secs(5);
    let err = m.handle_signature(run_sign(&second), t2).unwrap_err();
    assert!(
        matches!(&err, Error::Key(k) if k.message.contains("after the assertion's deadline 2 times")
            && k.message.contains("185 s after")),
        "{err}"
    );
    // The next attempt (after the backoff) may be late once again before failing.
    let t3 = t2.plus_secs(3600);
    let third = sign_req(m.poll(t3).unwrap());
    m.handle_signature(run_sign(&third), third.sign_by().plus_secs(1))
        .unwrap();
    sign_req(m.poll(third.sign_by().plus_secs(1)).unwrap());
}

#[test]
fn abort_while_signing_forgets_the_assertion_and_signs_again() {
    let signer = Scripted::new(JwsAlgorithm::Es384);
    let mut m = backend(AssertionKey::Remote(signer.clone()));
    let first = sign_req(m.poll(T0).unwrap());
    m.abort();
    assert!(!m.is_fetching());
    assert_eq!(
        m.handle_signature(Ok(es384_sig()), T0),
        Err(Error::Misuse(
            "handle_signature called with no signature pending"
        ))
    );
    let second = sign_req(m.poll(T0).unwrap());
    assert_ne!(second.signing_input(), first.signing_input());
    m.handle_signature(run_sign(&second), T0).unwrap();
    assert!(
        assertion(&send(m.poll(T0).unwrap()))
            .starts_with(std::str::from_utf8(second.signing_input()).unwrap())
    );
}

#[test]
fn reporting_the_wrong_outcome_while_signing_is_misuse_and_keeps_the_signature_pending() {
    let mut m = backend(AssertionKey::Remote(Scripted::new(JwsAlgorithm::Es384)));
    let req = sign_req(m.poll(T0).unwrap());
    assert!(matches!(
        m.handle_response(token("S1", 300), T0),
        Err(Error::Misuse(_))
    ));
    m.handle_signature(run_sign(&req), T0).unwrap();
    send(m.poll(T0).unwrap());
    assert!(matches!(
        m.handle_signature(Ok(es384_sig()), T0),
        Err(Error::Misuse(_))
    ));
    // Flows that never sign refuse a signature.
    let mut d = smart_core::discovery::Discovery::new(
        FhirBaseUrl::new("https://ehr.example.org/fhir").unwrap(),
    );
    assert_eq!(
        d.handle_signature(Ok(es384_sig()), T0),
        Err(Error::Misuse("this flow requests no signatures"))
    );
}

#[test]
fn sign_request_debug_is_terse() {
    let mut m = backend(AssertionKey::Remote(Scripted::new(JwsAlgorithm::Es384)));
    let req = sign_req(m.poll(T0).unwrap());
    let debug = format!("{req:?}");
    assert_eq!(
        debug,
        format!(
            "SignRequest {{ alg: \"ES384\", kid: \"kms-1\", purpose: \"token\", input_bytes: {}, \
             sign_by: {:?} }}",
            req.signing_input().len(),
            req.sign_by()
        )
    );
    let input = std::str::from_utf8(req.signing_input()).unwrap();
    assert!(!debug.contains(input.split('.').nth(1).unwrap()));
    assert_eq!(
        format!(
            "{:?}",
            AssertionKey::Remote(Scripted::new(JwsAlgorithm::Rs384))
        ),
        "Remote { alg: \"RS384\", kid: \"kms-1\" }"
    );
    let auth = ClientAuth::asymmetric_remote("c-1", Scripted::new(JwsAlgorithm::Es384));
    assert!(
        format!("{auth:?}").contains("remote_signer: true"),
        "{auth:?}"
    );
    let local = ClientAuth::asymmetric("c-1", Arc::new(LocalFixed));
    assert!(!format!("{local:?}").contains("remote"), "{local:?}");
}

// ---- The one-shot flows and the session --------------------------------------------------------

fn remote_auth(signer: &Arc<Scripted>) -> ClientAuth {
    ClientAuth::asymmetric_remote("app-1", signer.clone())
}

fn exchange(auth: ClientAuth) -> CodeExchange {
    let app = AppConfig::new(auth, REDIRECT, "launch/patient openid")
        .unwrap()
        .with_entropy(Arc::new(DeterministicEntropy::new(9)));
    PendingAuthorization {
        state: CsrfToken::new("S1"),
        code_verifier: PkceCodeVerifier::new("v".repeat(43)),
        redirect_uri: REDIRECT.into(),
        fhir_base: FhirBaseUrl::new("https://ehr.example.org/fhir").unwrap(),
        issuer: None,
        token_endpoint: token_url().into(),
        client_id: ClientId::new("app-1"),
        scope: "launch/patient openid".into(),
        launch: None,
        created_at: T0,
        require_iss: false,
    }
    .callback(&app, &format!("{REDIRECT}?code=C0DE&state=S1"))
    .unwrap()
    .exchange
}

#[test]
fn code_exchange_signs_before_the_code_leaves_and_abort_while_signing_is_harmless() {
    let signer = Scripted::new(JwsAlgorithm::Es384);
    let mut flow = exchange(remote_auth(&signer));
    let first = sign_req(flow.poll(T0).unwrap());
    assert_eq!(first.purpose(), Purpose::CodeExchange);
    assert!(matches!(flow.poll(T0), Err(Error::Misuse(_))));
    // Abandoned while signing: the code never left, so the next poll just signs again.
    flow.abort();
    let second = sign_req(flow.poll(T0).unwrap());
    assert_ne!(second.signing_input(), first.signing_input());
    flow.handle_signature(run_sign(&second), T0).unwrap();
    let req = send(flow.poll(T0).unwrap());

    let local = send(
        exchange(ClientAuth::asymmetric("app-1", Arc::new(LocalFixed)))
            .poll(T0)
            .unwrap(),
    );
    let names = |r: &HttpRequest| {
        r.form_fields()
            .into_iter()
            .map(|(k, _)| k)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&req), names(&local));
    assert_eq!(form(&req, "code").as_deref(), Some("C0DE"));
    assert_eq!(form(&req, "client_id"), None);
    let claims = jwt_part(&assertion(&req), 1);
    assert_eq!(claims["aud"], TOKEN_URL);
    assert_eq!(claims["iss"], "app-1");

    let body = common::token_body("A1", Some(3600), Some("R1"));
    flow.handle_response(HttpResponse::new(200, body), T0)
        .unwrap();
    assert_eq!(ready(flow.poll(T0).unwrap()).access_token.secret(), "A1");
}

#[test]
fn code_exchange_signer_failure_finishes_the_flow_without_sending_the_code() {
    let down = Error::Key(KeyError::new("HSM offline"));
    let signer = Scripted::new(JwsAlgorithm::Es384).then(Err(down.clone()));
    let mut flow = exchange(remote_auth(&signer));
    let req = sign_req(flow.poll(T0).unwrap());
    assert_eq!(flow.handle_signature(run_sign(&req), T0), Err(down.clone()));
    assert_eq!(flow.poll(T0).unwrap_err(), down);
}

#[test]
fn refresh_introspection_and_revocation_sign_with_their_own_audience() {
    let signer = Scripted::new(JwsAlgorithm::Es384);
    let entropy: Arc<dyn Entropy> = Arc::new(DeterministicEntropy::new(3));
    let auth = remote_auth(&signer);
    let cases: Vec<(Box<dyn DynFlow>, Purpose, &str)> = vec![
        (
            Box::new(refresh(
                auth.clone(),
                token_url(),
                RefreshToken::new("R1"),
                Some("patient/Patient.rs".into()),
                false,
                entropy.clone(),
            )),
            Purpose::Refresh,
            TOKEN_URL,
        ),
        (
            Box::new(introspect(
                Url::parse(INTROSPECT_URL).unwrap(),
                AccessToken::new("A1"),
                Some(TokenTypeHint::AccessToken),
                IntrospectionAuth::Client(auth.clone()),
                false,
                entropy.clone(),
            )),
            Purpose::Introspection,
            INTROSPECT_URL,
        ),
        (
            Box::new(revoke(
                Url::parse(REVOKE_URL).unwrap(),
                AccessToken::new("A1"),
                None,
                auth,
                false,
                entropy,
            )),
            Purpose::Revocation,
            REVOKE_URL,
        ),
    ];
    for (mut flow, purpose, aud) in cases {
        let req = sign_req(flow.poll_any(T0));
        assert_eq!(req.purpose(), purpose);
        let input = std::str::from_utf8(req.signing_input()).unwrap().to_owned();
        assert_eq!(jwt_part(&input, 1)["aud"], aud);
        assert!(matches!(flow.poll_result(T0), Err(Error::Misuse(_))));
        // Abort while signing: the next poll signs again.
        flow.abort_any();
        let req = sign_req(flow.poll_any(T0));
        flow.handle_signature_any(run_sign(&req), T0).unwrap();
        let sent = send(flow.poll_any(T0));
        assert_eq!(sent.url.as_str(), aud);
        assert_eq!(sent.context.purpose, purpose);
        assert!(assertion(&sent).starts_with(std::str::from_utf8(req.signing_input()).unwrap()));
        assert_eq!(form(&sent, "client_id"), None);
    }
}

/// The three one-shot flows behind one object-safe face, outputs erased.
trait DynFlow {
    fn poll_result(&mut self, now: UnixTime) -> Result<Action<()>, Error>;
    fn poll_any(&mut self, now: UnixTime) -> Action<()> {
        self.poll_result(now).unwrap()
    }
    fn handle_signature_any(
        &mut self,
        s: Result<Vec<u8>, Error>,
        now: UnixTime,
    ) -> Result<(), Error>;
    fn abort_any(&mut self);
}

impl<F: Flow> DynFlow for F {
    fn poll_result(&mut self, now: UnixTime) -> Result<Action<()>, Error> {
        Ok(match self.poll(now)? {
            Action::Ready(_) => Action::Ready(()),
            Action::Send(r) => Action::Send(r),
            Action::Sign(r) => Action::Sign(r),
            Action::Store(op) => Action::Store(op),
            Action::WaitUntil(t) => Action::WaitUntil(t),
            Action::WaitForFlight => Action::WaitForFlight,
        })
    }
    fn handle_signature_any(
        &mut self,
        s: Result<Vec<u8>, Error>,
        now: UnixTime,
    ) -> Result<(), Error> {
        self.handle_signature(s, now)
    }
    fn abort_any(&mut self) {
        self.abort();
    }
}

#[test]
fn a_session_refreshes_with_a_remote_signer() {
    let signer = Scripted::new(JwsAlgorithm::Es384);
    let app = AppConfig::new(
        remote_auth(&signer),
        REDIRECT,
        "launch/patient offline_access",
    )
    .unwrap()
    .with_entropy(Arc::new(DeterministicEntropy::new(5)));
    let first = parse_token_response(
        &HttpResponse::new(200, common::token_body("A1", Some(300), Some("R1"))),
        &token_url(),
        T0,
    )
    .unwrap();
    let base = FhirBaseUrl::new("https://ehr.example.org/fhir").unwrap();
    let mut s = Session::new(&app, base, token_url(), first, T0);
    assert_eq!(ready(s.poll(T0).unwrap()).access_token.secret(), "A1");

    let later = T0.plus_secs(290);
    let req = sign_req(s.poll(later).unwrap());
    assert_eq!(req.purpose(), Purpose::Refresh);
    assert_eq!(ready(s.poll(later).unwrap()).access_token.secret(), "A1");
    s.handle_signature(run_sign(&req), later).unwrap();
    let sent = send(s.poll(later).unwrap());
    assert_eq!(form(&sent, "grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(form(&sent, "refresh_token").as_deref(), Some("R1"));
    assert_eq!(
        form(&sent, "client_assertion_type").as_deref(),
        Some(CLIENT_ASSERTION_TYPE)
    );
    s.handle_response(
        HttpResponse::new(200, common::token_body("A2", Some(300), None)),
        later,
    )
    .unwrap();
    let t = ready(s.poll(later).unwrap());
    assert_eq!(t.access_token.secret(), "A2");
    assert_eq!(t.refresh_token.as_ref().map(|r| r.secret()), Some("R1"));
}

#[test]
fn the_synchronous_builders_refuse_a_remote_signer_and_leave_the_request_untouched() {
    let auth = remote_auth(&Scripted::new(JwsAlgorithm::Es384));
    let entropy = DeterministicEntropy::new(0);
    let mut fields = vec![
        ("grant_type".to_owned(), "refresh_token".to_owned()),
        ("client_id".to_owned(), "stale".to_owned()),
    ];
    let mut headers = vec![("authorization".to_owned(), "Basic x".to_owned())];
    let before = (fields.clone(), headers.clone());
    let err = auth
        .apply(&mut fields, &mut headers, token_url(), T0, &entropy)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("remote signer")),
        "{err}"
    );
    assert_eq!((fields, headers), before);

    let e = refresh_request(
        &auth,
        token_url(),
        &RefreshToken::new("R1"),
        None,
        false,
        T0,
        &entropy,
    );
    assert!(matches!(e, Err(Error::Config(_))), "{e:?}");
    let endpoint = Url::parse(INTROSPECT_URL).unwrap();
    let e = introspection_request(
        &endpoint,
        "A1",
        None,
        &IntrospectionAuth::Client(auth.clone()),
        false,
        T0,
        &entropy,
    );
    assert!(matches!(e, Err(Error::Config(_))), "{e:?}");
    let e = revocation_request(&endpoint, "A1", None, &auth, false, T0, &entropy);
    assert!(matches!(e, Err(Error::Config(_))), "{e:?}");
}

#[test]
fn a_remote_signer_backed_by_a_real_key_produces_a_verifiable_assertion() {
    /// The KMS stand-in: the key is elsewhere; the future signs with it.
    #[derive(Debug)]
    struct KeyBacked(Arc<smart_core::jwk::SigningKey>);
    impl RemoteSigner for KeyBacked {
        fn algorithm(&self) -> JwsAlgorithm {
            self.0.algorithm()
        }
        fn key_id(&self) -> &str {
            self.0.key_id()
        }
        fn sign(&self, input: Vec<u8>) -> SignFuture {
            let key = self.0.clone();
            Box::pin(async move { key.sign(&input, &DeterministicEntropy::new(8)) })
        }
    }
    let key = common::es384_key();
    let mut m = backend(AssertionKey::Remote(Arc::new(KeyBacked(key.clone()))));
    let req = sign_req(m.poll(T0).unwrap());
    m.handle_signature(run_sign(&req), T0).unwrap();
    let jwt = assertion(&send(m.poll(T0).unwrap()));
    assert_eq!(jwt_part(&jwt, 0)["kid"], "k1");
    // An independent verifier (ring), against the key's public JWK.
    let jwk = key.public_jwk();
    let coord = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    let mut point = vec![0x04];
    point.extend(coord("x"));
    point.extend(coord("y"));
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P384_SHA384_FIXED, point)
        .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
        .expect("the remote-signed assertion verifies");
}
