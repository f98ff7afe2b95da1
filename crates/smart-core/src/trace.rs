//! `tracing` spans for drivers (feature `tracing`): one `smart.flow` span per driven flow and
//! one `smart.request` span per request, so both drivers log the same fields the same way.
//!
//! | span | fields |
//! |---|---|
//! | `smart.flow` | `flow` (the flow's type, without module paths), `outcome` (`ready` or `error`) |
//! | `smart.sign` | `alg`, `kid`, `purpose`, `client_id`, `outcome` (`signed` or `error`), `duration_ms` (a remote signer's signature) |
//! | `smart.request` | `purpose` ([`Purpose::as_str`](crate::http::Purpose::as_str)), `method`, `endpoint` (the URL without query or fragment), `client_id`, `scope`, `attempt` (from 1), `status`, `duration_ms`, `error_kind` ([`TransportErrorKind::as_str`](crate::error::TransportErrorKind::as_str)) |
//!
//! A failed flow adds a `DEBUG` event with its error, a store event a `WARN` event. Nothing
//! secret is recorded: request bodies, headers, tokens and assertions never are, and errors
//! are already scrubbed of every value a request sent. The core reads no clock: the driver
//! measures durations and passes them in. Without the feature every type here is an empty
//! shell that compiles to nothing.

use std::time::Duration;

use crate::error::Error;
use crate::http::HttpRequest;
use crate::store::StoreEvent;

#[cfg(feature = "tracing")]
mod on {
    use std::time::Duration;

    use tracing::field::Empty;

    use crate::error::Error;
    use crate::http::HttpRequest;
    use crate::sign::SignRequest;
    use crate::store::StoreEvent;

    /// The span of one driven flow.
    #[derive(Debug)]
    pub struct FlowSpan(tracing::Span);

    impl FlowSpan {
        pub(super) fn new(name: &str) -> Self {
            let flow = super::short_type_name(name);
            Self(tracing::info_span!(
                "smart.flow",
                flow = %flow,
                outcome = Empty
            ))
        }

        pub(super) fn enter(&self) -> tracing::span::Entered<'_> {
            self.0.enter()
        }

        pub(super) fn instrument<Fut: std::future::Future>(
            &self,
            fut: Fut,
        ) -> tracing::instrument::Instrumented<Fut> {
            tracing::Instrument::instrument(fut, self.0.clone())
        }

        pub(super) fn finish(&self, error: Option<&Error>) {
            match error {
                None => {
                    self.0.record("outcome", "ready");
                }
                Some(e) => {
                    self.0.record("outcome", "error");
                    tracing::debug!(parent: &self.0, error = %e, "flow failed");
                }
            }
        }
    }

    /// The span of one request.
    #[derive(Debug)]
    pub struct RequestSpan(tracing::Span);

    impl RequestSpan {
        pub(super) fn new(r: &HttpRequest) -> Self {
            let mut endpoint = r.url.clone();
            endpoint.set_query(None);
            endpoint.set_fragment(None);
            let scope = r
                .form_fields()
                .into_iter()
                .find(|(k, _)| k == "scope")
                .map(|(_, v)| v);
            Self(tracing::info_span!(
                "smart.request",
                purpose = r.context.purpose.as_str(),
                method = r.method.as_str(),
                endpoint = %endpoint,
                client_id = r.context.client_id.as_deref(),
                scope = scope.as_deref(),
                attempt = r.context.attempt,
                status = Empty,
                duration_ms = Empty,
                error_kind = Empty,
            ))
        }

        pub(super) fn finish(&self, status: Option<u16>, error_kind: Option<&str>, took: Duration) {
            if let Some(status) = status {
                self.0.record("status", status);
            }
            if let Some(kind) = error_kind {
                self.0.record("error_kind", kind);
            }
            let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
            self.0.record("duration_ms", ms);
            tracing::debug!(parent: &self.0, "request done");
        }
    }

    /// The span of one remote signature.
    #[derive(Debug)]
    pub struct SignSpan(tracing::Span);

    impl SignSpan {
        pub(super) fn new(r: &SignRequest) -> Self {
            Self(tracing::info_span!(
                "smart.sign",
                alg = r.algorithm().as_str(),
                kid = r.key_id(),
                purpose = r.purpose().as_str(),
                client_id = r.client_id(),
                outcome = Empty,
                duration_ms = Empty,
            ))
        }

        pub(super) fn finish(&self, error: Option<&Error>, took: Duration) {
            let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
            self.0.record("duration_ms", ms);
            match error {
                None => {
                    self.0.record("outcome", "signed");
                    tracing::debug!(parent: &self.0, "signature done");
                }
                Some(e) => {
                    self.0.record("outcome", "error");
                    tracing::debug!(parent: &self.0, error = %e, "signature failed");
                }
            }
        }
    }

    pub(super) fn store_event(event: &StoreEvent) {
        tracing::warn!(event = %event, "token store");
    }
}

