//! RFC 7523 `client_assertion` JWTs signed with `ES384` or `RS384` (SMART App Launch
//! "Client Authentication: Asymmetric (public key)").
//!
//! The client never needs a general JWT library: it only *produces* one compact JWS
//! (RFC 7515 §7.1) per token request. [`client_assertion`] builds the SMART header and claims
//! and signs them through an [`AssertionSigner`] (our [`SigningKey`](crate::jwk::SigningKey), or
//! a KMS/HSM plug-in); [`sign_compact`] signs caller-supplied header/payload bytes unchanged.
//!
//! # Local and remote signers
//!
//! A client holds its key as an [`AssertionKey`]:
//!
//! - [`AssertionKey::Local`]: an [`AssertionSigner`], called synchronously inside
//!   [`poll`](crate::flow::Flow::poll) (an in-memory key signs in well under a millisecond).
//! - [`AssertionKey::Remote`]: a [`RemoteSigner`] (a KMS, an HSM, a signing service) whose
//!   [`sign`](RemoteSigner::sign) returns a future. The flow fixes the assertion's claims
//!   (`jti`, `iat`, `exp`), hands the signing input to its driver as
//!   [`Action::Sign`](crate::flow::Action::Sign), and assembles the JWS when the driver reports
//!   the signature with [`handle_signature`](crate::flow::Flow::handle_signature). The driver
//!   awaits the future with no lock held, so other callers of a shared token source are never
//!   blocked by a slow signer.
//!
//! Nothing here reads a clock or the OS random generator: `now` is an argument and the `jti`
//! comes from the injected [`Entropy`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::entropy::{Entropy, random_base64url};
use crate::error::{Error, KeyError};
use crate::secret::ClientAssertion;
use crate::time::UnixTime;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The `client_assertion_type` form value for a JWT client assertion (RFC 7523 §2.2; IG
/// "Client Authentication: Asymmetric" and "Backend Services").
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest allowed assertion lifetime, in **seconds**: SMART requires `exp` to be "no more
/// than five minutes in the future" (IG "Client Authentication: Asymmetric", authentication
/// JWT claims).
pub const MAX_ASSERTION_LIFETIME_SECS: u64 = 300;

/// The lifetime used by [`AssertionClaims::new`] and the [`ClientAuth`](crate::client_auth::ClientAuth)
/// constructors, in **seconds** (`exp = now + 240`): a margin under the 300 s limit that
/// survives a server clock running up to a minute behind ours.
pub const DEFAULT_ASSERTION_LIFETIME_SECS: u64 = 240;

/// How far `iat` is set before `now` at most, in **seconds** (see [`client_assertion`]): a
/// server whose clock runs up to this much behind ours still sees `iat` in its past.
pub const ASSERTION_IAT_BACKDATE_SECS: u64 = 60;

/// Number of random bytes in a generated `jti` (256 bits, 43 base64url characters; RFC 7519
/// §4.1.7 asks for a negligible collision probability).
pub const JTI_BYTES: usize = 32;

/// A JWS signature algorithm (RFC 7518 §3.1) usable for SMART client assertions.
///
/// SMART clients SHALL support both. `ES384` is the recommended default: smaller
/// keys, faster signing, and no RSA timing advisory (RUSTSEC-2023-0071) to carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwsAlgorithm {
    /// `ES384`: ECDSA on P-384 with SHA-384; the signature is the 96-byte JOSE `R||S` form
    /// (RFC 7518 §3.4), never DER.
    Es384,
    /// `RS384`: RSASSA-PKCS1-v1_5 with SHA-384 (RFC 7518 §3.3), never PSS.
    Rs384,
}

impl JwsAlgorithm {
    /// The JOSE `alg` name: `"ES384"` or `"RS384"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Es384 => "ES384",
            Self::Rs384 => "RS384",
        }
    }

    /// The JWK key type (`kty`, RFC 7518 §6.1) this algorithm signs with: `"EC"` or `"RSA"`.
    pub const fn key_type(self) -> &'static str {
        match self {
            Self::Es384 => "EC",
            Self::Rs384 => "RSA",
        }
    }
}

impl std::fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JwsAlgorithm {
    type Err = Error;

    /// Parse a JOSE `alg` name. Names are case-sensitive (RFC 7515 §4.1.1).
    ///
    /// # Errors
    /// [`Error::Config`] for any name other than `ES384` or `RS384`.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "ES384" => Ok(Self::Es384),
            "RS384" => Ok(Self::Rs384),
            other => Err(Error::Config(format!(
                "unsupported JWS algorithm `{other}`: SMART client assertions use ES384 or RS384"
            ))),
        }
    }
}

