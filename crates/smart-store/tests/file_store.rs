//! The file store: round trips (plain and encrypted), permissions, expiry, corrupt and foreign
//! files left untouched, wrong keys, leases, and four processes writing at once.

use std::path::Path;
use std::process::Command;

use smart_core::error::StoreErrorKind;
use smart_core::store::{StoredToken, TokenStore};
use smart_core::token::parse_token_response;
use smart_core::{ClientId, HttpResponse, UnixTime};
use smart_store::{EncryptionKey, FileTokenStore};

const KEY: &str = "smart-bs:https%3A%2F%2Fehr%2Fauth%2Ftoken:bs-app:system%2FPatient.rs";

fn entry(access: &str) -> StoredToken {
    let url = url::Url::parse("https://ehr.example.org/token").unwrap();
    let body = format!(
        r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":300,"scope":"system/Patient.rs"}}"#
    );
    StoredToken {
        fhir_base: None,
        token_endpoint: url.clone().into(),
        client_id: ClientId::new("bs-app"),
        token: parse_token_response(
            &HttpResponse::new(200, body),
            &url,
            UnixTime::from_secs(1_700_000_000),
        )
        .unwrap(),
    }
}

fn key() -> EncryptionKey {
    EncryptionKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap()
}

fn other_key() -> EncryptionKey {
    EncryptionKey::from_base64("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=").unwrap()
}

fn access(store: &FileTokenStore) -> Option<String> {
    TokenStore::get(store, KEY)
        .unwrap()
        .map(|e| e.token.access_token.secret().to_owned())
}

#[test]
fn plain_and_encrypted_round_trips_with_private_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let plain = FileTokenStore::new(dir.path().join("plain")).unwrap();
    assert_eq!(access(&plain), None);
    plain.set(KEY, &entry("tok-plain-1"), None).unwrap();
    assert_eq!(access(&plain).as_deref(), Some("tok-plain-1"));

    let sealed = FileTokenStore::new(dir.path().join("sealed"))
        .unwrap()
        .encrypted(key());
    sealed.set(KEY, &entry("tok-sealed-1"), Some(300)).unwrap();
    assert_eq!(access(&sealed).as_deref(), Some("tok-sealed-1"));
    let on_disk = std::fs::read_to_string(sealed.path_of(KEY)).unwrap();
    assert!(!on_disk.contains("tok-sealed-1"), "encrypted at rest");
    assert!(!on_disk.contains("bs-app"), "the whole entry is sealed");
    // The key itself is not in the file name.
    let name = sealed
        .path_of(KEY)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(!name.contains("bs-app") && name.len() == 64 + 5, "{name}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&sealed.path_of(KEY)), 0o600);
        assert_eq!(mode(sealed.dir()), 0o700);
    }
    sealed.delete(KEY).unwrap();
    assert_eq!(access(&sealed), None);
    sealed.delete(KEY).unwrap(); // deleting nothing is fine
}

#[test]
fn expired_entries_are_not_returned() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileTokenStore::new(dir.path()).unwrap();
    store.set(KEY, &entry("short"), Some(0)).unwrap();
    assert_eq!(access(&store), None);
    store.set(KEY, &entry("long"), Some(3_600)).unwrap();
    assert_eq!(access(&store).as_deref(), Some("long"));
}

#[test]
fn corrupt_and_foreign_files_are_typed_errors_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileTokenStore::new(dir.path()).unwrap();
    let path = store.path_of(KEY);
    for garbage in [
        b"{\"truncated\": ".to_vec(),
        b"not json at all".to_vec(),
        br#"{"format":"something else","key":"x"}"#.to_vec(),
        vec![0xff, 0xfe, 0x00],
    ] {
        std::fs::write(&path, &garbage).unwrap();
        let e = TokenStore::get(&store, KEY).unwrap_err();
        assert_eq!(e.kind, StoreErrorKind::Corrupt, "{e}");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        let e = store.set(KEY, &entry("over"), None).unwrap_err();
        assert_eq!(e.kind, StoreErrorKind::Corrupt);
        assert_eq!(std::fs::read(&path).unwrap(), garbage, "left untouched");
    }
    // A valid entry of another key copied over this key's file is foreign.
    let other = "smart-bs:another";
    std::fs::remove_file(&path).unwrap();
    store.set(other, &entry("theirs"), None).unwrap();
    std::fs::copy(store.path_of(other), &path).unwrap();
    let e = TokenStore::get(&store, KEY).unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::Corrupt);
    assert!(e.to_string().contains("another key"), "{e}");
}

