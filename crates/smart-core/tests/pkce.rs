//! PKCE S256 (RFC 7636; AUTHZ-07) and `state` (AUTHZ-05).

use smart_core::entropy::DeterministicEntropy;
use smart_core::pkce::{
    CODE_CHALLENGE_METHOD, code_challenge_s256, generate_code_verifier, generate_state,
    is_valid_code_verifier,
};
use smart_core::secret::PkceCodeVerifier;

#[test]
fn ig_pkce_vector() {
    // vectors.md §3 (all three App Launch examples).
    let verifier = PkceCodeVerifier::new(
        "o28xyrYY7-lGYfnKwRjHEZWlFIPlzVnFPYMWbH-g_BsNnQNem-IAg9fDh92X0KtvHCPO5_C-RJd2QhApKQ-2cRp-S_W3qmTidTEPkeWyniKQSF9Q_k10Q5wMc8fGzoyF",
    );
    assert!(is_valid_code_verifier(verifier.secret()));
    assert_eq!(
        code_challenge_s256(&verifier),
        "YPXe7B8ghKrj8PsT4L6ltupgI12NQJ5vblB07F4rGaw"
    );
    assert_eq!(CODE_CHALLENGE_METHOD, "S256");
}

#[test]
fn rfc7636_appendix_b_vector() {
    let verifier = PkceCodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    assert_eq!(
        code_challenge_s256(&verifier),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[test]
fn generated_verifier_is_43_chars_from_32_bytes() {
    // DeterministicEntropy(0) yields bytes 0..=31.
    let v = generate_code_verifier(&DeterministicEntropy::new(0)).unwrap();
    assert_eq!(v.secret(), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
    assert!(is_valid_code_verifier(v.secret()));
    let e = DeterministicEntropy::new(0);
    let a = generate_code_verifier(&e).unwrap();
    let b = generate_code_verifier(&e).unwrap();
    assert_ne!(a, b, "fresh per call");
    assert_eq!(code_challenge_s256(&a).len(), 43);
    assert_eq!(format!("{a:?}"), "PkceCodeVerifier([redacted])");
}

#[test]
fn authz05_state_has_256_bits() {
    let e = DeterministicEntropy::new(100);
    let s1 = generate_state(&e).unwrap();
    let s2 = generate_state(&e).unwrap();
    assert_eq!(s1.secret().len(), 43); // 32 bytes ≥ 122 bits required
    assert_ne!(s1, s2);
    assert!(
        s1.secret()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
}

#[cfg(feature = "getrandom")]
#[test]
fn system_entropy_values_differ() {
    let e = smart_core::entropy::SystemEntropy;
    assert_ne!(generate_state(&e).unwrap(), generate_state(&e).unwrap());
    assert_ne!(
        generate_code_verifier(&e).unwrap(),
        generate_code_verifier(&e).unwrap()
    );
}

#[test]
fn verifier_syntax() {
    assert!(!is_valid_code_verifier(&"a".repeat(42)));
    assert!(is_valid_code_verifier(&"a".repeat(43)));
    assert!(is_valid_code_verifier(&"a".repeat(128)));
    assert!(!is_valid_code_verifier(&"a".repeat(129)));
    assert!(!is_valid_code_verifier(&format!("{}+", "a".repeat(43))));
    assert!(is_valid_code_verifier(&format!("{}~.", "a".repeat(43))));
}
