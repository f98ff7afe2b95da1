//! Private key loading (PEM PKCS#8 / SEC1 / PKCS#1, JWK), JWKS export and RFC 7638 `kid`s
//! (ASYM-01, ASYM-04). Bad inputs must give `Error::Key` with a clear message, never panic,
//! and never echo key material.

use serde_json::Value;
use smart_core::Error;
use smart_core::assertion::JwsAlgorithm;
use smart_core::entropy::DeterministicEntropy;
use smart_core::jwk::{PrivateKeyPem, SigningKey, jwk_thumbprint};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("fixtures/keys/", $name))
    };
}

const EC_P384_PKCS8: &str = fixture!("ec-p384-pkcs8.pem");
const EC_P384_SEC1: &str = fixture!("ec-p384-sec1.pem");
const EC_P384_SEC1_WITH_PARAMS: &str = fixture!("ec-p384-sec1-with-params.pem");
const EC_P384_PUBLIC: &str = fixture!("ec-p384-public.pem");
const EC_P384_ENCRYPTED: &str = fixture!("ec-p384-encrypted.pem");
const EC_P384_CERT: &str = fixture!("ec-p384-cert.pem");
const RSA_2048_PKCS8: &str = fixture!("rsa-2048-pkcs8.pem");
const RSA_2048_PKCS1: &str = fixture!("rsa-2048-pkcs1.pem");
const RSA_2048_PKCS1_ENCRYPTED: &str = fixture!("rsa-2048-pkcs1-encrypted.pem");
const RSA_2048_PUBLIC_PKCS1: &str = fixture!("rsa-2048-public-pkcs1.pem");
const RSA_1024: &str = fixture!("rsa-1024-pkcs8.pem");
const EC_P256_PKCS8: &str = fixture!("ec-p256-pkcs8.pem");
const EC_P256_SEC1: &str = fixture!("ec-p256-sec1.pem");
const ED25519: &str = fixture!("ed25519-pkcs8.pem");

const IG_ES384_PRIVATE: &str = include_str!("fixtures/ig/ES384.private.json");
const IG_ES384_PUBLIC: &str = include_str!("fixtures/ig/ES384.public.json");
const IG_RS384_PRIVATE: &str = include_str!("fixtures/ig/RS384.private.json");
const IG_RS384_PUBLIC: &str = include_str!("fixtures/ig/RS384.public.json");

/// Computed with OpenSSL + Python hashlib, independently of this crate (fixtures/keys/README.md).
const EC_P384_X: &str = "nvTpmIUsD7T1VwWFChMtc2ThE2jF13p07CKzz7hq7GI3Qs2HOuqSEXbQbxPFaUsP";
const EC_P384_Y: &str = "-V3Jqbi8axllPsvYm1kQRhl7IXwbnmIXr842ehPx5W3I8yj4XKAEUfdokX4uoM08";
const EC_P384_THUMBPRINT: &str = "6exx8gMIrWGTf_vTVtlR9xoeWp3x5F5GhbcNK8q27nc";
const RSA_2048_N: &str = "oVeluNTWfADY_QvqbFBhVIa08CaqdmV1aQNC2K3Pquk22NaB5KmnzZsSKkHSyNiApqdGMxbVE621lbZSiGkNl_RKVYgFNdK28HyEOg7xE7tiHjvaiAH0WM7zXxm8vp9bJVhUD_wa2e38WBBIXoDEwdsu-JELgl0T46cEo2vLU9Gdzqn8r2u2EubJIGdPMj4201SFMJ_066irNhIZ-zAJKPlvvPfCWKohMDdVJgvnHKuoTXmjxRZB4Ps1WoATTpxgSx_BXpNMdp9jmqdd90EMBD4Lrng8Q9YppfvcfgIDHhqYOMGfQ0bUuSZp1ZrwDz5d_2htQtLYh3umYUfkmqfZpw";
const RSA_2048_THUMBPRINT: &str = "dfGw6jjQttAWURH23D-iuzBTnbTPQlqjzzuuScrcQ3A";
const IG_ES384_THUMBPRINT: &str = "gpusNZnFRvG96B1APEttC6NcJetjhM0q2LJagnlW6Tc";
const IG_RS384_THUMBPRINT: &str = "I99tVmIhN2uhvx12lO4Zrjk9OhGDH6LvIyYALIZivws";

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// Every 12-character window of the base64 lines of a PEM body, and every JWK private member:
/// none may appear in an error or a `Debug` string.
fn secret_fragments(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in source
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.contains(':'))
    {
        let chars: Vec<char> = line.chars().collect();
        for w in chars.windows(12).step_by(6) {
            out.push(w.iter().collect());
        }
    }
    if let Ok(v) = serde_json::from_str::<Value>(source) {
        let entries = v
            .get("keys")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| vec![v.clone()]);
        for e in entries {
            for m in ["d", "p", "q", "dp", "dq", "qi"] {
                if let Some(s) = e.get(m).and_then(Value::as_str) {
                    out.push(s[..12.min(s.len())].to_owned());
                }
            }
        }
    }
    out
}

