//! Cross-origin requests from a browser frontend (`IOT_CORS_ORIGINS`).
//!
//! Actual requests go through `actix-cors` (the allowed origin echoed, the headers a script may
//! read exposed). Preflights are answered here instead, because the answer depends on the route:
//! 204 with the methods that route answers (from the route table) and the request headers the
//! API reads.

use std::future::Future;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::HttpResponse;
use futures_util::future::Either;

use crate::error::ApiError;

/// The request headers a cross-origin script may send (beyond the CORS-safelisted ones).
pub const ALLOWED_HEADERS: &str = "Authorization, Content-Type, If-Match, If-None-Match, \
    Idempotency-Key, Last-Event-ID, traceparent, X-Request-Id";

/// The response headers a cross-origin script may read (beyond the CORS-safelisted ones).
pub const EXPOSED_HEADERS: [&str; 6] = [
    "X-Total-Count",
    "ETag",
    "X-Request-Id",
    "Location",
    "Retry-After",
    // The file name of a CSV export.
    "Content-Disposition",
];

/// How long a browser may keep a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE: u32 = 600;

/// The origins allowed to call the API from a browser: `*` (any), or a list of
/// `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    Any,
    Listed(Vec<String>),
}

impl Origins {
    /// Parses a comma-separated list such as `IOT_CORS_ORIGINS` holds.
    ///
    /// # Errors
    /// The first entry that is not an origin, and why.
    pub fn parse(list: &str) -> Result<Self, String> {
        let entries: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.is_empty() {
            return Err("lists no origin".to_owned());
        }
        if entries.contains(&"*") {
            return if entries.len() == 1 {
                Ok(Self::Any)
            } else {
                Err("`*` allows any origin and cannot be listed with others".to_owned())
            };
        }
        entries
            .iter()
            .map(|e| origin(e).map_err(|why| format!("`{e}` is not an origin: {why}")))
            .collect::<Result<_, _>>()
            .map(Self::Listed)
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        match self {
            Self::Any => true,
            Self::Listed(list) => origin
                .to_str()
                .is_ok_and(|o| list.iter().any(|allowed| allowed.eq_ignore_ascii_case(o))),
        }
    }

    /// The `actix-cors` middleware that augments actual (non-preflight) answers.
    pub fn middleware(&self) -> actix_cors::Cors {
        let cors = actix_cors::Cors::default()
            .disable_preflight()
            .expose_headers(EXPOSED_HEADERS);
        match self {
            Self::Any => cors.allow_any_origin(),
            Self::Listed(list) => list.iter().fold(cors, |cors, o| cors.allowed_origin(o)),
        }
    }
}

/// `entry` as a browser writes it in `Origin` (lower-case scheme and host, no default port
/// dropped: browsers drop it themselves), or why it is not one.
fn origin(entry: &str) -> Result<String, &'static str> {
    let (scheme, rest) = entry
        .split_once("://")
        .ok_or("expected scheme://host[:port]")?;
    if !["http", "https"].contains(&scheme.to_ascii_lowercase().as_str()) {
        return Err("the scheme must be http or https");
    }
    if rest.is_empty() {
        return Err("no host");
    }
    if rest.contains(['/', '?', '#']) {
        return Err("an origin has no path (not even `/`), query or fragment");
    }
    if rest.contains('@') {
        return Err("an origin has no user information");
    }
    let uri: actix_web::http::Uri = entry.parse().map_err(|_| "not a valid URL")?;
    let authority = uri.authority().ok_or("no host")?;
    if authority.host().is_empty() {
        return Err("no host");
    }
    if let Some((_, port)) = authority
        .as_str()
        .rsplit_once(':')
        .filter(|_| !rest.ends_with(']'))
    {
        if port.is_empty() {
            return Err("an empty port");
        }
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err("the port must be a number from 1 to 65535");
        }
    }
    Ok(entry.to_ascii_lowercase())
}

/// Whether `req` is a CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
fn is_preflight(req: &ServiceRequest) -> bool {
    req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Answers preflights of the route table's paths (204, or 403 for an origin not allowed);
/// passes every other request on, and every request when CORS is off (`origins` is `None`).
/// Run inside the request-id and access-log middleware, so that preflights are logged and
/// counted like any request.
pub fn preflight<S, B>(
    origins: Option<&Origins>,
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let route = if origins.is_some() && is_preflight(&req) {
        req.request()
            .resource_map()
            .match_pattern(req.path())
            .and_then(|template| crate::routes::table::route_of(&template))
    } else {
        None
    };
    let Some(route) = route else {
        let response = srv.call(req);
        return Either::Left(
            async move { response.await.map(ServiceResponse::map_into_left_body) },
        );
    };
    let allowed = req
        .headers()
        .get(header::ORIGIN)
        .is_some_and(|o| origins.is_some_and(|origins| origins.allows(o)));
    let answer = if allowed {
        let methods = crate::routes::table::allowed(route.methods).join(", ");
        HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, methods))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE))
            .finish()
    } else {
        actix_web::ResponseError::error_response(&ApiError::forbidden(
            "Origin: not allowed to call this API from a browser",
        ))
    };
    Either::Right(futures_util::future::ready(Ok(req
        .into_response(answer)
        .map_into_right_body())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_listed_exactly_or_refused_with_a_reason() {
        assert_eq!(
            Origins::parse("https://app.example.com, http://localhost:3000"),
            Ok(Origins::Listed(vec![
                "https://app.example.com".to_owned(),
                "http://localhost:3000".to_owned()
            ]))
        );
        assert!(Origins::parse("http://[::1]:8080,http://[::1]").is_ok());
        assert_eq!(Origins::parse(" * "), Ok(Origins::Any));
        for (bad, why) in [
            ("", "lists no origin"),
            ("*, https://a.example", "cannot be listed with others"),
            ("app.example.com", "expected scheme://host[:port]"),
            ("ftp://a.example", "http or https"),
            ("https://a.example/", "no path"),
            ("https://a.example/app", "no path"),
            ("https://", "no host"),
            ("https://user@a.example", "user information"),
            ("https://a.example:", "empty port"),
            ("https://a.example:port", "1 to 65535"),
            ("https://a.example:70000", "1 to 65535"),
            ("https://a b", "not a valid URL"),
        ] {
            let error = Origins::parse(bad).expect_err(bad);
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn a_listed_origin_matches_whatever_its_case() {
        let origins = Origins::parse("https://App.example.com").expect("an origin");
        assert!(origins.allows(&HeaderValue::from_static("https://app.example.com")));
        assert!(!origins.allows(&HeaderValue::from_static("https://app.example.com:8443")));
        assert!(!origins.allows(&HeaderValue::from_static("http://app.example.com")));
    }
}