/// Something that can sign a client assertion: a [`SigningKey`](crate::jwk::SigningKey) held in
/// memory, or a plug-in backed by a KMS or HSM.
///
/// Implementations must be `Debug` **without** printing key material.
pub trait AssertionSigner: Send + Sync + std::fmt::Debug {
    /// The JWS `alg` this signer produces.
    fn algorithm(&self) -> JwsAlgorithm;

    /// The `kid` placed in the JWS header; it must name this key in the JWKS registered with
    /// the server (RFC 7515 §4.1.4). Must not be empty.
    fn key_id(&self) -> &str;

    /// Sign `signing_input` (the ASCII bytes `BASE64URL(header) "." BASE64URL(payload)`).
    ///
    /// Returns the raw JWS signature bytes: for `ES384` exactly 96 bytes `R||S` (big-endian,
    /// 48 bytes each; **not** DER), for `RS384` the RSASSA-PKCS1-v1_5 SHA-384 signature (as long
    /// as the modulus). `entropy` is available for blinding or hedged signatures.
    ///
    /// # Errors
    /// [`Error::Key`] when the key cannot sign; [`Error::Entropy`] when randomness fails.
    fn sign(&self, signing_input: &[u8], entropy: &dyn Entropy) -> Result<Vec<u8>, Error>;
}

impl<S: AssertionSigner + ?Sized> AssertionSigner for std::sync::Arc<S> {
    fn algorithm(&self) -> JwsAlgorithm {
        (**self).algorithm()
    }
    fn key_id(&self) -> &str {
        (**self).key_id()
    }
    fn sign(&self, signing_input: &[u8], entropy: &dyn Entropy) -> Result<Vec<u8>, Error> {
        (**self).sign(signing_input, entropy)
    }
}

/// The future a [`RemoteSigner`] returns: the raw JWS signature, or why there is none.
///
/// Boxed, `Send` and `'static` so that any driver can hold it across `.await` points or move
/// it to another thread; `smart-core` itself never polls it (it has no runtime).
pub type SignFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, Error>> + Send + 'static>>;

/// A signer that answers asynchronously: a cloud KMS, an HSM behind a network hop, a signing
/// service (IG "Client Authentication: Asymmetric"; RFC 7523 §3).
///
/// Flows never call it: they emit [`Action::Sign`](crate::flow::Action::Sign) with a
/// [`SignRequest`](crate::sign::SignRequest), and the driver awaits [`sign`](Self::sign) with
/// no lock held. The output is what [`AssertionSigner::sign`] returns and is checked the same
/// way: for `ES384` exactly 96 bytes `R||S` with both halves in `1..n` (the JOSE form, RFC 7518
/// §3.4, **not** DER); for `RS384` the RSASSA-PKCS1-v1_5 SHA-384 signature, as long as the
/// modulus (256..=1024 bytes for the accepted 2048..=8192-bit keys, RFC 7518 §3.3). Anything
/// else becomes [`Error::Key`] in the flow, never a panic.
///
/// Implementations must be `Debug` **without** printing key material or credentials.
///
/// ```
/// use std::sync::Arc;
/// use smart_core::assertion::{AssertionSigner, JwsAlgorithm, RemoteSigner, SignFuture};
/// use smart_core::entropy::SystemEntropy;
/// use smart_core::jwk::SigningKey;
///
/// /// A stand-in for a KMS client: the key lives elsewhere; here, in a shared `SigningKey`.
/// #[derive(Debug)]
/// struct Kms(Arc<SigningKey>);
///
/// impl RemoteSigner for Kms {
///     fn algorithm(&self) -> JwsAlgorithm { self.0.algorithm() }
///     fn key_id(&self) -> &str { self.0.key_id() }
///     fn sign(&self, signing_input: Vec<u8>) -> SignFuture {
///         let key = self.0.clone();
///         // A real client would send `signing_input` (or its SHA-384 digest) over the network.
///         Box::pin(async move { key.sign(&signing_input, &SystemEntropy) })
///     }
/// }
/// ```
pub trait RemoteSigner: Send + Sync + std::fmt::Debug {
    /// The JWS `alg` this signer produces.
    fn algorithm(&self) -> JwsAlgorithm;

