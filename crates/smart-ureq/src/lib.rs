//! Blocking driver (stub).
