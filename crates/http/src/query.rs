//! A query string holds only the parameters its route declares: an unknown one is a 422 naming
//! it, so a client never believes a misspelt filter applied, and nothing a client invents
//! reaches a handler (or a cache key).

use std::future::ready;
use std::sync::Arc;

use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use futures_util::future::LocalBoxFuture;
use utoipa::IntoParams;

use crate::error::ApiError;

/// Longest part of an unknown parameter's name repeated in the answer.
const NAME_SHOWN: usize = 64;

/// The query parameters a route declares.
#[derive(Clone, Default)]
pub struct QueryKeys(Arc<[String]>);

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
        Self(names.into())
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
        let expected = if self.0.is_empty() {
            "this route takes no query parameters".to_owned()
        } else {
            format!("this route takes {}", self.0.join(", "))
        };
        Err(ApiError::invalid(
            &shown,
            format!("unknown query parameter; {expected}"),
        ))
    }
}

/// What [`only`] answers: the route's own answer, or the refusal as an answer (not an error),
/// so the middlewares around it (request id, metrics) treat it as any other.
pub type Checked<B> =
    LocalBoxFuture<'static, Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>;

/// A resource middleware refusing a request whose query string holds a parameter outside `keys`.
pub fn only<S, B>(keys: QueryKeys) -> impl Fn(ServiceRequest, &S) -> Checked<B> + Clone + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: 'static,
{
    move |req, srv| match keys.check(req.query_string()) {
        Ok(()) => {
            let answer = srv.call(req);
            Box::pin(async move { answer.await.map(ServiceResponse::map_into_left_body) })
        }
        Err(e) => {
            let refused = req.error_response(e).map_into_right_body();
            Box::pin(ready(Ok(refused)))
        }
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
        assert_eq!(
            e.detail(),
            "hour: unknown query parameter; this route takes hours, limit"
        );
        let e = QueryKeys::none().check("status=error").unwrap_err();
        assert_eq!(
            e.detail(),
            "status: unknown query parameter; this route takes no query parameters"
        );
    }

    #[test]
    fn a_long_unknown_name_is_cut_short_in_the_answer() {
        let e = QueryKeys::none()
            .check(&format!("{}=1", "x".repeat(60_000)))
            .unwrap_err();
        assert!(e.detail().len() < 200, "{}", e.detail());
    }
}
