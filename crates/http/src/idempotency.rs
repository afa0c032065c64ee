//! `Idempotency-Key` on the POSTs that create: the handler runs its create through
//! [`Idempotency::run`], which claims the key before and stores a success after
//! (`app::idempotency`). Retries with the same key and the same request (route and body bytes,
//! compared by their SHA-256: a body re-serialised differently is another request) get the
//! first answer, status, body and `Location`, within 24 hours; a key sent with another request
//! is a 422, and one whose first request is still running a 409 (it does not wait).

use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpMessage as _, HttpRequest, HttpResponse};
use app::idempotency::{Begin, IdempotencyError};
use domain::{IdempotencyKey, IdempotencyKeyError, TenantId, Timestamp};
use ports::{IdempotencyStore, StoredAnswer};
use sha2::{Digest as _, Sha256};

use crate::error::ApiError;

/// The request header.
pub const HEADER: &str = "Idempotency-Key";

/// The bytes of a body read by [`crate::json::JsonBody`] from a request with an
/// `Idempotency-Key`, kept in the request's extensions for its fingerprint.
#[derive(Debug, Clone)]
pub(crate) struct RawBody(pub(crate) web::Bytes);

/// Whether the request carries the header (so its body is worth keeping).
pub(crate) fn requested(req: &HttpRequest) -> bool {
    req.headers().contains_key(HEADER)
}

/// The request's key (none: an ordinary create) and the store that keeps keys. Put it before
/// the body among the handler's arguments: a bad key is refused before the body is read.
pub struct Idempotency {
    req: HttpRequest,
    key: Option<IdempotencyKey>,
}

impl FromRequest for Idempotency {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(key_of(req).map(|key| Self {
            req: req.clone(),
            key,
        }))
    }
}

fn key_of(req: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let mut values = req.headers().get_all(HEADER);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::invalid(HEADER, "must be sent once"));
    }
    value
        .to_str()
        .map_err(|_| IdempotencyKeyError)
        .and_then(IdempotencyKey::parse)
        .map(Some)
        .map_err(|e| ApiError::invalid(HEADER, e))
}

impl Idempotency {
    /// Runs `create` once per tenant and key: without a key, just runs it.
    ///
    /// # Errors
    /// 422 naming `Idempotency-Key` when the key went with another request, 409 while its first
    /// request runs, the store's; else what `create` answers.
    pub async fn run(
        self,
        tenant: &TenantId,
        create: impl std::future::Future<Output = Result<HttpResponse, ApiError>>,
    ) -> Result<HttpResponse, ApiError> {
        let Some(key) = self.key else {
            return create.await;
        };
        let store = self
            .req
            .app_data::<web::Data<dyn IdempotencyStore>>()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no idempotency store")))?
            .clone();
        let fingerprint = fingerprint(&self.req);
        let held = match app::idempotency::begin(
            store.as_ref(),
            tenant,
            key,
            &fingerprint,
            Timestamp::now(),
        )
        .await
        {
            Ok(Begin::Proceed(held)) => held,
            Ok(Begin::Replay(answer)) => return Ok(replay(answer)),
            Err(e @ IdempotencyError::OtherRequest) => return Err(ApiError::invalid(HEADER, e)),
            Err(e @ IdempotencyError::InProgress) => return Err(ApiError::conflict(e.to_string())),
            Err(IdempotencyError::Store(e)) => return Err(e.into()),
        };
        // Dropped from here on (the request's deadline), the key stays held until its lease
        // lapses: whether the create committed is not known.
        let (answer, stored) = match create.await {
            Ok(response) if response.status().is_success() => kept(response),
            // Only successes are kept: a 4xx or 5xx may turn out otherwise when retried (the name
            // freed meanwhile, the store back), so the key is freed for the retry.
            other => (other, None),
        };
        if let Err(e) =
            app::idempotency::finish(store.as_ref(), tenant, held, stored, Timestamp::now()).await
        {
            // The create stands and is answered; a retry finds the key held until its lease
            // lapses, then runs again.
            tracing::warn!(error = %e, "could not store the answer of an idempotent create");
        }
        answer
    }
}

/// SHA-256 of the route and the body bytes: the same key on another route is another request.
fn fingerprint(req: &HttpRequest) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(req.method().as_str().as_bytes());
    hash.update(b" ");
    hash.update(req.path().as_bytes());
    hash.update(b"\n");
    if let Some(RawBody(body)) = req.extensions().get::<RawBody>() {
        hash.update(body);
    }
    hash.finalize().to_vec()
}

/// The response as answered, and what is stored of it.
fn kept(response: HttpResponse) -> (Result<HttpResponse, ApiError>, Option<StoredAnswer>) {
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let status = response.status().as_u16();
    let (response, body) = response.into_parts();
    match actix_web::body::MessageBody::try_into_bytes(body) {
        Ok(bytes) => {
            let stored = StoredAnswer {
                status,
                location,
                body: bytes.to_vec(),
            };
            (
                Ok(response.set_body(bytes).map_into_boxed_body()),
                Some(stored),
            )
        }
        // A streamed body cannot be kept (no create answers one): the key is freed.
        Err(body) => (Ok(response.set_body(body)), None),
    }
}

/// The first answer again.
fn replay(answer: StoredAnswer) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    response.content_type(mime_json());
    if let Some(location) = answer.location {
        response.insert_header((header::LOCATION, location));
    }
    response.body(answer.body)
}

fn mime_json() -> header::ContentType {
    header::ContentType::json()
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn keys_are_one_to_255_printable_ascii_characters_sent_once() {
        let req = TestRequest::default().to_http_request();
        assert!(matches!(key_of(&req), Ok(None)));
        let req = TestRequest::default()
            .insert_header((HEADER, "order-42"))
            .to_http_request();
        assert_eq!(
            key_of(&req).ok().flatten().map(|k| k.as_str().to_owned()),
            Some("order-42".to_owned())
        );
        for bad in ["k".repeat(256), "caf\u{e9}".to_owned()] {
            let req = TestRequest::default()
                .insert_header((HEADER, bad.as_str()))
                .to_http_request();
            let Err(e) = key_of(&req) else {
                panic!("{bad:?} accepted")
            };
            assert!(format!("{e:?}").contains("Idempotency-Key: must be 1 to 255"));
        }
        let req = TestRequest::default()
            .append_header((HEADER, "a"))
            .append_header((HEADER, "b"))
            .to_http_request();
        assert!(key_of(&req).is_err());
    }

    #[test]
    fn the_fingerprint_is_of_the_route_and_the_body_bytes() {
        let of = |path: &str, body: &'static [u8]| {
            let req = TestRequest::post().uri(path).to_http_request();
            req.extensions_mut()
                .insert(RawBody(web::Bytes::from_static(body)));
            fingerprint(&req)
        };
        assert_eq!(of("/api/devices", b"{}"), of("/api/devices", b"{}"));
        assert_ne!(of("/api/devices", b"{}"), of("/api/devices", b"{ }"));
        assert_ne!(of("/api/devices", b"{}"), of("/api/groups", b"{}"));
    }
}