fn assert_no_leak(text: &str, source: &str) {
    for f in secret_fragments(source) {
        assert!(!text.contains(&f), "`{text}` leaks key material `{f}`");
    }
}

/// `from_pem` must fail with `Error::Key` whose message contains `needle` and leaks nothing.
fn pem_err(pem: &str, needle: &str) {
    let err = SigningKey::from_pem(pem).unwrap_err();
    let Error::Key(k) = &err else {
        panic!("expected Error::Key, got {err:?}")
    };
    assert!(
        k.message.contains(needle),
        "`{}` should mention `{needle}`",
        k.message
    );
    assert_no_leak(&err.to_string(), pem);
    assert_no_leak(&format!("{err:?}"), pem);
}

fn jwk_err(jwk: &str, needle: &str) {
    let err = SigningKey::from_jwk(jwk).unwrap_err();
    let Error::Key(k) = &err else {
        panic!("expected Error::Key, got {err:?}")
    };
    assert!(
        k.message.contains(needle),
        "`{}` should mention `{needle}`",
        k.message
    );
    assert_no_leak(&err.to_string(), jwk);
    assert_no_leak(&format!("{err:?}"), jwk);
}

#[test]
fn pkcs8_ec_p384_loads_with_openssl_public_point_and_thumbprint_kid() {
    let key = SigningKey::from_pem(EC_P384_PKCS8).unwrap();
    assert_eq!(key.algorithm(), JwsAlgorithm::Es384);
    let jwk = key.public_jwk();
    assert_eq!(jwk["x"], EC_P384_X);
    assert_eq!(jwk["y"], EC_P384_Y);
    assert_eq!(key.thumbprint(), EC_P384_THUMBPRINT);
    assert_eq!(
        key.kid(),
        EC_P384_THUMBPRINT,
        "default kid is the RFC 7638 thumbprint"
    );
}

#[test]
fn sec1_ec_p384_loads_same_key() {
    let key = SigningKey::from_pem(EC_P384_SEC1).unwrap();
    assert_eq!(key.thumbprint(), EC_P384_THUMBPRINT);
    // `openssl ecparam -genkey` output: EC PARAMETERS block first, then the key.
    let other = SigningKey::from_pem(EC_P384_SEC1_WITH_PARAMS)
        .unwrap()
        .with_kid("ec2")
        .unwrap();
    assert_eq!(other.algorithm(), JwsAlgorithm::Es384);
    assert_eq!(other.kid(), "ec2");
}

#[test]
fn pkcs8_and_pkcs1_rsa_load_same_key() {
    for pem in [RSA_2048_PKCS8, RSA_2048_PKCS1] {
        let key = SigningKey::from_pem(pem).unwrap().with_kid("k1").unwrap();
        assert_eq!(key.algorithm(), JwsAlgorithm::Rs384);
        assert_eq!(key.kid(), "k1");
        assert_eq!(key.public_jwk()["n"], RSA_2048_N);
        assert_eq!(key.public_jwk()["e"], "AQAB");
        assert_eq!(key.thumbprint(), RSA_2048_THUMBPRINT);
    }
}