#[test]
fn a_wrong_key_is_a_typed_error_and_the_file_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let good = FileTokenStore::new(dir.path()).unwrap().encrypted(key());
    good.set(KEY, &entry("secret-token"), None).unwrap();
    let before = std::fs::read(good.path_of(KEY)).unwrap();

    let wrong = FileTokenStore::new(dir.path())
        .unwrap()
        .encrypted(other_key());
    let e = TokenStore::get(&wrong, KEY).unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::Decrypt, "{e}");
    let e = wrong.set(KEY, &entry("clobber"), None).unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::Decrypt);
    // Without a key, a sealed entry does not open either; with a key, a plain one is refused.
    let no_key = FileTokenStore::new(dir.path()).unwrap();
    assert_eq!(
        TokenStore::get(&no_key, KEY).unwrap_err().kind,
        StoreErrorKind::Decrypt
    );
    assert_eq!(std::fs::read(good.path_of(KEY)).unwrap(), before);
    assert_eq!(access(&good).as_deref(), Some("secret-token"));

    let plain_dir = tempfile::tempdir().unwrap();
    FileTokenStore::new(plain_dir.path())
        .unwrap()
        .set(KEY, &entry("plain"), None)
        .unwrap();
    let e = TokenStore::get(
        &FileTokenStore::new(plain_dir.path())
            .unwrap()
            .encrypted(key()),
        KEY,
    )
    .unwrap_err();
    assert_eq!(e.kind, StoreErrorKind::Decrypt);
    // Tampering with the ciphertext is detected the same way.
    let mut tampered: serde_json::Value = serde_json::from_slice(&before).unwrap();
    let ct = tampered["sealed"]["ciphertext"]
        .as_str()
        .unwrap()
        .to_owned();
    let (first, rest) = ct.split_at(1);
    let flipped = format!("{}{rest}", if first == "A" { "B" } else { "A" });
    tampered["sealed"]["ciphertext"] = flipped.into();
    std::fs::write(good.path_of(KEY), tampered.to_string()).unwrap();
    assert_eq!(
        TokenStore::get(&good, KEY).unwrap_err().kind,
        StoreErrorKind::Decrypt
    );
}

#[test]
fn malformed_keys_are_refused_without_quoting_them() {
    for bad in ["", "c2hvcnQ=", "!!!not-base64!!!"] {
        let e = EncryptionKey::from_base64(bad).unwrap_err();
        assert!(!e.to_string().contains("c2hvcnQ"), "{e}");
    }
    assert_eq!(format!("{:?}", key()), "EncryptionKey([redacted])");
    let k = EncryptionKey::generate(smart_core::entropy::default_entropy().as_ref()).unwrap();
    let back = EncryptionKey::from_base64(&k.to_base64()).unwrap();
    assert_eq!(back.to_base64(), k.to_base64());
}

#[test]
fn leases_are_exclusive_expire_and_are_released_only_by_their_owner() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileTokenStore::new(dir.path()).unwrap();
    assert!(store.try_lease(KEY, "owner-a", 60_000).unwrap());
    assert!(
        store.try_lease(KEY, "owner-a", 60_000).unwrap(),
        "re-entrant for its owner"
    );
    assert!(!store.try_lease(KEY, "owner-b", 60_000).unwrap());
    store.release_lease(KEY, "owner-b").unwrap(); // not the owner: no effect
    assert!(!store.try_lease(KEY, "owner-b", 60_000).unwrap());
    store.release_lease(KEY, "owner-a").unwrap();
    assert!(store.try_lease(KEY, "owner-b", 1).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(
        store.try_lease(KEY, "owner-c", 1_000).unwrap(),
        "an expired lease is taken over"
    );
    assert!(TokenStore::lease_config(&store).enabled);
}

/// Entry point of a child process for the concurrency test below (run only by it).
#[test]
#[ignore = "run as a child process by four_processes_writing_at_once_leave_valid_entries"]
fn child_writer() {
    let dir = std::env::var("SMART_STORE_TEST_DIR").expect("run by the parent test");
    let id = std::env::var("SMART_STORE_TEST_ID").unwrap();
    let encrypted = std::env::var("SMART_STORE_TEST_SEALED").is_ok();
    let mut store = FileTokenStore::new(dir).unwrap();
    if encrypted {
        store = store.encrypted(key());
    }
    for i in 0..60 {
        store
            .set(KEY, &entry(&format!("tok-{id}-{i}")), None)
            .unwrap();
        // Every read in between sees a whole entry, never a torn one.
        let got = access(&store).expect("an entry");
        assert!(got.starts_with("tok-"), "{got}");
    }
}

#[test]
fn four_processes_writing_at_once_leave_valid_entries() {
    for sealed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..4)
            .map(|id| {
                let mut cmd = Command::new(&exe);
                cmd.args(["--exact", "child_writer", "--ignored", "--quiet"])
                    .env("SMART_STORE_TEST_DIR", dir.path())
                    .env("SMART_STORE_TEST_ID", id.to_string());
                if sealed {
                    cmd.env("SMART_STORE_TEST_SEALED", "1");
                }
                cmd.stdout(std::process::Stdio::null());
                cmd.spawn().unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success(), "a writer failed");
        }
        let mut store = FileTokenStore::new(dir.path()).unwrap();
        if sealed {
            store = store.encrypted(key());
        }
        let last = access(&store).expect("a valid final entry");
        assert!(last.starts_with("tok-") && last.ends_with("-59"), "{last}");
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(store.path_of(KEY)).unwrap()).unwrap();
        assert_eq!(raw["format"], smart_store::FORMAT);
        // No temporary files are left behind.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
