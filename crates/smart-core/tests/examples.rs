//! The crate's example, run as a user runs it (`scripts/test` builds the examples first with
//! `cargo build --workspace --examples`; `cargo test` alone does not build them as programs).

use std::path::PathBuf;
use std::process::Command;

/// `target/<profile>/examples/<name>`, next to this test binary's `target/<profile>/deps/`.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>")
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "example {name} not built at {}: run `cargo build --workspace --examples` first",
        path.display()
    );
    path
}

#[test]
fn scripted_flow_runs_its_whole_script() {
    let out = Command::new(example_binary("scripted_flow"))
        .output()
        .expect("start the example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    // The 503 is retried after a backoff, and both retries (after the 503 and after the
    // transport failure) are signed anew.
    assert!(stdout.contains("  -> WaitUntil: "), "{stdout}");
    assert_eq!(
        stdout
            .matches("retry carries a newly signed assertion: true")
            .count(),
        2,
        "{stdout}"
    );
    assert!(
        stdout.contains("7. misuse is an error, not a panic\n  <- Err: state machine misuse"),
        "{stdout}"
    );
    // Bodies (with the signed assertion) and tokens are redacted.
    assert!(
        !stdout.contains("token-1") && !stdout.contains("eyJ"),
        "{stdout}"
    );
}