#[test]
fn crlf_and_key_next_to_certificate_load() {
    let crlf = EC_P384_PKCS8.replace('\n', "\r\n");
    assert_eq!(
        SigningKey::from_pem(&crlf).unwrap().thumbprint(),
        EC_P384_THUMBPRINT
    );
    let bundle = format!("{EC_P384_CERT}{EC_P384_PKCS8}");
    assert_eq!(
        SigningKey::from_pem(&bundle).unwrap().thumbprint(),
        EC_P384_THUMBPRINT
    );
}

#[test]
fn bad_pem_inputs_are_clear_key_errors() {
    pem_err("", "no PEM block");
    pem_err("hello, I am not a key", "no PEM block");
    pem_err(IG_ES384_PRIVATE, "from_jwk");
    pem_err(EC_P384_CERT, "certificate");
    pem_err(EC_P384_PUBLIC, "public key");
    pem_err(RSA_2048_PUBLIC_PKCS1, "public key");
    pem_err(EC_P256_PKCS8, "P-256");
    pem_err(EC_P256_SEC1, "P-256");
    pem_err(RSA_1024, "1024 bits");
    pem_err(ED25519, "Ed25519");
    pem_err(EC_P384_ENCRYPTED, "encrypted");
    pem_err(RSA_2048_PKCS1_ENCRYPTED, "encrypted");
    pem_err(
        &format!("{EC_P384_PKCS8}{RSA_2048_PKCS8}"),
        "2 private keys",
    );
    // Truncated: BEGIN without END.
    let cut = &EC_P384_PKCS8[..EC_P384_PKCS8.len() / 2];
    pem_err(cut, "no matching END");
    pem_err(
        "-----BEGIN PRIVATE KEY-----\n!!!notbase64!!!\n-----END PRIVATE KEY-----\n",
        "base64",
    );
    pem_err(
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "PKCS#8",
    );
    pem_err(
        "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
        "SEC1",
    );
    pem_err(
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        "PKCS#1",
    );
    pem_err(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        "OpenSSH",
    );
    // A corrupted body (one base64 character changed in the middle of the DER) never panics.
    let mut bytes = RSA_2048_PKCS8.as_bytes().to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    let corrupted = String::from_utf8(bytes).unwrap();
    let _ = SigningKey::from_pem(&corrupted);
}

#[test]
fn empty_kid_is_a_config_error() {
    assert!(matches!(
        SigningKey::from_pem(EC_P384_PKCS8).unwrap().with_kid(""),
        Err(Error::Config(_))
    ));
}

#[test]
fn ig_private_jwks_match_ig_public_jwks() {
    // vectors.md §1: `d` matches the public members; we publish exactly the IG's public values.
    let es = SigningKey::from_jwk(IG_ES384_PRIVATE).unwrap();
    let es_pub = &json(IG_ES384_PUBLIC)["keys"][0];
    assert_eq!(es.public_jwk()["x"], es_pub["x"]);
    assert_eq!(es.public_jwk()["y"], es_pub["y"]);
    assert_eq!(es.public_jwk()["kid"], es_pub["kid"]);
    assert_eq!(es.thumbprint(), IG_ES384_THUMBPRINT);
    assert_eq!(jwk_thumbprint(es_pub).unwrap(), IG_ES384_THUMBPRINT);

    let rs = SigningKey::from_jwk(IG_RS384_PRIVATE).unwrap();
    let rs_pub = &json(IG_RS384_PUBLIC)["keys"][0];
    assert_eq!(rs.public_jwk()["n"], rs_pub["n"]);
    assert_eq!(rs.public_jwk()["e"], rs_pub["e"]);
    assert_eq!(rs.public_jwk()["kid"], rs_pub["kid"]);
    assert_eq!(rs.thumbprint(), IG_RS384_THUMBPRINT);
}

