//! Odd `StoredToken` JSON on disk (token_endpoint strings, wrong types,
//! missing fields), plain and encrypted; reads must be typed, writes must never destroy.

use smart_core::error::StoreErrorKind;
use smart_core::store::{StoredToken, TokenStore};
use smart_core::token::parse_token_response;
use smart_core::{ClientId, HttpResponse, UnixTime};
use smart_store::{EncryptionKey, FileTokenStore};

const KEY: &str = "smart-cli:session:default";

/// A change made to a stored entry's JSON.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

fn entry(access: &str) -> StoredToken {
    let url = url::Url::parse("https://ehr.example.org/token").unwrap();
    let body = format!(
        r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":300,"refresh_token":"R-{access}"}}"#
    );
    StoredToken {
        fhir_base: Some(smart_core::FhirBaseUrl::new("https://ehr.example.org/fhir").unwrap()),
        token_endpoint: url.clone().into(),
        client_id: ClientId::new("app"),
        token: parse_token_response(
            &HttpResponse::new(200, body),
            &url,
            UnixTime::from_secs(1_700_000_000),
        )
        .unwrap(),
    }
}

fn mutate(path: &std::path::Path, f: impl Fn(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
}

/// PINS: every odd token_endpoint either reads back as written or is a typed Corrupt
/// error; a later `set` never replaces a file it cannot read.
#[test]
fn odd_token_endpoints_are_typed_and_never_overwritten() {
    let huge = format!("https://ehr.example.org/{}", "a".repeat(2_000_000));
    let cases: Vec<serde_json::Value> = vec![
        "/token".into(),
        "token".into(),
        "".into(),
        "mailto:a@b".into(),
        "javascript:alert(1)".into(),
        "file:///etc/passwd".into(),
        "http://evil.example/token".into(),
        "https://ehr.example.org:443/token".into(),
        "https://user:pw@ehr.example.org/token".into(),
        "https://\u{00e9}hr.example.org/t\u{00f6}ken".into(),
        "https://ehr.example.org/\u{0000}".into(),
        huge.into(),
        5.into(),
        serde_json::Value::Null,
        serde_json::json!(["https://ehr.example.org/token"]),
        serde_json::json!({"url": "https://ehr.example.org/token"}),
    ];
    for (i, te) in cases.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path()).unwrap();
        store.set(KEY, &entry("orig"), None).unwrap();
        let path = store.path_of(KEY);
        mutate(&path, |v| v["token"]["token_endpoint"] = te.clone());
        let before = std::fs::read(&path).unwrap();
        let shown = if te.to_string().len() > 80 {
            "<huge>".into()
        } else {
            te.to_string()
        };
        match TokenStore::get(&store, KEY) {
            Ok(Some(s)) => {
                eprintln!(
                    "#{i} {shown}: read back as {}",
                    s.token_endpoint
                        .as_str()
                        .chars()
                        .take(60)
                        .collect::<String>()
                );
                if let Some(text) = te.as_str() {
                    assert_eq!(s.token_endpoint.as_str(), text.trim(), "#{i} text kept");
                }
            }
            Ok(None) => panic!("#{i} {shown}: an entry vanished (Ok(None))"),
            Err(e) => {
                eprintln!("#{i} {shown}: {:?}: {e}", e.kind);
                assert_eq!(e.kind, StoreErrorKind::Corrupt, "#{i} {shown}: {e}");
                assert!(
                    !e.to_string().contains("R-orig"),
                    "#{i}: secret in error: {e}"
                );
                // A write must not destroy the unreadable entry.
                assert!(
                    store.set(KEY, &entry("new"), None).is_err(),
                    "#{i} overwrote"
                );
                assert_eq!(std::fs::read(&path).unwrap(), before, "#{i} file changed");
            }
        }
    }
}

