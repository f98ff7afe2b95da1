//! Building blocks every flow uses to build its requests and read the answers: an
//! authenticated form `POST` that records what secrets it carries, and a document `GET` that
//! follows redirects safely.

use url::Url;

use crate::client_auth::ClientAuth;
use crate::entropy::Entropy;
use crate::error::Error;
use crate::http::{HttpRequest, HttpResponse, Purpose, check_url_security};
use crate::redact::SentSecrets;
use crate::sign::{Prepared, UnsignedPost};
use crate::time::UnixTime;
use crate::types::Endpoint;

/// The most redirects a document `GET` follows (discovery, metadata, OpenID configuration,
/// JWKS).
pub const MAX_REDIRECTS: u8 = 5;

/// A request together with the secret values it carries.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) request: HttpRequest,
    pub(crate) sent: SentSecrets,
}

/// Where an authenticated `POST` goes and what it is for.
#[derive(Clone, Copy)]
pub(crate) struct PostTo<'a> {
    pub(crate) purpose: Purpose,
    pub(crate) endpoint: &'a Endpoint,
    pub(crate) allow_insecure_http: bool,
}

/// A form `POST` to `to.endpoint` with `fields`, authenticated with `client_auth` (RFC 6749 §2.3;
/// SMART client types), recording every secret it carries: the client authentication's and
/// the values of `secret_fields`. With a remote signer the request is
/// [`Prepared::Unsigned`]: complete but for its `client_assertion`, whose claims are fixed.
pub(crate) fn authenticated_post(
    to: PostTo<'_>,
    client_auth: &ClientAuth,
    mut fields: Vec<(String, String)>,
    secret_fields: &[&str],
    now: UnixTime,
    entropy: &dyn Entropy,
) -> Result<Prepared, Error> {
    let PostTo {
        purpose,
        endpoint,
        allow_insecure_http,
    } = to;
    let url = endpoint.url();
    check_url_security(url, allow_insecure_http)?;
    let mut sent = SentSecrets::new();
    for (k, v) in &fields {
        if secret_fields.contains(&k.as_str()) {
            sent.add(v);
        }
    }
    let mut headers = Vec::new();
    let deferred = client_auth.apply_deferring(
        &mut fields,
        &mut headers,
        endpoint,
        now,
        entropy,
        &mut sent,
    )?;
    let client_id = client_auth.client_id().as_str().to_owned();
    Ok(match deferred {
        None => Prepared::Ready(form_post(
            url.clone(),
            purpose,
            client_id,
            &fields,
            headers,
            sent,
        )),
        Some((assertion, signer)) => Prepared::Unsigned(Box::new(UnsignedPost {
            url: url.clone(),
            purpose,
            client_id,
            fields,
            headers,
            sent,
            assertion,
            signer,
        })),
    })
}