#[test]
fn single_private_jwk_and_prime_recovery() {
    // The private entry on its own; then without p/q/dp/dq/qi (primes recovered from d).
    let entry = json(IG_RS384_PRIVATE)["keys"][1].clone();
    let key = SigningKey::from_jwk(&entry.to_string()).unwrap();
    assert_eq!(key.kid(), "eee9f17a3b598fd86417a980b591fbe6");
    let mut bare = entry.as_object().unwrap().clone();
    for m in ["p", "q", "dp", "dq", "qi", "kid"] {
        bare.remove(m);
    }
    let bare = Value::Object(bare).to_string();
    if cfg!(feature = "rsa") {
        let key = SigningKey::from_jwk(&bare).unwrap();
        assert_eq!(
            key.kid(),
            IG_RS384_THUMBPRINT,
            "no kid in the JWK → thumbprint"
        );
    } else {
        // Recovering the primes is RSA arithmetic only the `rsa` crate offers here.
        jwk_err(&bare, "`rsa` feature");
    }
}

#[test]
fn bad_jwk_inputs_are_clear_key_errors() {
    jwk_err("", "not valid JSON");
    jwk_err("{\"kty\":", "not valid JSON");
    jwk_err("[1,2]", "JSON object");
    jwk_err(IG_ES384_PUBLIC, "no private key");
    jwk_err(&json(IG_ES384_PUBLIC)["keys"][0].to_string(), "public key");
    let es_priv = json(IG_ES384_PRIVATE)["keys"][1].clone();
    let rs_priv = json(IG_RS384_PRIVATE)["keys"][1].clone();
    let with = |base: &Value, name: &str, value: Value| {
        let mut o = base.as_object().unwrap().clone();
        o.insert(name.into(), value);
        Value::Object(o).to_string()
    };
    let without = |base: &Value, name: &str| {
        let mut o = base.as_object().unwrap().clone();
        o.remove(name);
        Value::Object(o).to_string()
    };
    let two = serde_json::json!({ "keys": [es_priv, rs_priv] }).to_string();
    jwk_err(&two, "2 private keys");
    jwk_err(&with(&es_priv, "crv", "P-256".into()), "P-256");
    jwk_err(&with(&es_priv, "kty", "OKP".into()), "OKP");
    jwk_err(&without(&es_priv, "kty"), "missing `kty`");
    jwk_err(&with(&es_priv, "alg", "ES256".into()), "ES256");
    jwk_err(&with(&rs_priv, "alg", "RS256".into()), "RS256");
    jwk_err(&with(&es_priv, "use", "enc".into()), "enc");
    jwk_err(&with(&es_priv, "d", "!!!".into()), "`d` is not base64url");
    jwk_err(&with(&es_priv, "d", 5.into()), "must be a string");
    jwk_err(&with(&es_priv, "d", "AAAA".into()), "48");
    // x from another P-384 key: public and private members disagree.
    jwk_err(&with(&es_priv, "x", EC_P384_X.into()), "does not match");
    jwk_err(&without(&rs_priv, "q"), "only one of");
    jwk_err(&without(&rs_priv, "n"), "missing `n`");
    // d of a different key with this n/e/p/q.
    let other_d = serde_json::json!("AQAB");
    jwk_err(&with(&rs_priv, "d", other_d), "inconsistent");
    // A 1024-bit modulus is refused before any arithmetic.
    let mut short = rs_priv.as_object().unwrap().clone();
    for m in ["p", "q", "dp", "dq", "qi"] {
        short.remove(m);
    }
    short.insert("n".into(), rs_priv["n"].as_str().unwrap()[..172].into());
    jwk_err(&Value::Object(short).to_string(), "1032 bits");
}

#[test]
fn public_jwk_has_only_public_members() {
    // ASYM-04: kty + kid + bare public members; d, p, q, dp, dq, qi never published.
    let es = SigningKey::from_pem(EC_P384_PKCS8)
        .unwrap()
        .with_kid("ec1")
        .unwrap();
    let jwk = es.public_jwk();
    let mut names: Vec<&String> = jwk.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(
        names,
        ["alg", "crv", "key_ops", "kid", "kty", "use", "x", "y"]
    );
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-384");
    assert_eq!(jwk["alg"], "ES384");
    assert_eq!(jwk["kid"], "ec1");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["key_ops"], serde_json::json!(["verify"]));

    let rs = SigningKey::from_jwk(IG_RS384_PRIVATE).unwrap();
    let jwk = rs.public_jwk();
    let mut names: Vec<&String> = jwk.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["alg", "e", "key_ops", "kid", "kty", "n", "use"]);
    assert_eq!(jwk["alg"], "RS384");
    assert_no_leak(&jwk.to_string(), IG_RS384_PRIVATE);

    let jwks = rs.public_jwks();
    assert_eq!(jwks, serde_json::json!({ "keys": [rs.public_jwk()] }));
}