    /// The `kid` placed in the JWS header; it must name this key in the JWKS registered with
    /// the server (RFC 7515 §4.1.4). Must not be empty.
    fn key_id(&self) -> &str;

    /// Sign `signing_input` (the ASCII bytes `BASE64URL(header) "." BASE64URL(payload)`; it
    /// holds no secret). The future resolves to the raw signature bytes described on the
    /// trait.
    ///
    /// A signer that needs a particular async runtime (e.g. a tokio-based SDK client used from
    /// the blocking `smart-ureq` driver) must arrange that itself, e.g. by spawning the call on
    /// its own runtime and returning a future that awaits the result over a channel.
    ///
    /// # Errors
    /// The future resolves to [`Error::Key`] (or any other [`Error`]) when the signer cannot
    /// sign; the flow's attempt then ends with that error.
    fn sign(&self, signing_input: Vec<u8>) -> SignFuture;
}

/// The key a `private_key_jwt` client signs its assertions with: in memory (signed inside
/// `poll`), or behind a [`RemoteSigner`] (signed by the driver; see the
/// [module docs](self#local-and-remote-signers)).
///
/// `Debug` shows the kind, `alg` and `kid` only.
#[derive(Clone)]
#[non_exhaustive]
pub enum AssertionKey {
    /// A synchronous signer, e.g. a [`SigningKey`](crate::jwk::SigningKey).
    Local(Arc<dyn AssertionSigner>),
    /// An asynchronous signer (KMS, HSM): flows emit
    /// [`Action::Sign`](crate::flow::Action::Sign) for it.
    Remote(Arc<dyn RemoteSigner>),
}

impl AssertionKey {
    /// The JWS `alg` of the signer.
    pub fn algorithm(&self) -> JwsAlgorithm {
        match self {
            Self::Local(s) => s.algorithm(),
            Self::Remote(s) => s.algorithm(),
        }
    }

    /// The `kid` of the signer.
    pub fn key_id(&self) -> &str {
        match self {
            Self::Local(s) => s.key_id(),
            Self::Remote(s) => s.key_id(),
        }
    }

    /// Whether the signer is a [`RemoteSigner`].
    pub fn is_remote(&self) -> bool {
        matches!(self, Self::Remote(_))
    }
}

impl std::fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = if self.is_remote() { "Remote" } else { "Local" };
        f.debug_struct(name)
            .field("alg", &self.algorithm().as_str())
            .field("kid", &self.key_id())
            .finish()
    }
}

impl From<Arc<dyn AssertionSigner>> for AssertionKey {
    fn from(signer: Arc<dyn AssertionSigner>) -> Self {
        Self::Local(signer)
    }
}

impl From<Arc<dyn RemoteSigner>> for AssertionKey {
    fn from(signer: Arc<dyn RemoteSigner>) -> Self {
        Self::Remote(signer)
    }
}

/// What goes into one client assertion besides the key (RFC 7523 §3; IG "Client
/// Authentication: Asymmetric").
///
/// # Clock skew
/// The server checks `iat`, `exp` (and would check `nbf`) against *its* clock. With the
/// default lifetime of [`DEFAULT_ASSERTION_LIFETIME_SECS`] (240 s) the assertion carries
/// `iat = now − 60`, `exp = now + 240` and no `nbf`, so a server whose clock is up to 60 s
/// behind sees `iat` in its past and `exp` at most 300 s ahead, and one up to 60 s ahead (in
/// fact up to 239 s) still sees it unexpired. A longer lifetime spends that margin: `iat` is
/// backdated by `min(60, 300 − lifetime_secs)` seconds, so `exp − iat` never exceeds 300 s,
/// and a server may run behind by at most `300 − lifetime_secs` seconds (none at 300 s). A
/// server ahead by `lifetime_secs` or more sees the assertion expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssertionClaims<'a> {
    /// The registered `client_id`; becomes both `iss` and `sub`.
    pub client_id: &'a str,
    /// The `aud` claim: the token endpoint URL, byte for byte the URL the request is POSTed to
    /// (not the FHIR base, not the issuer).
    pub audience: &'a str,
    /// Seconds from `now` to `exp`; 1..=[`MAX_ASSERTION_LIFETIME_SECS`]. Above 240 it reduces
    /// the tolerated clock skew (see [Clock skew](Self#clock-skew)).
    pub lifetime_secs: u64,
    /// Optional `jku` header: the registered JWKS URL (RFC 7515 §4.1.2). Leave `None` when the
    /// JWKS was registered by value or you are unsure.
    pub jku: Option<&'a str>,
}

