//! Bearer JWT authentication: HS256 only, `exp` required, tenant and roles from the claims.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use domain::{Actor, TenantId};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, GroupApiCode};

/// Tokens longer than this are refused before any decoding work.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The roles a token may carry. Unknown role names are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Admin,
    Operator,
    Viewer,
}

impl Role {
    /// The name tokens and refusals use.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "operator" => Some(Self::Operator),
            "viewer" => Some(Self::Viewer),
            _ => None,
        }
    }
}

/// Who is calling, proven by a valid token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
    /// The token's `sub`, recorded as `created_by`/`updated_by` on writes.
    pub actor: Actor,
    pub roles: Vec<Role>,
}

impl Caller {
    #[must_use]
    pub fn has_any_role(&self, roles: &[Role]) -> bool {
        self.roles.iter().any(|r| roles.contains(r))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    /// Optional here so that a token without one is told apart from a malformed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant_id: Option<String>,
    /// Absent or `[]`: a valid token that may only read.
    #[serde(default)]
    roles: Option<Vec<String>>,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
}

/// Verifies tokens with the shared secret.
#[derive(Clone)]
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
    /// Signs reading cursors (derived from the same secret).
    cursors: crate::cursor::CursorKey,
}

impl Authenticator {
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            key: DecodingKey::from_secret(secret),
            validation,
            cursors: crate::cursor::CursorKey::derive(secret),
        }
    }

    /// The key reading cursors are signed with.
    #[must_use]
    pub fn cursor_key(&self) -> &crate::cursor::CursorKey {
        &self.cursors
    }

    /// # Errors
    /// 401 with one of the [`Refusal`]s' texts.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Caller, ApiError> {
        self.caller(authorization)
            .map_err(|refusal| ApiError::unauthorized(refusal.as_str()))
    }

    /// The caller a token proves, or why it proves none.
    ///
    /// # Errors
    /// The [`Refusal`] that says why.
    pub fn caller(&self, authorization: Option<&[u8]>) -> Result<Caller, Refusal> {
        let header = authorization.ok_or(Refusal::Missing)?;
        if header.len() > MAX_TOKEN_BYTES + 7 {
            return Err(Refusal::Malformed);
        }
        let header = std::str::from_utf8(header).map_err(|_| Refusal::Malformed)?;
        // Another scheme (`Basic …`) or an empty bearer carries no token.
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or(Refusal::Missing)?;
        let claims = decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::ExpiredSignature => Refusal::Expired,
                    ErrorKind::ImmatureSignature => Refusal::NotYetValid,
                    // Signed with another key, or with an algorithm other than HS256.
                    ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                        Refusal::BadSignature
                    }
                    _ => Refusal::Malformed,
                }
            })?
            .claims;
        let tenant = claims
            .tenant_id
            .as_deref()
            .and_then(|t| TenantId::parse(t).ok())
            .ok_or(Refusal::NoTenant)?;
        let actor = Actor::parse(&claims.sub).map_err(|_| Refusal::Malformed)?;
        Ok(Caller {
            tenant,
            actor,
            roles: claims
                .roles
                .unwrap_or_default()
                .iter()
                .filter_map(|r| Role::parse(r))
                .collect(),
        })
    }
}

/// Why a request's token proves no caller: the six texts of a 401 (and of its log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer …` at all.
    Missing,
    /// Not a JWT, oversized, a claim missing or of the wrong type.
    Malformed,
    /// Signed with another secret or another algorithm, or unsigned.
    BadSignature,
    Expired,
    NotYetValid,
    /// No `tenant_id` claim, or one that names no tenant.
    NoTenant,
}

impl Refusal {
    /// The `detail` of the 401.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "Not authenticated",
            Self::Malformed => "Malformed token",
            Self::BadSignature => "Invalid token signature",
            Self::Expired => "Token expired",
            Self::NotYetValid => "Token not yet valid",
            Self::NoTenant => "Token has no tenant_id",
        }
    }
}

/// The caller the request's token proves (401 when it proves none).
fn authenticated(req: &HttpRequest) -> Result<Caller, ApiError> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    authenticated_by(req, header)
}

/// The caller `authorization` (an `Authorization` header's value) proves.
fn authenticated_by(req: &HttpRequest, authorization: Option<&[u8]>) -> Result<Caller, ApiError> {
    let Some(authenticator) = req.app_data::<web::Data<Authenticator>>() else {
        tracing::error!("no Authenticator registered in app data");
        return Err(ApiError::unauthorized("Not authenticated"));
    };
    match authenticator.caller(authorization) {
        Ok(caller) => {
            // The request span (`observe`): the access line and later lines name the caller.
            let span = tracing::Span::current();
            span.record("tenant", caller.tenant.as_str());
            span.record("subject", caller.actor.as_str());
            Ok(caller)
        }
        Err(refusal) => {
            tracing::info!(
                target: "iot_api::auth",
                reason = refusal.as_str(),
                "token refused: {}",
                refusal.as_str()
            );
            Err(ApiError::unauthorized(refusal.as_str()))
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    /// The token first (401), then the query string (422).
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticated(req).and_then(|caller| {
            crate::query::check_request(req)?;
            Ok(caller)
        }))
    }
}

