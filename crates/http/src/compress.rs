//! Compression of the answers worth it: JSON, CSV and NDJSON bodies over 1 KiB (or streamed, of
//! unknown size), in zstd or gzip as the client's `Accept-Encoding` prefers. Never an event
//! stream (a compressor holds events back until its buffer fills) nor a small body (the framing
//! would outweigh the saving). actix-web's `Compress` middleware compresses every type but
//! images and video, at any size, hence this one, over actix-http's encoder.

use std::future::Future;

use actix_http::encoding::Encoder;
use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, AcceptEncoding, ContentEncoding, Encoding, Header as _};

/// Bodies of at most this many bytes are sent as they are.
pub const MIN_COMPRESSED_BYTES: u64 = 1024;

/// The codings offered, preferred first when the client weighs them alike.
static OFFERED: [Encoding; 3] = [Encoding::zstd(), Encoding::gzip(), Encoding::identity()];

/// The coding to answer `req` in, as its `Accept-Encoding` allows: identity when it has none,
/// or accepts none of those offered (the body is still worth sending).
fn negotiated(req: &ServiceRequest) -> ContentEncoding {
    let Ok(accepted) = AcceptEncoding::parse(req) else {
        return ContentEncoding::Identity;
    };
    match accepted.negotiate(OFFERED.iter()) {
        Some(Encoding::Known(coding)) => coding,
        _ => ContentEncoding::Identity,
    }
}

/// Whether a body of `content_type` is one this service compresses.
fn compressible(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(essence) = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
    else {
        return false;
    };
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
        || essence == "text/csv"
        || essence == "application/x-ndjson"
        || essence == "application/ndjson"
}

/// Whether a body of `size` is large enough: over [`MIN_COMPRESSED_BYTES`], or streamed.
fn large_enough(size: BodySize) -> bool {
    match size {
        BodySize::Sized(n) => n > MIN_COMPRESSED_BYTES,
        BodySize::Stream => true,
        BodySize::None => false,
    }
}

/// Calls `srv` with `req`, then compresses the answer's body if it is worth it and the client
/// accepts a coding offered.
pub fn compressed<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<Encoder<B>>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let coding = negotiated(&req);
    let response = srv.call(req);
    async move {
        let response = response.await?;
        Ok(response.map_body(|head, body| {
            let worth_it =
                compressible(head.headers().get(header::CONTENT_TYPE)) && large_enough(body.size());
            if !worth_it {
                // The encoder passes the body through untouched.
                return Encoder::response(ContentEncoding::Identity, head, body);
            }
            if coding == ContentEncoding::Identity {
                // Another Accept-Encoding would have its answer compressed (the encoder says
                // so itself when it compresses).
                head.headers_mut().append(
                    header::VARY,
                    header::HeaderValue::from_static("accept-encoding"),
                );
            }
            Encoder::response(coding, head, body)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_csv_and_ndjson_are_compressed_and_never_an_event_stream() {
        let compresses =
            |value: &'static str| compressible(Some(&header::HeaderValue::from_static(value)));
        assert!(compresses("application/json"));
        assert!(compresses("application/problem+json; charset=utf-8"));
        assert!(compresses("text/csv; charset=utf-8"));
        assert!(compresses("application/x-ndjson"));
        assert!(!compresses("text/event-stream"));
        assert!(!compresses("text/html; charset=utf-8"));
        assert!(!compresses("image/png"));
        assert!(!compressible(None));
    }

    #[test]
    fn only_bodies_over_a_kibibyte_or_streamed_are_compressed() {
        assert!(!large_enough(BodySize::Sized(1024)));
        assert!(large_enough(BodySize::Sized(1025)));
        assert!(large_enough(BodySize::Stream));
        assert!(!large_enough(BodySize::None));
    }
}
