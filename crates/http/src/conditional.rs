//! Conditional requests (RFC 9110 §13): an `ETag` on every JSON read, `If-None-Match` answered
//! 304, and `If-Match` on the writes of groups, devices and windows answered 412 when stale.
//!
//! The tag is a strong one derived from the exact bytes of the answer's body (a SHA-256 prefix):
//! always correct whatever the representation depends on (members, alert summary, the time a
//! device turns stale), and a 304 saves the transfer, though not the work of rendering.
//! Compression (outside this layer) does not change the tag: it identifies the content.
//!
//! A write with `If-Match` first renders the resource as its GET would (the same handler), then
//! writes only when the tag matches. Two writers racing between that read and their write can
//! both pass: the window is one request long (closing it would take a version compared inside
//! the store's write transaction).

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, EntityTag, Header as _, IfMatch, IfNoneMatch};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Responder, ResponseError};
use sha2::{Digest, Sha256};

use crate::auth::{WritePolicy, Writer};
use crate::error::ApiError;

/// The strong tag of a body: the first 128 bits of its SHA-256, in hex.
#[must_use]
pub fn etag_of(body: &[u8]) -> EntityTag {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    EntityTag::new_strong(hex)
}

/// Whether the GETs of the route at `path` carry tags: not the probes (their answer is their
/// status), the HTML docs page, nor the endless event stream.
#[must_use]
pub fn tagged(path: &str) -> bool {
    !path.starts_with("/health/") && path != "/docs" && path != "/api/events"
}

/// Whether `If-None-Match` names `current` (weak comparison, RFC 9110 §13.1.2).
fn none_match_hits(condition: Option<&IfNoneMatch>, current: &EntityTag) -> bool {
    match condition {
        Some(IfNoneMatch::Any) => true,
        Some(IfNoneMatch::Items(tags)) => tags.iter().any(|t| t.weak_eq(current)),
        None => false,
    }
}

/// Whether `If-Match` names `current` (strong comparison, RFC 9110 §13.1.1).
fn match_holds(condition: &IfMatch, current: &EntityTag) -> bool {
    match condition {
        IfMatch::Any => true,
        IfMatch::Items(tags) => tags.iter().any(|t| t.strong_eq(current)),
    }
}

/// The `If-Match` of `req`: `None` when absent; one that does not parse names no tag (so the
/// write is refused rather than done unchecked).
fn if_match(req: &HttpRequest) -> Option<IfMatch> {
    if !req.headers().contains_key(header::IF_MATCH) {
        return None;
    }
    Some(IfMatch::parse(req).unwrap_or(IfMatch::Items(Vec::new())))
}

/// Whole body of an answer; every body tagged here is in memory already.
async fn bytes_of(body: BoxBody) -> Result<actix_web::web::Bytes, ApiError> {
    body::to_bytes(body)
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("reading an answer's body: {e}")))
}

/// Middleware of the GET (and HEAD) routes: tags a 200 whose body is in memory, and answers 304
/// (no body, the tag and the other headers) when `If-None-Match` names the tag.
///
/// # Errors
/// Those of the route.
pub async fn tag_reads(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let condition = IfNoneMatch::parse(&req).ok();
    let response = next.call(req).await?;
    let sized = matches!(response.response().body().size(), body::BodySize::Sized(_));
    if response.status() != StatusCode::OK || !sized {
        return Ok(response);
    }
    let (req, response) = response.into_parts();
    let (mut response, body) = response.into_parts();
    let bytes = bytes_of(body).await?;
    let tag = etag_of(&bytes);
    if none_match_hits(condition.as_ref(), &tag) {
        let mut not_modified = HttpResponse::NotModified();
        for (name, value) in response.headers() {
            if ![
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
                header::CONTENT_ENCODING,
            ]
            .contains(name)
            {
                not_modified.append_header((name.clone(), value.clone()));
            }
        }
        not_modified.insert_header(header::ETag(tag));
        return Ok(ServiceResponse::new(req, not_modified.finish()));
    }
    response.headers_mut().insert(header::ETAG, tag_value(&tag));
    Ok(ServiceResponse::new(
        req,
        response.set_body(BoxBody::new(bytes)),
    ))
}

fn tag_value(tag: &EntityTag) -> header::HeaderValue {
    header::HeaderValue::from_str(&tag.to_string()).expect("a hex tag is a valid header value")
}

/// What tags a successful write's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// The answer's body is the resource as its GET renders it: its tag.
    Body,
    /// The answer is something else, the resource still exists: the tag of its GET, rendered
    /// again.
    Get,
    /// The resource is gone: no tag.
    Gone,
}

/// The answer `get` (a GET handler) gives to `req`'s path, with `req`'s credentials.
async fn render<G, Args>(get: &G, req: &HttpRequest) -> HttpResponse
where
    G: Handler<Args>,
    Args: FromRequest,
    G::Output: Responder,
{
    match Args::from_request(req, &mut Payload::None).await {
        Ok(args) => get.call(args).await.respond_to(req).map_into_boxed_body(),
        Err(e) => e.into().error_response(),
    }
}

