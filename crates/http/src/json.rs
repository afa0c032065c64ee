//! Request bodies: size-limited, and parsed so that every error names the offending field.

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The largest request body accepted (413 beyond).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A JSON body of type `T`, at most `LIMIT` bytes (413 beyond). Malformed JSON, a wrong type, a
/// missing or unknown field: 422 with a `detail` that starts with the JSON path of the problem.
#[derive(Debug)]
pub struct JsonBody<T, const LIMIT: usize = BODY_LIMIT>(pub T);

impl<T: DeserializeOwned + 'static, const LIMIT: usize> FromRequest for JsonBody<T, LIMIT> {
    type Error = ApiError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if let Err(e) = json_content_type(req) {
            return Box::pin(std::future::ready(Err(e)));
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if declared.is_some_and(|len| len > LIMIT) {
                return Err(ApiError::payload_too_large(LIMIT));
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk
                    .map_err(|e| ApiError::bad_request(format!("body: could not be read: {e}")))?;
                if body.len() + chunk.len() > LIMIT {
                    return Err(ApiError::payload_too_large(LIMIT));
                }
                body.extend_from_slice(&chunk);
            }
            // Some editors (and PowerShell) start UTF-8 files with a byte order mark; JSON
            // forbids it, but what follows it is what the client meant.
            let body = body.strip_prefix(UTF8_BOM).unwrap_or(&body);
            parse(body).map(JsonBody)
        })
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The detail of a 415: the media type JSON routes read.
pub const JSON_EXPECTED: &str = "Content-Type must be application/json";

/// Accepts a request whose body is declared JSON (`application/json` or `application/*+json`,
/// with any parameters), or not declared at all: curl's `-d` examples send none that fits, and
/// a client that sends none means JSON here.
///
/// # Errors
/// 415 naming the expected type for any other `Content-Type`, or one that does not parse.
pub fn json_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let json = essence == "application/json"
        || essence
            .strip_prefix("application/")
            .and_then(|subtype| subtype.strip_suffix("+json"))
            .is_some_and(|name| !name.is_empty() && !name.contains('/'));
    if json {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(JSON_EXPECTED))
    }
}

/// Parses `bytes` as a `T`, naming the field at fault on failure.
///
/// # Errors
/// 422 for an empty body, malformed JSON, or a value that does not fit `T`.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde would also fill a struct from an array, positionally; clients mean objects.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(ApiError::invalid("body", "a JSON object is required")),
        Some(b'{') => {}
        Some(_) if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() => {
            return Err(ApiError::invalid("body", "malformed JSON"));
        }
        Some(_) => return Err(ApiError::invalid("body", "must be a JSON object")),
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // A syntax error inside a field's value (a number out of range, say) still names the
        // field; one between fields, or an early end, is the body's.
        let field = if inner.is_eof() || path == "." {
            "body"
        } else {
            &path
        };
        let reason = if inner.is_syntax() || inner.is_eof() {
            format!("malformed JSON: {inner}")
        } else {
            without_position(&inner.to_string()).to_owned()
        };
        ApiError::invalid(field, reason)
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::invalid("body", format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// serde_json appends " at line L column C" to data errors; the field path says more.
fn without_position(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |i| &message[..i])
}

/// For PATCH bodies: tells an absent field (`None`) from an explicit `null` (`Some(None)`).
///
/// # Errors
/// Whatever `T`'s own deserialisation refuses.
pub fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        nested: Option<Nested>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        hour: u8,
    }

    fn detail(json: &str) -> String {
        parse::<Body>(json.as_bytes())
            .unwrap_err()
            .detail()
            .to_owned()
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            detail(r#"{"name": 5}"#),
            "name: invalid type: integer `5`, expected a string"
        );
        assert_eq!(
            detail(r#"{"name": "a", "nested": {"hour": 300}}"#),
            "nested.hour: invalid value: integer `300`, expected u8"
        );
        assert!(
            detail(r#"{"name": "a", "bogus": 1}"#).starts_with("bogus: unknown field `bogus`"),
            "{}",
            detail(r#"{"name": "a", "bogus": 1}"#)
        );
        assert_eq!(detail(r"{}"), "body: missing field `name`");
    }

    fn content_type_accepted(value: Option<&str>) -> bool {
        let mut req = actix_web::test::TestRequest::post();
        if let Some(value) = value {
            req = req.insert_header((header::CONTENT_TYPE, value));
        }
        json_content_type(&req.to_http_request()).is_ok()
    }

    #[test]
    fn json_and_no_content_type_are_read_and_anything_else_is_refused() {
        for ok in [
            None,
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("application/merge-patch+json"),
            Some("application/problem+json;charset=UTF-8"),
        ] {
            assert!(content_type_accepted(ok), "{ok:?}");
        }
        for refused in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "application/+json",
            "text/json+json",
            "",
        ] {
            assert!(!content_type_accepted(Some(refused)), "{refused}");
        }
    }

    #[test]
    fn malformed_or_empty_bodies_are_named_body() {
        assert!(detail(r#"{"name": "#).starts_with("body: malformed JSON"));
        assert!(
            detail(r#"{"name": "a", "nested": {"hour": 1e400}}"#)
                .starts_with("nested.hour: malformed JSON: number out of range"),
            "{}",
            detail(r#"{"name": "a", "nested": {"hour": 1e400}}"#)
        );
        assert!(detail(r#"{"name": "a"} trailing"#).starts_with("body: malformed JSON"));
        assert_eq!(detail(""), "body: a JSON object is required");
        assert_eq!(detail("[]"), "body: must be a JSON object");
        assert_eq!(detail(r#"["a", null]"#), "body: must be a JSON object");
        assert_eq!(detail("5"), "body: must be a JSON object");
        assert!(detail("[").starts_with("body: malformed JSON"));
    }
}
