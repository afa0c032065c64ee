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

/// The query parameters a route declares: for its reads, for its writes (none unless declared
/// with [`QueryKeys::writes`]), and for its DELETE when it differs from the other writes
/// ([`QueryKeys::deletes`]).
#[derive(Clone, Default)]
pub struct QueryKeys(Arc<[String]>, Arc<[String]>, Option<Arc<[String]>>);

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
        Self(names.into(), self.1, self.2)
    }

    /// These, with the parameters of `T` taken by the route's writes (a dry run's, say).
    #[must_use]
    pub fn writes<T: IntoParams>(self) -> Self {
        let mut names = self.1.to_vec();
        names.extend(T::into_params(|| None).into_iter().map(|p| p.name));
        Self(self.0, names.into(), self.2)
    }

    /// These, with the parameters of `T` taken by the route's DELETE only.
    #[must_use]
    pub fn deletes<T: IntoParams>(self) -> Self {
        let names: Vec<String> = T::into_params(|| None)
            .into_iter()
            .map(|p| p.name)
            .collect();
        Self(self.0, self.1, Some(names.into()))
    }

    /// # Errors
    /// 422 naming the first parameter `query` holds that is not declared, or `query` when it
    /// cannot be decoded.
    pub fn check(&self, query: &str) -> Result<(), ApiError> {
        Self::check_against(&self.0, query)
    }

    /// [`QueryKeys::check`] for a write.
    ///
    /// # Errors
    /// As [`QueryKeys::check`], against the parameters of the writes.
    pub fn check_write(&self, query: &str) -> Result<(), ApiError> {
        Self::check_against(&self.1, query)
    }

    /// [`QueryKeys::check`] for a DELETE.
    ///
    /// # Errors
    /// As [`QueryKeys::check`], against the DELETE's parameters, else those of the writes.
    pub fn check_delete(&self, query: &str) -> Result<(), ApiError> {
        Self::check_against(self.2.as_deref().unwrap_or(&self.1), query)
    }

    fn check_against(known: &[String], query: &str) -> Result<(), ApiError> {
        if query.is_empty() {
            return Ok(());
        }
        let pairs = actix_web::web::Query::<Vec<(String, String)>>::from_query(query)
            .map_err(|_| ApiError::invalid("query", "is not a valid URL-encoded query string"))?;
        let Some(unknown) = pairs.iter().map(|(k, _)| k).find(|k| !known.contains(k)) else {
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
/// resource's app data by the route table). A write takes only those declared for writes, a
/// DELETE those declared for it (most routes: none, so its query string must be empty). Run by the [`crate::Caller`] and [`crate::auth::Writer`] extractors after the
/// token and the role, so a refused caller hears 401 or 403 first; [`KnownQuery`] runs it on the
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
        keys.check_delete(req.query_string())
    } else {
        keys.check_write(req.query_string())
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
    fn writes_take_only_the_parameters_declared_for_them() {
        let keys = QueryKeys::of::<Range>();
        assert!(keys.check_write("").is_ok());
        assert!(keys.check_write("hours=1").is_err(), "a read's parameter");
        #[derive(IntoParams)]
        #[into_params(parameter_in = Query)]
        #[allow(dead_code)]
        struct DryRun {
            dry_run: Option<bool>,
        }
        let keys = keys.writes::<DryRun>();
        assert!(keys.check_write("dry_run=true").is_ok());
        assert!(keys.check("dry_run=true").is_err(), "not a read's");
    }

    #[test]
    fn a_long_unknown_name_is_cut_short_in_the_answer() {
        let e = QueryKeys::none()
            .check(&format!("{}=1", "x".repeat(60_000)))
            .unwrap_err();
        assert!(e.detail().len() < 200, "{}", e.detail());
    }
}
