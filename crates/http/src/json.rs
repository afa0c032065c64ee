//! Request bodies: size-limited, and parsed so that every error names the offending field.

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpMessage as _, HttpRequest};
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
        // A create with an Idempotency-Key compares its body bytes with the first request's.
        let keep_raw = crate::idempotency::requested(req).then(|| req.clone());
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
            if let Some(req) = keep_raw {
                req.extensions_mut()
                    .insert(crate::idempotency::RawBody(body.clone().freeze()));
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
/// 422 for an empty body, malformed JSON, or a value that does not fit `T`; the `detail` is
/// worded for people (no serde or Rust type names), see [`reword`].
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde would also fill a struct from an array, positionally; clients mean objects.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(ApiError::invalid("body", "a JSON object is required")),
        Some(b'{') => {}
        Some(_) => {
            return Err(
                match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                    Err(e) => malformed(&e),
                    Ok(_) => ApiError::invalid("body", "must be a JSON object"),
                },
            )
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = without_position(&inner.to_string()).to_owned();
        if inner.is_syntax() || inner.is_eof() {
            // A number beyond f64 is well-formed JSON the parser cannot hold: the field says
            // more than the position. Any other syntax error is the body's (its path, if any,
            // is a guess: `?`).
            let at_field = path != "." && !path.contains('?');
            return if at_field && message == "number out of range" {
                ApiError::invalid(&path, message)
            } else if at_field && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
                // Well-formed after all: serde_json reports a number or a list where an enum's
                // name belongs as a syntax error.
                ApiError::invalid(&path, "must be one of the accepted values")
            } else {
                malformed(&inner)
            };
        }
        let (field, reason) = reword(&path, &message);
        ApiError::invalid(&field, reason)
    })?;
    deserializer.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

/// `body: malformed JSON at line L, column C: <reason>`.
fn malformed(e: &serde_json::Error) -> ApiError {
    let reason = reword_syntax(without_position(&e.to_string()));
    ApiError::invalid(
        "body",
        format!(
            "malformed JSON at line {}, column {}: {reason}",
            e.line(),
            e.column()
        ),
    )
}

/// serde_json's syntax messages in plain words (its own name parser states and tokens).
fn reword_syntax(message: &str) -> String {
    if let Some(what) = message.strip_prefix("EOF while parsing ") {
        return format!("the body ends inside {what}");
    }
    match message {
        "expected `:`" => "':' missing after a key",
        "expected `,` or `}`" => "',' or '}' missing after a value in an object",
        "expected `,` or `]`" => "',' or ']' missing after a value in an array",
        "expected ident" => "unknown word (true, false and null are the only bare words)",
        "expected value" => "a value is missing or is not JSON",
        "key must be a string" => "an object key must be a string in double quotes",
        "recursion limit exceeded" => "nested too deeply",
        "control character (\\u0000-\\u001F) found while parsing a string" => {
            "a control character inside a string must be escaped"
        }
        other => other,
    }
    .to_owned()
}

/// serde_json appends " at line L column C" to its errors; the field path says more.
fn without_position(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |i| &message[..i])
}

/// The field and the reason a person reads for serde's `message` about the value at `path`
/// (`.` for the body itself): `must be a number` rather than `invalid type: string "x",
/// expected f64`. Messages serde did not write (a type's own check) pass through unchanged.
#[must_use]
pub fn reword(path: &str, message: &str) -> (String, String) {
    let at = |path: &str| {
        if path == "." || path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }
    };
    let child = |name: &str| {
        if path == "." || path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(name) = message.strip_prefix("missing field ") {
        return (child(&ticked(name).concat()), "required".to_owned());
    }
    if let Some(name) = message.strip_prefix("duplicate field ") {
        return (
            child(&ticked(name).concat()),
            "given more than once".to_owned(),
        );
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let allowed = rest
            .split_once(", expected ")
            .map(|(_, names)| ticked(names))
            .unwrap_or_default();
        let reason = match allowed.as_slice() {
            [] => "unknown field; this object takes none".to_owned(),
            [one] => format!("unknown field; the only field allowed here is {one}"),
            many => format!("unknown field; allowed fields are {}", many.join(", ")),
        };
        return (at(path), reason);
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let allowed = rest
            .split_once(", expected ")
            .map(|(_, names)| ticked(names))
            .unwrap_or_default();
        return (at(path), one_of(&allowed));
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((_, expected)) = rest.rsplit_once(", expected ") {
            return (at(path), format!("must be {}", kind(expected)));
        }
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        if let Some((_, expected)) = rest.rsplit_once(", expected ") {
            let reason = match integer_range(expected) {
                Some((min, max)) => format!("must be an integer from {min} to {max}"),
                None => format!("must be {}", kind(expected)),
            };
            return (at(path), reason);
        }
    }
    if let Some(rest) = message.strip_prefix("invalid length ") {
        if let Some((_, expected)) = rest.split_once(", expected ") {
            return (at(path), format!("must be {}", kind(expected)));
        }
    }
    if message.starts_with("data did not match any variant") {
        return (at(path), "has a shape this field does not take".to_owned());
    }
    (at(path), message.to_owned())
}

/// The names between backticks in `text`, in order.
fn ticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn one_of(allowed: &[&str]) -> String {
    match allowed {
        [] => "is not an accepted value".to_owned(),
        [one] => format!("must be {one}"),
        many => format!("must be one of {}", many.join(", ")),
    }
}

