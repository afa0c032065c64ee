//! A query string holds only the parameters its route declares: an unknown one is a 422 naming
//! it, so a client never believes a misspelt filter applied, and nothing a client invents
//! reaches a handler (or a cache key).

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{web, FromRequest, HttpRequest};
use utoipa::IntoParams;

use crate::error::ApiError;

/// Longest part of an unknown parameter's name repeated in the answer.
const NAME_SHOWN: usize = 64;

/// The query parameters a route declares: those of its reads, and those of its DELETE (most
/// take none; other writes take none).
#[derive(Clone, Default)]
pub struct QueryKeys(Arc<[String]>, Option<Arc<QueryKeys>>);

impl QueryKeys {
    /// No parameters at all.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// The parameters of `T`, as the OpenAPI document declares them.
    #[must_use]
    pub fn of<T: IntoParams>() -> Self {
        Self::none().and::<T>()
    }

    /// These and the parameters of `T`.
    #[must_use]
    pub fn and<T: IntoParams>(self) -> Self {
        let mut names = self.0.to_vec();
        names.extend(T::into_params(|| None).into_iter().map(|p| p.name));
        Self(names.into(), self.1)
    }

    /// These for reads, and the parameters of `T` for the route's DELETE.
    #[must_use]
    pub fn deletes<T: IntoParams>(self) -> Self {
        Self(self.0, Some(Arc::new(Self::of::<T>())))
    }

    /// # Errors
    /// 422 naming the first parameter `query` holds that is not declared, or `query` when it
    /// cannot be decoded.
    pub fn check(&self, query: &str) -> Result<(), ApiError> {
        if query.is_empty() {
            return Ok(());
        }
        let pairs = actix_web::web::Query::<Vec<(String, String)>>::from_query(query)
            .map_err(|_| ApiError::invalid("query", "is not a valid URL-encoded query string"))?;
        let Some(unknown) = pairs.iter().map(|(k, _)| k).find(|k| !self.0.contains(k)) else {
            return Ok(());
        };
        let shown: String = unknown
            .chars()
            .take(NAME_SHOWN)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        // Exactly this wording (the contract's): the parameters a route takes are in the OpenAPI
        // document, and a list of them here would grow with every filter added.
        Err(ApiError::invalid(&shown, "unknown query parameter"))
    }
}

/// Checks `req`'s query string against the parameters its route declares (registered as the
/// resource's app data by the route table). Reads take parameters, and a DELETE that declares
/// its own; any other write's query string must be empty. Run by the [`crate::Caller`] and
/// [`crate::auth::Writer`] extractors after the token and the role, so a refused caller hears 401 or 403 first; [`KnownQuery`] runs it on the
/// routes that need no token.
///
/// # Errors
/// 422 naming the first undeclared parameter.
pub fn check_request(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(keys) = req.app_data::<web::Data<QueryKeys>>() else {
        return Ok(());
    };
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        keys.check(req.query_string())
    } else if *req.method() == Method::DELETE {
        keys.1
            .as_deref()
            .map_or_else(QueryKeys::none, Clone::clone)
            .check(req.query_string())
    } else {
        QueryKeys::none().check(req.query_string())
    }
}

/// A query string holding only the parameters the route declares, for routes without a token.
#[derive(Debug)]
pub struct KnownQuery;

impl FromRequest for KnownQuery {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check_request(req).map(|()| Self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    #[allow(dead_code)]
    struct Range {
        hours: Option<i64>,
        limit: Option<i64>,
    }

    #[test]
    fn declared_parameters_pass_and_the_first_unknown_one_is_named() {
        let keys = QueryKeys::of::<Range>();
        assert!(keys.check("").is_ok());
        assert!(keys.check("hours=1&limit=5").is_ok());
        let e = keys.check("hours=1&hour=1&x=2").unwrap_err();
        assert_eq!(
            e.status(),
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(e.detail(), "hour: unknown query parameter");
        let e = QueryKeys::none().check("status=error").unwrap_err();
        assert_eq!(e.detail(), "status: unknown query parameter");
    }

    #[test]
    fn a_long_unknown_name_is_cut_short_in_the_answer() {
        let e = QueryKeys::none()
            .check(&format!("{}=1", "x".repeat(60_000)))
            .unwrap_err();
        assert!(e.detail().len() < 200, "{}", e.detail());
    }
}