/// The caller of the event stream: the token of the `Authorization` header, else of the
/// `access_token` query parameter (a browser's `EventSource` cannot set headers). The parameter
/// is only declared by that route, so anywhere else it stays an unknown parameter (422). The
/// access log writes the path without the query, so the token is never logged.
#[derive(Debug)]
pub struct StreamCaller(pub Caller);

impl FromRequest for StreamCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    /// The token first (401), then the query string (422).
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match req.headers().get(header::AUTHORIZATION) {
            Some(value) => authenticated_by(req, Some(value.as_bytes())),
            None => {
                let token = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
                    .ok()
                    .and_then(|pairs| {
                        pairs
                            .0
                            .into_iter()
                            .find(|(k, _)| k == "access_token")
                            .map(|(_, v)| format!("Bearer {v}"))
                    });
                authenticated_by(req, token.as_deref().map(str::as_bytes))
            }
        };
        ready(result.and_then(|caller| {
            crate::query::check_request(req)?;
            Ok(Self(caller))
        }))
    }
}

/// Who may make a kind of write (PRODUCT.md, "Auth and tenancy"): its roles, listed in the order
/// refusals name them (`operator, admin, owner`), and the `code` its API family adds to a 403.
pub trait WritePolicy {
    const ROLES: &'static [Role];
    const CODE: Option<GroupApiCode>;

    /// The 403 for a caller without any of [`WritePolicy::ROLES`].
    #[must_use]
    fn refusal() -> ApiError {
        let roles: Vec<&str> = Self::ROLES.iter().map(|r| r.as_str()).collect();
        let error = ApiError::forbidden(format!(
            "Access forbidden. Required roles: {}",
            roles.join(", ")
        ));
        match Self::CODE {
            Some(code) => error.with_code(code),
            None => error,
        }
    }
}

/// Customer-API groups and membership, devices and readings: admins and owners.
#[derive(Debug)]
pub enum DataWrites {}

impl WritePolicy for DataWrites {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Owner];
    const CODE: Option<GroupApiCode> = None;
}

/// Group API writes: admins and owners, refused with `GROUP_004`.
#[derive(Debug)]
pub enum GroupApiWrites {}

impl WritePolicy for GroupApiWrites {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Owner];
    const CODE: Option<GroupApiCode> = Some(GroupApiCode::Forbidden);
}

/// Maintenance windows: operators too.
#[derive(Debug)]
pub enum WindowWrites {}

impl WritePolicy for WindowWrites {
    const ROLES: &'static [Role] = &[Role::Operator, Role::Admin, Role::Owner];
    const CODE: Option<GroupApiCode> = None;
}

/// Alerts (acknowledging them): operators too.
#[derive(Debug)]
pub enum AlertWrites {}

impl WritePolicy for AlertWrites {
    const ROLES: &'static [Role] = &[Role::Operator, Role::Admin, Role::Owner];
    const CODE: Option<GroupApiCode> = None;
}

/// Webhooks, reads included (their URLs and deliveries are the tenant's integration
/// secrets): admins and owners.
#[derive(Debug)]
pub enum WebhookAccess {}

impl WritePolicy for WebhookAccess {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Owner];
    const CODE: Option<GroupApiCode> = None;
}

/// A caller allowed to write under policy `P`. As a handler's first argument, it refuses the
/// request (401, then 403) before the path is looked up or the body is read: actix extracts
/// arguments in order and stops at the first error.
#[derive(Debug)]
pub struct Writer<P> {
    pub caller: Caller,
    policy: std::marker::PhantomData<P>,
}

impl<P> std::ops::Deref for Writer<P> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<P: WritePolicy> FromRequest for Writer<P> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    /// The token first (401), then the role (403), then the query string (422).
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = authenticated(req).and_then(|caller| {
            if !caller.has_any_role(P::ROLES) {
                return Err(P::refusal());
            }
            crate::query::check_request(req)?;
            Ok(Self {
                caller,
                policy: std::marker::PhantomData,
            })
        });
        ready(result)
    }
}

