//! The crate's examples, run against the local sandbox as a user would run them.

use smart_core::assertion::JwsAlgorithm;
use smart_testkit::{register_backend_client, run_example, sandbox_url, scenarios::key};

#[test]
fn fhir_middleware_prints_patient_123() {
    let (ok, stdout, stderr) =
        run_example("fhir_middleware", &[("SMART_SANDBOX_URL", &sandbox_url())]);
    assert!(ok, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.starts_with("GET Patient/123 -> 200\n"), "{stdout}");
    let (_, body) = stdout.split_once('\n').unwrap();
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["resourceType"], "Patient");
    assert_eq!(body["id"], "123");
}

#[test]
fn fhir_middleware_without_a_sandbox_url_prints_its_usage() {
    let (ok, _, stderr) = run_example("fhir_middleware", &[("SMART_SANDBOX_URL", "")]);
    assert!(!ok);
    assert!(stderr.contains("usage: SMART_SANDBOX_URL="), "{stderr}");
}

#[test]
fn backend_services_reads_patient_123_with_a_pem_key() {
    for alg in [JwsAlgorithm::Es384, JwsAlgorithm::Rs384] {
        let key = key(alg);
        let client_id = register_backend_client(&key, "system/Patient.rs", None);
        let pem =
            std::env::temp_dir().join(format!("{}.pem", smart_testkit::unique("example-key")));
        std::fs::write(&pem, key.to_pkcs8_pem().unwrap().secret()).unwrap();
        let base = format!("{}/fhir", sandbox_url());
        let (ok, stdout, stderr) = run_example(
            "backend_services_async",
            &[
                ("SMART_FHIR_BASE", &base),
                ("SMART_CLIENT_ID", &client_id),
                ("SMART_KEY_FILE", pem.to_str().unwrap()),
                ("SMART_SCOPE", "system/Patient.rs"),
            ],
        );
        let _ = std::fs::remove_file(&pem);
        assert!(ok, "{alg:?}: stdout: {stdout}\nstderr: {stderr}");
        assert!(
            stdout.contains("GET Patient/123 -> 200"),
            "{alg:?}: {stdout}"
        );
        assert!(
            stdout.contains("\"resourceType\": \"Patient\""),
            "{alg:?}: {stdout}"
        );
    }
}

#[test]
fn remote_signer_signs_in_a_kms_task_and_reads_patient_123() {
    for alg in [JwsAlgorithm::Es384, JwsAlgorithm::Rs384] {
        let key = key(alg);
        let client_id = register_backend_client(&key, "system/Patient.rs", None);
        let pem = std::env::temp_dir().join(format!("{}.pem", smart_testkit::unique("remote-key")));
        std::fs::write(&pem, key.to_pkcs8_pem().unwrap().secret()).unwrap();
        let base = format!("{}/fhir", sandbox_url());
        let (ok, stdout, stderr) = run_example(
            "remote_signer",
            &[
                ("SMART_FHIR_BASE", &base),
                ("SMART_CLIENT_ID", &client_id),
                ("SMART_KEY_FILE", pem.to_str().unwrap()),
                ("SMART_SCOPE", "system/Patient.rs"),
            ],
        );
        let _ = std::fs::remove_file(&pem);
        assert!(ok, "{alg:?}: stdout: {stdout}\nstderr: {stderr}");
        assert!(
            stdout.contains(&format!("1 assertion(s) signed remotely ({alg})")),
            "{alg:?}: {stdout}"
        );
        assert!(
            stdout.contains("GET Patient/123 -> 200"),
            "{alg:?}: {stdout}"
        );
        assert_eq!(smart_testkit::token_requests(&client_id), 1);
    }
}
