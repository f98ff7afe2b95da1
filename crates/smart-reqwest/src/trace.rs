//! `tracing` spans for the driver loop (feature `tracing`): one `smart.flow` span per driven
//! flow, one `smart.request` span per request with its purpose, endpoint (no query),
//! `client_id`, `scope`, attempt, HTTP status and duration; one `smart.sign` span per remote
//! signature with its `alg`, `kid`, purpose, `client_id`, outcome and duration. Nothing
//! secret is recorded:
//! request bodies, headers and tokens never are, and errors are already scrubbed of the
//! values a request sent. Without the feature everything here compiles to nothing.

use smart_core::Error;

#[cfg(feature = "tracing")]
mod on {
    use std::time::Instant;

    use smart_core::{Error, HttpRequest, SignRequest};
    use tracing::field::Empty;

    /// The span of one remote signature.
    pub(crate) struct SignSpan {
        span: tracing::Span,
        started: Instant,
    }

    impl SignSpan {
        pub(crate) fn new(r: &SignRequest) -> Self {
            let span = tracing::info_span!(
                "smart.sign",
                alg = r.algorithm().as_str(),
                kid = r.key_id(),
                purpose = r.purpose().as_str(),
                client_id = r.client_id(),
                outcome = Empty,
                duration_ms = Empty,
            );
            Self {
                span,
                started: Instant::now(),
            }
        }

        pub(crate) fn done(&self, signature: &Result<Vec<u8>, Error>) {
            let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.span.record("duration_ms", ms);
            match signature {
                Ok(_) => {
                    self.span.record("outcome", "signed");
                    tracing::debug!(parent: &self.span, "signature done");
                }
                Err(e) => {
                    self.span.record("outcome", "error");
                    tracing::debug!(parent: &self.span, error = %e, "signature failed");
                }
            }
        }
    }

    /// The span of one driven flow.
    pub(crate) struct FlowSpan(tracing::Span);

    impl FlowSpan {
        pub(crate) fn new<F>() -> Self {
            let flow = short_type_name(std::any::type_name::<F>());
            Self(tracing::info_span!("smart.flow", flow = %flow, outcome = Empty))
        }

        pub(crate) fn instrument<Fut: std::future::Future>(
            &self,
            fut: Fut,
        ) -> tracing::instrument::Instrumented<Fut> {
            tracing::Instrument::instrument(fut, self.0.clone())
        }

        pub(crate) fn failed(&self, e: &Error) {
            self.0.record("outcome", "error");
            tracing::debug!(parent: &self.0, error = %e, "flow failed");
        }

        pub(crate) fn ready(&self) {
            self.0.record("outcome", "ready");
        }
    }

    /// `a::b::C<d::E, &mut f::G>` → `C<E, &mut G>`.
    pub(super) fn short_type_name(name: &str) -> String {
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

    /// The span of one request.
    pub(crate) struct RequestSpan {
        span: tracing::Span,
        started: Instant,
    }

    fn endpoint(r: &HttpRequest) -> String {
        let mut u = r.url.clone();
        u.set_query(None);
        u.set_fragment(None);
        u.to_string()
    }

    fn scope(r: &HttpRequest) -> Option<String> {
        r.form_fields()
            .into_iter()
            .find(|(k, _)| k == "scope")
            .map(|(_, v)| v)
    }

    impl RequestSpan {
        pub(crate) fn new(r: &HttpRequest) -> Self {
            let span = tracing::info_span!(
                "smart.request",
                purpose = r.context.purpose.as_str(),
                method = r.method.as_str(),
                endpoint = %endpoint(r),
                client_id = r.context.client_id.as_deref(),
                scope = scope(r).as_deref(),
                attempt = r.context.attempt,
                status = Empty,
                duration_ms = Empty,
                error_kind = Empty,
            );
            Self {
                span,
                started: Instant::now(),
            }
        }

        pub(crate) fn response(&self, status: u16) {
            self.span.record("status", status);
            self.finish();
        }

        pub(crate) fn transport_error(&self, kind: &str) {
            self.span.record("error_kind", kind);
            self.finish();
        }

        fn finish(&self) {
            let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.span.record("duration_ms", ms);
            tracing::debug!(parent: &self.span, "request done");
        }
    }
}

#[cfg(not(feature = "tracing"))]
mod on {
    use smart_core::{Error, HttpRequest, SignRequest};

    pub(crate) struct SignSpan;

    impl SignSpan {
        pub(crate) fn new(_r: &SignRequest) -> Self {
            Self
        }
        pub(crate) fn done(&self, _signature: &Result<Vec<u8>, Error>) {}
    }

    pub(crate) struct FlowSpan;

    impl FlowSpan {
        pub(crate) fn new<F>() -> Self {
            Self
        }
        pub(crate) fn instrument<Fut: std::future::Future>(&self, fut: Fut) -> Fut {
            fut
        }
        pub(crate) fn failed(&self, _e: &Error) {}
        pub(crate) fn ready(&self) {}
    }

    pub(crate) struct RequestSpan;

    impl RequestSpan {
        pub(crate) fn new(_r: &HttpRequest) -> Self {
            Self
        }
        pub(crate) fn response(&self, _status: u16) {}
        pub(crate) fn transport_error(&self, _kind: &str) {}
    }
}

pub(crate) use on::{FlowSpan, RequestSpan, SignSpan};

#[cfg(all(test, feature = "tracing"))]
mod tests {
    #[test]
    fn flow_names_drop_module_paths_inside_generics_too() {
        assert_eq!(
            super::on::short_type_name("a::b::C<d::E, &mut f::G<h::I>>"),
            "C<E, &mut G<I>>"
        );
        assert_eq!(super::on::short_type_name("Plain"), "Plain");
    }
}

/// The outcome of a flow, recorded on its span.
pub(crate) fn outcome<T>(span: &FlowSpan, r: &Result<T, Error>) {
    match r {
        Ok(_) => span.ready(),
        Err(e) => span.failed(e),
    }
}

/// A store event, as a warning.
pub(crate) fn store_event(_event: &smart_core::store::StoreEvent) {
    #[cfg(feature = "tracing")]
    tracing::warn!(event = %_event, "token store");
}