#[test]
fn debug_never_shows_key_material() {
    for (key, source) in [
        (
            SigningKey::from_jwk(IG_ES384_PRIVATE).unwrap(),
            IG_ES384_PRIVATE,
        ),
        (
            SigningKey::from_jwk(IG_RS384_PRIVATE).unwrap(),
            IG_RS384_PRIVATE,
        ),
        (
            SigningKey::from_pem(EC_P384_PKCS8)
                .unwrap()
                .with_kid("ec1")
                .unwrap(),
            EC_P384_PKCS8,
        ),
    ] {
        let d = format!("{key:?}");
        assert!(d.starts_with("SigningKey { alg: \""), "{d}");
        assert!(d.contains(key.kid()), "{d}");
        assert_no_leak(&d, source);
        let pretty = format!("{key:#?}");
        assert_no_leak(&pretty, source);
    }
    let d = format!("{:?}", SigningKey::from_jwk(IG_ES384_PRIVATE).unwrap());
    assert_eq!(
        d,
        "SigningKey { alg: \"ES384\", kid: \"cd520211e5661dbba2256f67f6d53f97\", .. }"
    );
}

#[test]
fn pkcs8_pem_export_round_trips() {
    for key in [
        SigningKey::from_jwk(IG_ES384_PRIVATE).unwrap(),
        SigningKey::from_pem(RSA_2048_PKCS1).unwrap(),
    ] {
        let pem: PrivateKeyPem = key.to_pkcs8_pem().unwrap();
        assert!(pem.secret().starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(format!("{pem:?}"), "PrivateKeyPem([redacted])");
        let back = SigningKey::from_pem(pem.secret()).unwrap();
        assert_eq!(back.thumbprint(), key.thumbprint());
        assert_eq!(back.algorithm(), key.algorithm());
    }
    // The same type is reachable where the other secret wrappers live.
    let _: &smart_core::secret::PrivateKeyPem = &SigningKey::from_pem(EC_P384_PKCS8)
        .unwrap()
        .to_pkcs8_pem()
        .unwrap();
}

#[test]
fn generate_draws_only_from_injected_entropy() {
    // Same seed → same key; different seed → different key (no hidden OS randomness).
    let a = SigningKey::generate(JwsAlgorithm::Es384, None, &DeterministicEntropy::new(1)).unwrap();
    let b = SigningKey::generate(JwsAlgorithm::Es384, None, &DeterministicEntropy::new(1)).unwrap();
    let c = SigningKey::generate(JwsAlgorithm::Es384, None, &DeterministicEntropy::new(2)).unwrap();
    assert_eq!(a.thumbprint(), b.thumbprint());
    assert_ne!(a.thumbprint(), c.thumbprint());
    let rsa = SigningKey::generate(
        JwsAlgorithm::Rs384,
        Some("r1"),
        &DeterministicEntropy::new(1),
    )
    .unwrap();
    assert_eq!(rsa.kid(), "r1");
    let n = rsa.public_jwk()["n"].as_str().unwrap().to_owned();
    assert_eq!(
        n.len(),
        342,
        "2048-bit modulus = 256 bytes = 342 base64url characters"
    );
    assert!(matches!(
        SigningKey::generate(JwsAlgorithm::Es384, Some(""), &DeterministicEntropy::new(1)),
        Err(Error::Config(_))
    ));
}

#[test]
fn with_kid_renames() {
    let key = SigningKey::from_pem(EC_P384_PKCS8)
        .unwrap()
        .with_kid("2026-11")
        .unwrap();
    assert_eq!(key.kid(), "2026-11");
    assert_eq!(key.public_jwk()["kid"], "2026-11");
    assert_eq!(key.thumbprint(), EC_P384_THUMBPRINT);
}
