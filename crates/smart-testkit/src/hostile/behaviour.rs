//! [`Behaviour`]: what a route does (answer, hang, trickle, close, echo, sequences).

use super::*;

/// What the server does with a request on a route. Cheap to clone.
///
/// Composite behaviours ([`sequence`](Behaviour::sequence),
/// [`fail_first_requests`](Behaviour::fail_first_requests), [`fail_for`](Behaviour::fail_for))
/// keep state: how many requests reached them, when the first did. Installing a behaviour with
/// [`HostileServer::route`] starts that state afresh, so a behaviour value can be installed
/// again (or on several routes) and starts over each time. Within one installed behaviour,
/// nested composites count only the requests that reach them.
#[derive(Clone)]
pub struct Behaviour(Arc<Kind>);

pub(super) enum Kind {
    Respond(Response),
    Sequence(Vec<Behaviour>, AtomicUsize),
    FirstRequests {
        n: usize,
        during: Behaviour,
        then: Behaviour,
        seen: AtomicUsize,
    },
    FirstDuration {
        duration: Duration,
        during: Behaviour,
        then: Behaviour,
        first: OnceLock<Instant>,
    },
    Hang,
    Delay(Duration, Behaviour),
    Close,
    Echo(u16),
    FromFn(Arc<ResponseFn>),
    Dynamic(Arc<BehaviourFn>),
    Raw(Vec<u8>, bool),
    Trickle(Response, usize, Duration),
}

impl fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Kind::Respond(r) => f.debug_tuple("Respond").field(&r.status).finish(),
            Kind::Sequence(items, _) => f.debug_tuple("Sequence").field(items).finish(),
            Kind::FirstRequests {
                n, during, then, ..
            } => f
                .debug_struct("FailFirstRequests")
                .field("n", n)
                .field("fail", during)
                .field("then", then)
                .finish(),
            Kind::FirstDuration {
                duration,
                during,
                then,
                ..
            } => f
                .debug_struct("FailFor")
                .field("duration", duration)
                .field("fail", during)
                .field("then", then)
                .finish(),
            Kind::Hang => f.write_str("Hang"),
            Kind::Delay(d, b) => f.debug_tuple("Delay").field(d).field(b).finish(),
            Kind::Close => f.write_str("Close"),
            Kind::Echo(s) => f.debug_tuple("Echo").field(s).finish(),
            Kind::FromFn(_) => f.write_str("FromFn(..)"),
            Kind::Dynamic(_) => f.write_str("Dynamic(..)"),
            Kind::Raw(b, hang) => f
                .debug_struct("Raw")
                .field("len", &b.len())
                .field("then_hang", hang)
                .finish(),
            Kind::Trickle(r, n, d) => f
                .debug_tuple("Trickle")
                .field(&r.status)
                .field(n)
                .field(d)
                .finish(),
        }
    }
}

impl From<Response> for Behaviour {
    fn from(r: Response) -> Self {
        Behaviour::respond(r)
    }
}

impl Behaviour {
    fn new(kind: Kind) -> Self {
        Behaviour(Arc::new(kind))
    }

    /// Answer every request with `response`.
    pub fn respond(response: Response) -> Self {
        Behaviour::new(Kind::Respond(response))
    }

    /// Answer with [`Response::json`]`(status, json)`.
    pub fn json(status: u16, json: impl fmt::Display) -> Self {
        Behaviour::respond(Response::json(status, json))
    }

    /// Request 1 gets `items[0]`, request 2 `items[1]`, ...; once they are used up the last one
    /// answers every further request.
    ///
    /// # Panics
    /// When `items` is empty.
    pub fn sequence<B: Into<Behaviour>>(items: impl IntoIterator<Item = B>) -> Self {
        let items: Vec<Behaviour> = items.into_iter().map(Into::into).collect();
        assert!(
            !items.is_empty(),
            "Behaviour::sequence needs at least one behaviour"
        );
        Behaviour::new(Kind::Sequence(items, AtomicUsize::new(0)))
    }

    /// The first `n` requests get `fail`, every later one `then`.
    pub fn fail_first_requests(
        n: usize,
        fail: impl Into<Behaviour>,
        then: impl Into<Behaviour>,
    ) -> Self {
        Behaviour::new(Kind::FirstRequests {
            n,
            during: fail.into(),
            then: then.into(),
            seen: AtomicUsize::new(0),
        })
    }

    /// Requests that arrive less than `duration` after the first request get `fail` (the first
    /// request included), later ones `then`.
    pub fn fail_for(
        duration: Duration,
        fail: impl Into<Behaviour>,
        then: impl Into<Behaviour>,
    ) -> Self {
        Behaviour::new(Kind::FirstDuration {
            duration,
            during: fail.into(),
            then: then.into(),
            first: OnceLock::new(),
        })
    }

    /// Read the request and never answer: the connection stays open, silent, until the client
    /// closes it or the server is dropped.
    pub fn hang() -> Self {
        Behaviour::new(Kind::Hang)
    }

    /// Wait `delay`, then do `then`. If the client closes the connection meanwhile, nothing is
    /// sent.
    pub fn delay(delay: Duration, then: impl Into<Behaviour>) -> Self {
        Behaviour::new(Kind::Delay(delay, then.into()))
    }

    /// Read the request, then close the connection without answering.
    pub fn close() -> Self {
        Behaviour::new(Kind::Close)
    }