impl<'a> AssertionClaims<'a> {
    /// Claims for `client_id` and token URL `audience`, with lifetime
    /// [`DEFAULT_ASSERTION_LIFETIME_SECS`] and no `jku`.
    pub const fn new(client_id: &'a str, audience: &'a str) -> Self {
        Self {
            client_id,
            audience,
            lifetime_secs: DEFAULT_ASSERTION_LIFETIME_SECS,
            jku: None,
        }
    }
}

/// The JOSE header; member order `alg, kid, typ, jku` (order is irrelevant to verifiers).
#[derive(serde::Serialize)]
struct Header<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    jku: Option<&'a str>,
}

/// The claims set (RFC 7523 §3; `iat` is optional there but widely expected; no `nbf`).
#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    jti: &'a str,
}

/// Mint a fresh, signed `client_assertion` (RFC 7523 §2.2 and §3; IG "Client Authentication:
/// Asymmetric", authentication JWT header and claims).
///
/// - Header: `{"alg":…,"kid":…,"typ":"JWT"}`, plus `"jku"` when `claims.jku` is set.
/// - Claims, times in integer seconds since the epoch: `iss` = `sub` = `client_id`, `aud` =
///   `claims.audience` verbatim, `exp` = `now + lifetime_secs`,
///   `iat` = `now − min(`[`ASSERTION_IAT_BACKDATE_SECS`]`, 300 − lifetime_secs)` (with the
///   default lifetime: `iat = now − 60`, `exp = now + 240`), no `nbf`, and `jti` = 32 bytes
///   from `entropy`, base64url (256 bits; different on every call). See
///   [`AssertionClaims`](AssertionClaims#clock-skew) for the server clock skew this tolerates.
///
/// Call it once per HTTP attempt: an assertion is single-use and servers reject a replayed
/// `jti`.
///
/// # Errors
/// - [`Error::Config`] if `lifetime_secs` is 0 or above [`MAX_ASSERTION_LIFETIME_SECS`],
///   `client_id` is empty, `audience` is not an absolute URL, `jku` is not an `https` (or
///   loopback `http`) URL, or the signer's `kid` is empty.
/// - [`Error::Entropy`] if the `jti` cannot be drawn; whatever the signer returns otherwise.
pub fn client_assertion(
    signer: &dyn AssertionSigner,
    claims: &AssertionClaims<'_>,
    now: UnixTime,
    entropy: &dyn Entropy,
) -> Result<ClientAssertion, Error> {
    let unsigned =
        UnsignedAssertion::new(signer.algorithm(), signer.key_id(), claims, now, entropy)?;
    let signature = signer.sign(unsigned.signing_input().as_bytes(), entropy)?;
    unsigned.complete(&signature)
}

/// A client assertion whose header and claims are fixed (`jti`, `iat` and `exp` included),
/// waiting for its signature: what a flow keeps while a [`RemoteSigner`] signs.
#[derive(Clone, Debug)]
pub(crate) struct UnsignedAssertion {
    alg: JwsAlgorithm,
    /// `BASE64URL(header) "." BASE64URL(payload)`.
    signing_input: String,
    /// When the claims were fixed.
    made_at: UnixTime,
    /// The `exp` claim.
    expires_at: UnixTime,
}

