//! The sandbox counter helpers against the real sandbox: `token_requests`, `sandbox_token_requests`,
//! `sandbox_stats` and `reset_sandbox_stats`.

use smart_testkit::{
    reset_sandbox_stats, sandbox_stats, sandbox_token_requests, token_endpoint, token_requests,
    unique,
};

/// A token request the sandbox refuses (client_credentials without a client assertion), attributed
/// to `client_id`; returns the status.
fn refused_token_request(client_id: &str) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent
        .post(&token_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .send(format!(
            "grant_type=client_credentials&scope=system%2FPatient.rs&client_id={client_id}"
        ))
        .expect("POST /token");
    resp.status().as_u16()
}

// One test function: the steps depend on each other's counts.
#[test]
fn counters_count_token_requests_and_reset() {
    let id = unique("stats");
    assert_eq!(token_requests(&id), 0);

    for _ in 0..3 {
        let status = refused_token_request(&id);
        assert!(
            (400..500).contains(&status),
            "a token request without credentials must be refused, got {status}"
        );
    }
    assert_eq!(token_requests(&id), 3);
    // The global count includes these three (and whatever else used the sandbox meanwhile).
    assert!(sandbox_token_requests() >= 3);
    let stats = sandbox_stats();
    assert_eq!(stats["clients"][&id]["token_requests"], 3, "{stats}");
    assert_eq!(stats["clients"][&id]["token_errors"], 3, "{stats}");
    assert_eq!(stats["clients"][&id]["token_success"], 0, "{stats}");
    assert!(stats["by_grant_type"]["client_credentials"].as_u64() >= Some(3));
    assert_eq!(stats["token_requests"], stats["total_token_requests"]);

    reset_sandbox_stats();
    assert_eq!(token_requests(&id), 0);
    assert!(sandbox_stats()["clients"].get(&id).is_none());

    refused_token_request(&id);
    assert_eq!(token_requests(&id), 1);
    assert!(sandbox_token_requests() >= 1);
}