/// What serde's `expected` part means, said as JSON: `f64` is `a number`, `a sequence` is `an
/// array`, `struct X` is `an object`.
fn kind(expected: &str) -> String {
    if integer_range(expected).is_some() {
        return "an integer".to_owned();
    }
    let plain = match expected {
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a string" | "a borrowed string" | "a character" | "a string or bytes" => "a string",
        "a sequence" => "an array",
        "a map" => "an object",
        "unit" => "null",
        e if e.starts_with("struct ") || e.starts_with("a map") => "an object",
        e if e.starts_with("tuple") || e.starts_with("a tuple") || e.starts_with("a sequence") => {
            "an array"
        }
        e if e.starts_with("enum ") || e.starts_with("variant identifier") => {
            "one of the accepted values"
        }
        e if e.starts_with("one of ") || e.contains('`') => {
            return one_of(&ticked(e));
        }
        e => return e.to_owned(),
    };
    plain.to_owned()
}

/// The bounds of a Rust integer type serde names as the expectation (`u8` is 0 to 255).
fn integer_range(expected: &str) -> Option<(i128, u128)> {
    Some(match expected {
        "u8" => (0, u128::from(u8::MAX)),
        "u16" => (0, u128::from(u16::MAX)),
        "u32" => (0, u128::from(u32::MAX)),
        "u64" | "usize" => (0, u128::from(u64::MAX)),
        "i8" => (i128::from(i8::MIN), i8::MAX.unsigned_abs().into()),
        "i16" => (i128::from(i16::MIN), i16::MAX.unsigned_abs().into()),
        "i32" => (i128::from(i32::MIN), i32::MAX.unsigned_abs().into()),
        "i64" | "isize" => (i128::from(i64::MIN), i64::MAX.unsigned_abs().into()),
        _ => return None,
    })
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

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Kinds {
        number: Option<f64>,
        flag: Option<bool>,
        list: Option<Vec<u8>>,
        color: Option<Color>,
        nested: Option<Nested>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Color {
        Red,
        Green,
        Blue,
    }

    fn kinds(json: &str) -> String {
        parse::<Kinds>(json.as_bytes())
            .unwrap_err()
            .detail()
            .to_owned()
    }

    #[test]
    fn errors_name_the_field_in_words_for_people() {
        assert_eq!(detail(r#"{"name": 5}"#), "name: must be a string");
        assert_eq!(
            detail(r#"{"name": "a", "nested": {"hour": 300}}"#),
            "nested.hour: must be an integer from 0 to 255"
        );
        assert_eq!(
            detail(r#"{"name": "a", "nested": {"hour": 1.5}}"#),
            "nested.hour: must be an integer"
        );
        assert_eq!(
            detail(r#"{"name": "a", "bogus": 1}"#),
            "bogus: unknown field; allowed fields are name, nested"
        );
        assert_eq!(detail(r"{}"), "name: required");
        assert_eq!(
            detail(r#"{"name": "a", "nested": {}}"#),
            "nested.hour: required"
        );
        assert_eq!(kinds(r#"{"number": "x"}"#), "number: must be a number");
        assert_eq!(kinds(r#"{"flag": 1}"#), "flag: must be true or false");
        assert_eq!(kinds(r#"{"list": {}}"#), "list: must be an array");
        assert_eq!(
            kinds(r#"{"list": [1, -1]}"#),
            "list[1]: must be an integer from 0 to 255"
        );
        assert_eq!(kinds(r#"{"nested": []}"#), "nested: must be an object");
        assert_eq!(kinds(r#"{"nested": 3}"#), "nested: must be an object");
        assert_eq!(
            kinds(r#"{"color": "pink"}"#),
            "color: must be one of red, green, blue"
        );
        assert_eq!(
            kinds(r#"{"color": 1}"#),
            "color: must be one of the accepted values"
        );
    }

    #[test]
    fn no_detail_carries_serde_or_rust_wording() {
        for body in [
            r#"{"number": "x"}"#,
            r#"{"flag": "yes"}"#,
            r#"{"list": "x"}"#,
            r#"{"list": [300]}"#,
            r#"{"color": "pink"}"#,
            r#"{"nested": {"hour": "x"}}"#,
            r#"{"nested": {"hour": 1, "hour": 2}}"#,
            r#"{"other": 1}"#,
        ] {
            let detail = kinds(body);
            for word in [
                "expected",
                "invalid type",
                "invalid value",
                "variant",
                "f64",
                "u8",
                "sequence",
                "struct",
                "`",
            ] {
                assert!(!detail.contains(word), "{body} -> {detail}");
            }
        }
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
        assert_eq!(
            detail("{\n  \"name\": "),
            "body: malformed JSON at line 2, column 10: the body ends inside a value"
        );
        assert_eq!(
            detail(r#"{"name": "a",}"#),
            "body: malformed JSON at line 1, column 14: trailing comma"
        );
        assert_eq!(
            detail(r#"{"name": "a", "nested": {"hour": 1e400}}"#),
            "nested.hour: number out of range"
        );
        assert_eq!(
            detail(r#"{"name": "a"} trailing"#),
            "body: malformed JSON at line 1, column 15: trailing characters"
        );
        assert_eq!(detail(""), "body: a JSON object is required");
        assert_eq!(detail("[]"), "body: must be a JSON object");
        assert_eq!(detail(r#"["a", null]"#), "body: must be a JSON object");
        assert_eq!(detail("5"), "body: must be a JSON object");
        assert_eq!(
            detail("["),
            "body: malformed JSON at line 1, column 1: the body ends inside a list"
        );
        assert_eq!(
            detail("nope"),
            "body: malformed JSON at line 1, column 2: unknown word (true, false and null are \
             the only bare words)"
        );
        assert_eq!(
            detail("{\"name\" \"a\"}"),
            "body: malformed JSON at line 1, column 9: ':' missing after a key"
        );
        assert_eq!(
            detail("{\"name\": \"a\" \"b\"}"),
            "body: malformed JSON at line 1, column 14: ',' or '}' missing after a value in an \
             object"
        );
    }
}
