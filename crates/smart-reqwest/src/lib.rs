//! Async driver (stub).