    /// Send `bytes` exactly as given (no framing added), then close the connection.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Self {
        Behaviour::new(Kind::Raw(bytes.into(), false))
    }

    /// Send `bytes` exactly as given, then keep the connection open and silent, like
    /// [`hang`](Behaviour::hang) (e.g. a head promising a body that never comes).
    pub fn raw_then_hang(bytes: impl Into<Vec<u8>>) -> Self {
        Behaviour::new(Kind::Raw(bytes.into(), true))
    }

    /// Send `response` `chunk` bytes at a time (at least 1), waiting `interval` before each
    /// further piece: a slow server that keeps sending.
    pub fn trickle(response: Response, chunk: usize, interval: Duration) -> Self {
        Behaviour::new(Kind::Trickle(response, chunk.max(1), interval))
    }

    /// `status` with a `Retry-After` header ([`Response::retry_after`]).
    pub fn retry_after(status: u16, after: RetryAfter) -> Self {
        Behaviour::respond(Response::retry_after(status, after))
    }

    /// A redirect ([`Response::redirect`]).
    pub fn redirect(status: u16, location: &str) -> Self {
        Behaviour::respond(Response::redirect(status, location))
    }

    /// A 400 OAuth error that reflects the request, as a hostile or careless server might.
    ///
    /// `error` is `invalid_request`; `error_description` holds the method and target, the raw
    /// body, the body's form fields percent-decoded (`name=value`, `&`-joined), the
    /// `Authorization` header, and the decoded `user:password` of a Basic `Authorization`;
    /// `error_uri` is `{server url}/echo?{raw body}#{Authorization}`, unescaped (so not always a
    /// valid URI). A client that shows either field in its errors leaks whatever secret the
    /// request carried.
    pub fn echo() -> Self {
        Behaviour::new(Kind::Echo(400))
    }

    /// [`echo`](Behaviour::echo) with another status (e.g. 401 or 500).
    pub fn echo_with_status(status: u16) -> Self {
        Behaviour::new(Kind::Echo(status))
    }

    /// Answer with the response `f` computes from the request. `f` runs on the connection's
    /// thread, so it may block (that delays only this answer); a panic in it closes the
    /// connection.
    pub fn from_fn(f: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Self {
        Behaviour::new(Kind::FromFn(Arc::new(f)))
    }

    /// Do what the behaviour `f` returns for the request. Behaviours captured by `f` keep their
    /// state across requests (a captured sequence advances).
    pub fn dynamic(f: impl Fn(&Request) -> Behaviour + Send + Sync + 'static) -> Self {
        Behaviour::new(Kind::Dynamic(Arc::new(f)))
    }

    /// A copy with its state (and that of every nested behaviour) started afresh.
    pub(super) fn fresh(&self) -> Behaviour {
        let kind = match &*self.0 {
            Kind::Sequence(items, _) => Kind::Sequence(
                items.iter().map(Behaviour::fresh).collect(),
                AtomicUsize::new(0),
            ),
            Kind::FirstRequests {
                n, during, then, ..
            } => Kind::FirstRequests {
                n: *n,
                during: during.fresh(),
                then: then.fresh(),
                seen: AtomicUsize::new(0),
            },
            Kind::FirstDuration {
                duration,
                during,
                then,
                ..
            } => Kind::FirstDuration {
                duration: *duration,
                during: during.fresh(),
                then: then.fresh(),
                first: OnceLock::new(),
            },
            Kind::Delay(d, b) => Kind::Delay(*d, b.fresh()),
            // Stateless: share.
            _ => return self.clone(),
        };
        Behaviour::new(kind)
    }

    /// The steps for one request, advancing composite state.
    pub(super) fn plan(&self, req: &Request, base_url: &str, steps: &mut Vec<Step>) {
        match &*self.0 {
            Kind::Respond(r) => steps.push(Step::Respond(r.clone())),
            Kind::Sequence(items, next) => {
                let i = next.fetch_add(1, Ordering::SeqCst).min(items.len() - 1);
                items[i].plan(req, base_url, steps);
            }
            Kind::FirstRequests {
                n,
                during,
                then,
                seen,
            } => {
                if seen.fetch_add(1, Ordering::SeqCst) < *n {
                    during.plan(req, base_url, steps);
                } else {
                    then.plan(req, base_url, steps);
                }
            }
            Kind::FirstDuration {
                duration,
                during,
                then,
                first,
            } => {
                let first = *first.get_or_init(Instant::now);
                if first.elapsed() < *duration {
                    during.plan(req, base_url, steps);
                } else {
                    then.plan(req, base_url, steps);
                }
            }
            Kind::Hang => steps.push(Step::Hang),
            Kind::Delay(d, then) => {
                steps.push(Step::Wait(*d));
                then.plan(req, base_url, steps);
            }
            Kind::Close => steps.push(Step::Close),
            Kind::Echo(status) => steps.push(Step::Respond(echo_response(*status, req, base_url))),
            Kind::FromFn(f) => steps.push(Step::Respond(f(req))),
            Kind::Dynamic(f) => f(req).plan(req, base_url, steps),
            Kind::Raw(bytes, hang) => {
                steps.push(Step::Raw(bytes.clone()));
                steps.push(if *hang { Step::Hang } else { Step::Close });
            }
            Kind::Trickle(r, n, d) => steps.push(Step::Trickle(r.clone(), *n, *d)),
        }
    }
}

/// The response of [`Behaviour::echo`].
pub(super) fn echo_response(status: u16, req: &Request, base_url: &str) -> Response {
    let raw = req.body_text();
    let decoded = req.decoded_form_text();
    let auth = req.header("authorization").unwrap_or("");
    let basic = req.basic_credentials().unwrap_or_default();
    let description = format!(
        "hostile echo of {} {}: body: {raw}; decoded body: {decoded}; authorization: {auth}; basic credentials: {basic}",
        req.method, req.target
    );
    Response::json(
        status,
        serde_json::json!({
            "error": "invalid_request",
            "error_description": description,
            "error_uri": format!("{base_url}/echo?{raw}#{auth}"),
        }),
    )
}