/// The form `POST` itself, with its context and the secrets it carries.
pub(crate) fn form_post(
    url: Url,
    purpose: Purpose,
    client_id: String,
    fields: &[(String, String)],
    headers: Vec<(String, String)>,
    sent: SentSecrets,
) -> Outgoing {
    let mut request =
        HttpRequest::post_form(url, fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    request.headers.extend(headers);
    request.context.purpose = purpose;
    request.context.client_id = Some(client_id);
    Outgoing { request, sent }
}

/// The answer to a `POST` that carried credentials was a redirect: refuse it, naming the
/// status and `Location` (scrubbed of what was sent).
pub(crate) fn refuse_redirect(
    response: &HttpResponse,
    url: &Url,
    sent: &SentSecrets,
) -> Option<Error> {
    if !response.is_redirect() {
        return None;
    }
    Some(
        sent.scrub_error(Error::Redirect {
            url: url.to_string(),
            status: response.status,
            location: response
                .header("location")
                .map(crate::oauth_error::clean_text),
        }),
    )
}

/// A document `GET` that follows up to [`MAX_REDIRECTS`] redirects (301, 302, 303, 307,
/// 308), resolving a relative `Location` against the URL that answered (RFC 9110 §10.2.2,
/// RFC 3986 §5.2) and applying the https-or-loopback rule to every target.
#[derive(Debug, Clone)]
pub(crate) struct DocumentGet {
    first: HttpRequest,
    url: Url,
    hops: u8,
    allow_insecure_http: bool,
}

impl DocumentGet {
    /// A `GET` of `request.url`.
    pub(crate) fn new(request: HttpRequest, allow_insecure_http: bool) -> Self {
        Self {
            url: request.url.clone(),
            first: request,
            hops: 0,
            allow_insecure_http,
        }
    }

    /// The request for the current hop.
    pub(crate) fn request(&self) -> HttpRequest {
        let mut r = self.first.clone();
        r.url = self.url.clone();
        r
    }

    /// The URL the current hop asks for (the final document's URL once done).
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// Read an answer: `Ok(Some(response))` for the final answer (anything but a redirect
    /// with a `Location`), `Ok(None)` when the next hop is to be requested.
    ///
    /// # Errors
    /// [`Error::Redirect`] after [`MAX_REDIRECTS`] hops or for a `Location` that is not a URL
    /// reference; [`Error::InsecureUrl`] for a target that is neither https nor loopback.
    pub(crate) fn handle(&mut self, response: HttpResponse) -> Result<Option<HttpResponse>, Error> {
        if !response.is_redirect() {
            return Ok(Some(response));
        }
        let Some(location) = response.header("location").map(str::trim) else {
            return Ok(Some(response));
        };
        let refused = |location: Option<String>| Error::Redirect {
            url: self.url.to_string(),
            status: response.status,
            location,
        };
        if self.hops >= MAX_REDIRECTS {
            return Err(refused(Some(crate::oauth_error::clean_text(location))));
        }
        let next = self
            .url
            .join(location)
            .map_err(|_| refused(Some(crate::oauth_error::clean_text(location))))?;
        check_url_security(&next, self.allow_insecure_http)?;
        self.hops += 1;
        self.url = next;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(status: u16, location: &str) -> HttpResponse {
        let mut r = HttpResponse::new(status, "");
        r.headers.push(("Location".into(), location.into()));
        r
    }

    #[test]
    fn follows_relative_and_absolute_up_to_five() {
        let start =
            Url::parse("https://ehr.example.org/fhir/R4/p1/.well-known/smart-configuration")
                .unwrap();
        let mut g = DocumentGet::new(HttpRequest::get_json(start), false);
        assert!(
            g.handle(redirect(302, "/fhir/R4/metadata?practice=p1"))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            g.request().url.as_str(),
            "https://ehr.example.org/fhir/R4/metadata?practice=p1"
        );
        assert_eq!(g.request().header("accept"), Some("application/json"));
        for _ in 0..4 {
            assert!(
                g.handle(redirect(307, "https://other.example.org/x"))
                    .unwrap()
                    .is_none()
            );
        }
        let err = g
            .handle(redirect(308, "https://other.example.org/y"))
            .unwrap_err();
        assert!(matches!(err, Error::Redirect { status: 308, .. }), "{err}");
    }

    #[test]
    fn refuses_plain_http_target_and_returns_final_answer() {
        let start = Url::parse("https://ehr.example.org/a").unwrap();
        let mut g = DocumentGet::new(HttpRequest::get_json(start.clone()), false);
        let err = g
            .handle(redirect(301, "http://ehr.example.org/b"))
            .unwrap_err();
        assert!(matches!(err, Error::InsecureUrl { .. }), "{err}");
        let mut g = DocumentGet::new(HttpRequest::get_json(start), false);
        let done = g.handle(HttpResponse::new(200, "{}")).unwrap().unwrap();
        assert_eq!(done.status, 200);
        // A 3xx without Location is a final answer too.
        assert!(g.handle(HttpResponse::new(304, "")).unwrap().is_some());
    }

    #[test]
    fn post_redirect_is_refused_and_scrubbed() {
        let mut sent = SentSecrets::new();
        sent.add("code-abcdefgh");
        let url = Url::parse("https://ehr.example.org/token").unwrap();
        let e = refuse_redirect(
            &redirect(302, "https://evil.example/?c=code-abcdefgh"),
            &url,
            &sent,
        )
        .unwrap();
        assert_eq!(
            e,
            Error::Redirect {
                url: "https://ehr.example.org/token".into(),
                status: 302,
                location: Some("https://evil.example/?c=[redacted]".into())
            }
        );
        assert!(refuse_redirect(&HttpResponse::new(200, ""), &url, &sent).is_none());
    }
}