impl UnsignedAssertion {
    /// Validate `claims`, draw the `jti` and fix header and claims as [`client_assertion`]
    /// describes.
    pub(crate) fn new(
        alg: JwsAlgorithm,
        kid: &str,
        claims: &AssertionClaims<'_>,
        now: UnixTime,
        entropy: &dyn Entropy,
    ) -> Result<Self, Error> {
        if claims.lifetime_secs == 0 || claims.lifetime_secs > MAX_ASSERTION_LIFETIME_SECS {
            return Err(Error::Config(format!(
                "client assertion lifetime must be 1..={MAX_ASSERTION_LIFETIME_SECS} seconds \
                 (SMART: exp no more than five minutes ahead), got {}",
                claims.lifetime_secs
            )));
        }
        if claims.client_id.is_empty() {
            return Err(Error::Config(
                "client assertion needs a non-empty client_id".into(),
            ));
        }
        match url::Url::parse(claims.audience) {
            Ok(u) if !u.cannot_be_a_base() => {}
            _ => {
                return Err(Error::Config(format!(
                    "client assertion `aud` must be the absolute token endpoint URL, got `{}`",
                    claims.audience
                )));
            }
        }
        if let Some(jku) = claims.jku {
            let ok = url::Url::parse(jku).is_ok_and(|u| crate::http::is_secure_or_loopback(&u));
            if !ok {
                return Err(Error::Config(format!(
                    "client assertion `jku` must be the registered https JWKS URL, got `{jku}`"
                )));
            }
        }
        if kid.is_empty() {
            return Err(Error::Config("assertion signer has an empty `kid`".into()));
        }
        let jti = random_base64url(entropy, JTI_BYTES)?;
        let header = Header {
            alg: alg.as_str(),
            kid,
            typ: "JWT",
            jku: claims.jku,
        };
        let expires_at = now.plus_secs(claims.lifetime_secs);
        let body = Claims {
            iss: claims.client_id,
            sub: claims.client_id,
            aud: claims.audience,
            exp: expires_at.as_secs(),
            // Backdated so that a server clock behind ours still sees `iat` in its past, while
            // `exp − iat` stays within the 300 s limit.
            iat: now
                .minus_secs(
                    ASSERTION_IAT_BACKDATE_SECS
                        .min(MAX_ASSERTION_LIFETIME_SECS - claims.lifetime_secs),
                )
                .as_secs(),
            jti: &jti,
        };
        let header_json = serde_json::to_vec(&header)
            .map_err(|_| Error::Misuse("assertion header serialization failed"))?;
        let payload_json = serde_json::to_vec(&body)
            .map_err(|_| Error::Misuse("assertion claims serialization failed"))?;
        Ok(Self {
            alg,
            signing_input: signing_input(&header_json, &payload_json),
            made_at: now,
            expires_at,
        })
    }

    pub(crate) fn alg(&self) -> JwsAlgorithm {
        self.alg
    }

    pub(crate) fn signing_input(&self) -> &str {
        &self.signing_input
    }

    /// When the claims were fixed.
    pub(crate) fn made_at(&self) -> UnixTime {
        self.made_at
    }

    /// The `exp` claim.
    pub(crate) fn expires_at(&self) -> UnixTime {
        self.expires_at
    }

    /// The assertion signed with `signature`, after [`check_signature`].
    pub(crate) fn complete(self, signature: &[u8]) -> Result<ClientAssertion, Error> {
        check_signature(self.alg, signature)?;
        let mut jws = self.signing_input;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
        Ok(ClientAssertion::new(jws))
    }
}

/// `BASE64URL(header_json) "." BASE64URL(payload_json)` (RFC 7515 §7.1).
fn signing_input(header_json: &[u8], payload_json: &[u8]) -> String {
    let mut jws = String::with_capacity((header_json.len() + payload_json.len()) * 4 / 3 + 360);
    URL_SAFE_NO_PAD.encode_string(header_json, &mut jws);
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(payload_json, &mut jws);
    jws
}

/// Whether `signature` has the shape of a raw JWS signature for `alg`: `ES384`, 96 bytes
/// `R||S` with `R` and `S` in `1..n` (RFC 7518 §3.4; a DER signature is refused); `RS384`,
/// 256..=1024 bytes (a 2048..=8192-bit modulus, RFC 7518 §3.3), not all zero.
///
/// # Errors
/// [`Error::Key`] naming what is wrong (never the signature bytes).
pub(crate) fn check_signature(alg: JwsAlgorithm, signature: &[u8]) -> Result<(), Error> {
    let err = |m: String| Err(KeyError::new(m).into());
    if signature.is_empty() {
        return err("signer returned an empty signature".into());
    }
    match alg {
        JwsAlgorithm::Es384 if signature.len() != 96 => err(format!(
            "ES384 signer returned a {}-byte signature; JWS needs the raw 96-byte R||S form, \
             not DER (RFC 7518 §3.4)",
            signature.len()
        )),
        JwsAlgorithm::Es384 => match p384::ecdsa::Signature::from_slice(signature) {
            Ok(_) => Ok(()),
            Err(_) => err(
                "ES384 signer returned 96 bytes that are not an R||S pair with R and S in 1..n"
                    .into(),
            ),
        },
        JwsAlgorithm::Rs384 => {
            let bytes = crate::jwk::MIN_RSA_BITS / 8..=crate::jwk::MAX_RSA_BITS / 8;
            if !bytes.contains(&signature.len()) {
                return err(format!(
                    "RS384 signer returned a {}-byte signature; an RSASSA-PKCS1-v1_5 signature \
                     is as long as the modulus, {}..={} bytes (RFC 7518 §3.3)",
                    signature.len(),
                    bytes.start(),
                    bytes.end()
                ));
            }
            if signature.iter().all(|&b| b == 0) {
                return err("RS384 signer returned an all-zero signature".into());
            }
            Ok(())
        }
    }
}

