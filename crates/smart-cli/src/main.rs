//! smart CLI (stub).
fn main() {}