/// Signs a token for `tenant` with `roles`, valid for `ttl_seconds` from `now_unix`.
///
/// # Errors
/// When signing fails (it does not with an HMAC key).
pub fn issue_token(
    secret: &[u8],
    subject: &str,
    tenant: &str,
    roles: &[String],
    now_unix: u64,
    ttl_seconds: u64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = Claims {
        sub: subject.to_owned(),
        tenant_id: Some(tenant.to_owned()),
        roles: Some(roles.to_vec()),
        exp: now_unix + ttl_seconds,
        nbf: None,
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    const SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes!!";

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn bearer(token: &str) -> Vec<u8> {
        format!("Bearer {token}").into_bytes()
    }

    fn sign(claims: &serde_json::Value, alg: Algorithm, secret: &[u8]) -> String {
        encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    #[test]
    fn a_valid_token_yields_tenant_subject_and_known_roles() {
        let token = issue_token(
            SECRET,
            "alice",
            "acme",
            &["admin".into(), "wizard".into()],
            now(),
            60,
        )
        .unwrap();
        let caller = Authenticator::new(SECRET)
            .authenticate(Some(&bearer(&token)))
            .unwrap();
        assert_eq!(caller.tenant.as_str(), "acme");
        assert_eq!(caller.actor.as_str(), "alice");
        assert_eq!(caller.roles, [Role::Admin]);
    }

    #[test]
    fn bad_tokens_are_refused_with_401() {
        let auth = Authenticator::new(SECRET);
        let t = now();
        let expired = sign(
            &serde_json::json!({"sub": "a", "tenant_id": "t", "exp": t - 1}),
            Algorithm::HS256,
            SECRET,
        );
        let no_tenant = sign(
            &serde_json::json!({"sub": "a", "exp": t + 60}),
            Algorithm::HS256,
            SECRET,
        );
        let no_exp = sign(
            &serde_json::json!({"sub": "a", "tenant_id": "t"}),
            Algorithm::HS256,
            SECRET,
        );
        let wrong_key = sign(
            &serde_json::json!({"sub": "a", "tenant_id": "t", "exp": t + 60}),
            Algorithm::HS256,
            b"another-secret-another-secret-!!",
        );
        let hs512 = sign(
            &serde_json::json!({"sub": "a", "tenant_id": "t", "exp": t + 60}),
            Algorithm::HS512,
            SECRET,
        );
        let future_nbf = sign(
            &serde_json::json!({"sub": "a", "tenant_id": "t", "exp": t + 60, "nbf": t + 30}),
            Algorithm::HS256,
            SECRET,
        );
        // alg "none": header and claims, no signature.
        let unsigned = format!(
            "{}.{}.",
            base64_url(br#"{"alg":"none","typ":"JWT"}"#),
            base64_url(format!(r#"{{"sub":"a","tenant_id":"t","exp":{}}}"#, t + 60).as_bytes())
        );
        let oversized = format!("{}.{}.x", "a".repeat(MAX_TOKEN_BYTES), "b");
        let bad_sub = sign(
            &serde_json::json!({"sub": "", "tenant_id": "t", "exp": t + 60}),
            Algorithm::HS256,
            SECRET,
        );
        let empty_tenant = sign(
            &serde_json::json!({"sub": "a", "tenant_id": "", "exp": t + 60}),
            Algorithm::HS256,
            SECRET,
        );
        let numeric_exp = sign(
            &serde_json::json!({"sub": "a", "tenant_id": "t", "exp": "soon"}),
            Algorithm::HS256,
            SECRET,
        );
        for (name, header, refusal) in [
            ("missing", None, Refusal::Missing),
            ("not bearer", Some(b"Basic abc".to_vec()), Refusal::Missing),
            ("empty bearer", Some(b"Bearer ".to_vec()), Refusal::Missing),
            ("garbage", Some(bearer("not.a.jwt")), Refusal::Malformed),
            (
                "not utf-8",
                Some(b"Bearer \xff".to_vec()),
                Refusal::Malformed,
            ),
            ("expired", Some(bearer(&expired)), Refusal::Expired),
            ("no tenant", Some(bearer(&no_tenant)), Refusal::NoTenant),
            (
                "empty tenant",
                Some(bearer(&empty_tenant)),
                Refusal::NoTenant,
            ),
            ("no exp", Some(bearer(&no_exp)), Refusal::Malformed),
            (
                "exp not a number",
                Some(bearer(&numeric_exp)),
                Refusal::Malformed,
            ),
            ("empty sub", Some(bearer(&bad_sub)), Refusal::Malformed),
            ("wrong key", Some(bearer(&wrong_key)), Refusal::BadSignature),
            ("hs512", Some(bearer(&hs512)), Refusal::BadSignature),
            (
                "nbf in the future",
                Some(bearer(&future_nbf)),
                Refusal::NotYetValid,
            ),
            ("alg none", Some(bearer(&unsigned)), Refusal::Malformed),
            ("oversized", Some(bearer(&oversized)), Refusal::Malformed),
        ] {
            assert_eq!(
                auth.caller(header.as_deref()).err(),
                Some(refusal),
                "{name}"
            );
            let err = auth.authenticate(header.as_deref()).expect_err(name);
            assert_eq!(
                err.status(),
                actix_web::http::StatusCode::UNAUTHORIZED,
                "{name}"
            );
            assert_eq!(err.detail(), refusal.as_str(), "{name}");
        }
    }

    #[test]
    fn a_token_without_roles_or_with_none_is_valid_and_reads_only() {
        let auth = Authenticator::new(SECRET);
        let t = now();
        for claims in [
            serde_json::json!({"sub": "a", "tenant_id": "t", "exp": t + 60}),
            serde_json::json!({"sub": "a", "tenant_id": "t", "exp": t + 60, "roles": []}),
        ] {
            let token = sign(&claims, Algorithm::HS256, SECRET);
            let caller = auth.caller(Some(&bearer(&token))).expect("valid");
            assert!(caller.roles.is_empty(), "{claims}");
        }
    }

    fn base64_url(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}