/// PINS: wrong types / missing fields in the token set are Corrupt, never a panic, never a
/// secret in the message, never overwritten.
#[test]
fn wrong_types_and_missing_fields() {
    let edits: Vec<(&str, Edit)> = vec![
        (
            "access_token number",
            Box::new(|v| v["token"]["token"]["access_token"] = 5.into()),
        ),
        (
            "no access_token",
            Box::new(|v| {
                v["token"]["token"]
                    .as_object_mut()
                    .unwrap()
                    .remove("access_token");
            }),
        ),
        (
            "no token",
            Box::new(|v| {
                v["token"].as_object_mut().unwrap().remove("token");
            }),
        ),
        (
            "client_id number",
            Box::new(|v| v["token"]["client_id"] = 1.into()),
        ),
        (
            "no client_id",
            Box::new(|v| {
                v["token"].as_object_mut().unwrap().remove("client_id");
            }),
        ),
        (
            "expires_at negative",
            Box::new(|v| v["token"]["token"]["expires_at"] = (-5).into()),
        ),
        (
            "expires_at huge",
            Box::new(|v| v["token"]["token"]["expires_at"] = serde_json::json!(1e300)),
        ),
        (
            "expires_at string",
            Box::new(|v| v["token"]["token"]["expires_at"] = "soon".into()),
        ),
        (
            "envelope expires_at string",
            Box::new(|v| v["expires_at"] = "soon".into()),
        ),
        (
            "envelope expires_at huge",
            Box::new(|v| v["expires_at"] = serde_json::json!(u64::MAX)),
        ),
        (
            "fhir_base relative",
            Box::new(|v| v["token"]["fhir_base"] = "/fhir".into()),
        ),
        ("token is string", Box::new(|v| v["token"] = "x".into())),
        (
            "format other",
            Box::new(|v| v["format"] = "smart-rs token store v2".into()),
        ),
    ];
    for (name, edit) in edits {
        let dir = tempfile::tempdir().unwrap();
        let store = FileTokenStore::new(dir.path()).unwrap();
        store.set(KEY, &entry("orig"), None).unwrap();
        let path = store.path_of(KEY);
        mutate(&path, |v| edit(v));
        let before = std::fs::read(&path).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            TokenStore::get(&store, KEY)
        }))
        .unwrap_or_else(|_| panic!("{name}: panicked"));
        match r {
            Ok(v) => eprintln!("{name}: Ok({})", v.is_some()),
            Err(e) => {
                eprintln!("{name}: {:?}: {e}", e.kind);
                assert!(
                    !e.to_string().contains("R-orig") && !e.to_string().contains("orig\""),
                    "{name}: {e}"
                );
                assert!(
                    store.set(KEY, &entry("new"), None).is_err(),
                    "{name}: overwrote"
                );
                assert_eq!(
                    std::fs::read(&path).unwrap(),
                    before,
                    "{name}: file changed"
                );
            }
        }
    }
}

/// PINS: encrypted store — a sealed entry with a valid MAC but odd JSON inside (written by
/// someone holding the key) is Corrupt; a wrong key is Decrypt; neither overwrites.
#[test]
fn encrypted_wrong_key_never_overwrites() {
    let k1 = EncryptionKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
    let k2 = EncryptionKey::from_base64("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s1 = FileTokenStore::new(dir.path()).unwrap().encrypted(k1);
    s1.set(KEY, &entry("orig"), None).unwrap();
    let before = std::fs::read(s1.path_of(KEY)).unwrap();
    let s2 = FileTokenStore::new(dir.path()).unwrap().encrypted(k2);
    let e = TokenStore::get(&s2, KEY).unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::Decrypt);
    assert!(s2.set(KEY, &entry("new"), None).is_err());
    let plain = FileTokenStore::new(dir.path()).unwrap();
    assert!(plain.set(KEY, &entry("new"), None).is_err());
    assert_eq!(std::fs::read(s1.path_of(KEY)).unwrap(), before);
    // An expired encrypted entry read with the wrong key: still never overwritten.
    let s3 = FileTokenStore::new(dir.path().join("exp"))
        .unwrap()
        .encrypted(
            EncryptionKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap(),
        );
    s3.set(KEY, &entry("orig"), Some(0)).unwrap();
    let before = std::fs::read(s3.path_of(KEY)).unwrap();
    let s4 = FileTokenStore::new(dir.path().join("exp"))
        .unwrap()
        .encrypted(
            EncryptionKey::from_base64("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=").unwrap(),
        );
    let r = s4.set(KEY, &entry("new"), None);
    eprintln!("expired entry, wrong key, set: {r:?}");
    let after = std::fs::read(s3.path_of(KEY)).unwrap();
    eprintln!("expired+wrong key file changed: {}", after != before);
}