/// Low level: the compact JWS `BASE64URL(header_json) "." BASE64URL(payload_json) "."
/// BASE64URL(signature)` (RFC 7515 §7.1, base64url without padding) over **exactly** the given
/// bytes. Nothing is parsed or re-serialized, so a known header/payload reproduces a known
/// token byte for byte (the IG's RS384 example does).
///
/// The result is not wrapped in [`ClientAssertion`]: use [`client_assertion`] for real requests.
///
/// # Errors
/// Whatever the signer returns, and [`Error::Key`] when the signature does not have the shape
/// its algorithm requires: an `ES384` signature that is not 96 bytes `R||S` with both halves
/// in `1..n` (e.g. a DER-encoded one; RFC 7518 §3.4), an `RS384` signature that is not
/// 256..=1024 bytes long or is all zero, or an empty one.
pub fn sign_compact(
    signer: &dyn AssertionSigner,
    header_json: &[u8],
    payload_json: &[u8],
    entropy: &dyn Entropy,
) -> Result<String, Error> {
    let mut jws = signing_input(header_json, payload_json);
    let signature = signer.sign(jws.as_bytes(), entropy)?;
    check_signature(signer.algorithm(), &signature)?;
    jws.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut jws);
    Ok(jws)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DeterministicEntropy;

    #[derive(Debug)]
    struct Fixed(JwsAlgorithm, usize);
    impl AssertionSigner for Fixed {
        fn algorithm(&self) -> JwsAlgorithm {
            self.0
        }
        fn key_id(&self) -> &str {
            "k1"
        }
        fn sign(&self, _: &[u8], _: &dyn Entropy) -> Result<Vec<u8>, Error> {
            Ok(vec![7; self.1])
        }
    }

    #[test]
    fn alg_names_round_trip() {
        for a in [JwsAlgorithm::Es384, JwsAlgorithm::Rs384] {
            assert_eq!(a.as_str().parse::<JwsAlgorithm>().unwrap(), a);
            assert_eq!(a.to_string(), a.as_str());
        }
        assert!(matches!(
            "es384".parse::<JwsAlgorithm>(),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            "HS256".parse::<JwsAlgorithm>(),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn der_length_es384_signature_is_refused_b22() {
        let e = DeterministicEntropy::new(0);
        let err = sign_compact(&Fixed(JwsAlgorithm::Es384, 103), b"{}", b"{}", &e).unwrap_err();
        assert!(
            matches!(&err, Error::Key(k) if k.message.contains("not DER")),
            "{err}"
        );
        assert!(sign_compact(&Fixed(JwsAlgorithm::Es384, 96), b"{}", b"{}", &e).is_ok());
        assert!(sign_compact(&Fixed(JwsAlgorithm::Rs384, 0), b"{}", b"{}", &e).is_err());
    }

    #[test]
    fn config_checks() {
        let e = DeterministicEntropy::new(0);
        let s = Fixed(JwsAlgorithm::Es384, 96);
        let now = UnixTime::from_secs(1_700_000_000);
        let good = AssertionClaims::new("c-123", "https://ehr.example.org/oauth2/token");
        assert!(client_assertion(&s, &good, now, &e).is_ok());
        for bad in [
            AssertionClaims {
                lifetime_secs: 0,
                ..good
            },
            AssertionClaims {
                lifetime_secs: 301,
                ..good
            },
            AssertionClaims {
                client_id: "",
                ..good
            },
            AssertionClaims {
                audience: "/oauth2/token",
                ..good
            },
            AssertionClaims {
                jku: Some("http://app.example.org/jwks.json"),
                ..good
            },
        ] {
            assert!(
                matches!(client_assertion(&s, &bad, now, &e), Err(Error::Config(_))),
                "{bad:?}"
            );
        }
        let with_jku = AssertionClaims {
            jku: Some("https://app.example.org/jwks.json"),
            ..good
        };
        assert!(client_assertion(&s, &with_jku, now, &e).is_ok());
    }
}
