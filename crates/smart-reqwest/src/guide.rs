//! The user guide (`docs/guide/`), its Rust examples compiled — and the ones that need no
//! server run — as doc tests: `cargo test -p smart-reqwest --doc`. The dev-dependencies of
//! this crate cover what the pages use (both drivers, the file and Redis stores, `ureq`,
//! `reqwest-middleware`, `tracing-subscriber`).

macro_rules! guide_pages {
    ($($name:ident => $file:literal),* $(,)?) => {$(
        #[doc = include_str!(concat!("../../../docs/guide/", $file))]
        pub struct $name;
    )*};
}

guide_pages! {
    Index => "README.md",
    GettingStarted => "getting-started.md",
    BackendServices => "backend-services.md",
    AppLaunch => "app-launch.md",
    Scopes => "scopes.md",
    TokenStores => "token-stores.md",
    Errors => "errors.md",
    Services => "services.md",
    Sandbox => "sandbox.md",
    Vendors => "vendors.md",
}