/// The tag of `get`'s answer to `req`, or that answer when it is not a 200.
async fn current_tag<G, Args>(get: &G, req: &HttpRequest) -> Result<EntityTag, HttpResponse>
where
    G: Handler<Args>,
    Args: FromRequest,
    G::Output: Responder,
{
    let answer = render(get, req).await;
    if answer.status() != StatusCode::OK {
        return Err(answer);
    }
    match bytes_of(answer.into_body()).await {
        Ok(bytes) => Ok(etag_of(&bytes)),
        Err(e) => Err(e.error_response()),
    }
}

/// Middleware of a write (PUT, PATCH, DELETE) of the resource `get` reads, by callers allowed
/// by `P`: with `If-Match`, the write happens only when the tag of the resource's current GET
/// matches, else 412 and nothing changes. A caller the write refuses gets that refusal (roles
/// before preconditions); a resource that does not exist gets the write's own 404. A
/// successful write's answer carries the resource's new tag, as `then` says.
///
/// # Errors
/// Those of the route.
pub async fn check_writes<P, G, Args>(
    get: G,
    then: Then,
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error>
where
    P: WritePolicy,
    G: Handler<Args>,
    Args: FromRequest,
    G::Output: Responder,
{
    if let Some(condition) = if_match(req.request()) {
        let allowed = Writer::<P>::from_request(req.request(), &mut Payload::None)
            .await
            .is_ok();
        if allowed {
            match current_tag(&get, req.request()).await {
                Ok(tag) if match_holds(&condition, &tag) => {}
                Ok(_) => {
                    let refusal = ApiError::precondition_failed().error_response();
                    return Ok(req.into_response(refusal));
                }
                // No such resource: the write says so itself.
                Err(answer) if answer.status() == StatusCode::NOT_FOUND => {}
                Err(answer) => return Ok(req.into_response(answer)),
            }
        }
    }
    let response = next.call(req).await?;
    // A dry run (the only query a checked write takes) changed nothing: its answer is not the
    // resource's, and the resource's tag stays what it was.
    if !response.status().is_success() || dry_run(response.request().query_string()) {
        return Ok(response);
    }
    match then {
        Then::Gone => Ok(response),
        Then::Get => {
            let tag = current_tag(&get, response.request()).await.ok();
            let mut response = response;
            if let Some(tag) = tag {
                response.headers_mut().insert(header::ETAG, tag_value(&tag));
            }
            Ok(response)
        }
        Then::Body => {
            let (req, response) = response.into_parts();
            let (mut response, body) = response.into_parts();
            let bytes = bytes_of(body).await?;
            response
                .headers_mut()
                .insert(header::ETAG, tag_value(&etag_of(&bytes)));
            Ok(ServiceResponse::new(
                req,
                response.set_body(BoxBody::new(bytes)),
            ))
        }
    }
}

/// Whether a write's query asks for a dry run (`dry_run=true`; anything else the handler
/// refuses or writes for real).
fn dry_run(query: &str) -> bool {
    actix_web::web::Query::<Vec<(String, String)>>::from_query(query)
        .is_ok_and(|pairs| pairs.iter().any(|(k, v)| k == "dry_run" && v == "true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_strong_and_follows_the_bytes() {
        let tag = etag_of(b"{\"a\":1}");
        assert!(!tag.weak);
        assert_eq!(tag.tag().len(), 32);
        assert_eq!(tag, etag_of(b"{\"a\":1}"));
        assert_ne!(tag, etag_of(b"{\"a\":2}"));
    }

    #[test]
    fn if_none_match_compares_weakly_and_if_match_strongly() {
        let current = etag_of(b"x");
        let weak = EntityTag::new_weak(current.tag().to_owned());
        let other = etag_of(b"y");
        let items = |tags: &[&EntityTag]| tags.iter().map(|t| (*t).clone()).collect::<Vec<_>>();
        assert!(none_match_hits(Some(&IfNoneMatch::Any), &current));
        assert!(none_match_hits(
            Some(&IfNoneMatch::Items(items(&[&other, &weak]))),
            &current
        ));
        assert!(!none_match_hits(
            Some(&IfNoneMatch::Items(items(&[&other]))),
            &current
        ));
        assert!(!none_match_hits(None, &current));
        assert!(match_holds(&IfMatch::Any, &current));
        assert!(match_holds(
            &IfMatch::Items(items(&[&other, &current])),
            &current
        ));
        assert!(!match_holds(&IfMatch::Items(items(&[&weak])), &current));
        assert!(!match_holds(&IfMatch::Items(Vec::new()), &current));
    }

    #[test]
    fn probes_and_the_docs_page_carry_no_tag() {
        assert!(!tagged("/health/live"));
        assert!(!tagged("/health/ready"));
        assert!(!tagged("/docs"));
        assert!(tagged("/api/groups/{group_id}"));
        assert!(tagged("/openapi.json"));
    }
}