#[cfg(not(feature = "tracing"))]
mod on {
    use std::time::Duration;

    use crate::error::Error;
    use crate::http::HttpRequest;
    use crate::sign::SignRequest;
    use crate::store::StoreEvent;

    /// The span of one driven flow (the `tracing` feature is off: nothing).
    #[derive(Debug)]
    pub struct FlowSpan;

    impl FlowSpan {
        pub(super) fn new(_name: &str) -> Self {
            Self
        }
        pub(super) fn enter(&self) {}
        pub(super) fn instrument<Fut: std::future::Future>(&self, fut: Fut) -> Fut {
            fut
        }
        pub(super) fn finish(&self, _error: Option<&Error>) {}
    }

    /// The span of one request (the `tracing` feature is off: nothing).
    #[derive(Debug)]
    pub struct RequestSpan;

    impl RequestSpan {
        pub(super) fn new(_r: &HttpRequest) -> Self {
            Self
        }
        pub(super) fn finish(&self, _status: Option<u16>, _kind: Option<&str>, _took: Duration) {}
    }

    /// The span of one remote signature (the `tracing` feature is off: nothing).
    #[derive(Debug)]
    pub struct SignSpan;

    impl SignSpan {
        pub(super) fn new(_r: &SignRequest) -> Self {
            Self
        }
        pub(super) fn finish(&self, _error: Option<&Error>, _took: Duration) {}
    }

    pub(super) fn store_event(_event: &StoreEvent) {}
}

pub use on::{FlowSpan, RequestSpan, SignSpan};

impl FlowSpan {
    /// Open the span of a flow of type `F` (its type name without module paths, e.g.
    /// `SingleRequest<Introspection>`).
    pub fn start<F>() -> Self {
        Self::new(std::any::type_name::<F>())
    }

    /// Enter the span on this thread until the returned guard is dropped (blocking drivers).
    #[must_use = "the span is left when the guard is dropped"]
    pub fn entered(&self) -> impl Sized + '_ {
        self.enter()
    }

    /// Run `fut` inside the span (async drivers: the span is entered each time `fut` is
    /// polled).
    pub fn around<Fut: std::future::Future>(
        &self,
        fut: Fut,
    ) -> impl std::future::Future<Output = Fut::Output> {
        self.instrument(fut)
    }

    /// Record the flow's outcome: `ready`, or `error` with the (already scrubbed) error.
    pub fn outcome<T>(&self, result: &Result<T, Error>) {
        self.finish(result.as_ref().err());
    }
}

impl RequestSpan {
    /// Open the span of `request`, as the driver is about to send it.
    pub fn start(request: &HttpRequest) -> Self {
        Self::new(request)
    }

    /// The answer came back with `status` after `took`.
    pub fn response(&self, status: u16, took: Duration) {
        self.finish(Some(status), None, took);
    }

    /// Sending failed after `took`, with the transport error kind `kind`
    /// ([`TransportErrorKind::as_str`](crate::error::TransportErrorKind::as_str)).
    pub fn transport_error(&self, kind: &str, took: Duration) {
        self.finish(None, Some(kind), took);
    }
}

impl SignSpan {
    /// Open the span of a remote signature, as the driver hands `request` to its signer.
    pub fn start(request: &crate::sign::SignRequest) -> Self {
        Self::new(request)
    }

    /// The signer answered `signature` after `took` (an error is already scrubbed).
    pub fn done(&self, signature: &Result<Vec<u8>, Error>, took: Duration) {
        self.finish(signature.as_ref().err(), took);
    }
}

/// Log a store event (a failure the token source worked around) as a warning.
pub fn store_event(event: &StoreEvent) {
    on::store_event(event);
}

/// `a::b::C<d::E, &mut f::G>` → `C<E, &mut G>`.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
fn short_type_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut word = String::new();
    for c in name.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            out.push_str(word.rsplit("::").next().unwrap_or(&word));
            word.clear();
            out.push(c);
        }
    }
    out.push_str(word.rsplit("::").next().unwrap_or(&word));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn flow_names_drop_module_paths_inside_generics_too() {
        assert_eq!(
            super::short_type_name("a::b::C<d::E, &mut f::G<h::I>>"),
            "C<E, &mut G<I>>"
        );
        assert_eq!(super::short_type_name("Plain"), "Plain");
    }
}
