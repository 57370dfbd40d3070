//! `Idempotency-Key` on `POST /chat/`: reading the header, fingerprinting the
//! body, and answering a stored response.
//!
//! The key is 1 to 255 visible ASCII characters; a value in double quotes (the
//! structured-field string form) is the same key as the bare value. The
//! fingerprint is the SHA-256 of the body's canonical JSON (object keys sorted,
//! no white space), so two bodies that are the same JSON value have the same
//! fingerprint whatever their key order or spacing.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use chat_domain::{IdempotencyKey, StoredResponse};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header that marks a replay.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The request's key, if it sent one; a malformed value or a repeated header
/// is a 400 whose detail names the header.
pub fn key_of(request: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let mut values = request.headers().get_all(IDEMPOTENCY_KEY);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::BadHeader(
            "Idempotency-Key must be sent at most once".into(),
        ));
    }
    let text = value.to_str().map_err(|_| malformed())?;
    // `"abc"` (a structured-field string) is the same key as `abc`.
    let bare = text
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(text);
    IdempotencyKey::parse(bare)
        .map(Some)
        .map_err(|error| ApiError::BadHeader(format!("Idempotency-Key {error}")))
}

fn malformed() -> ApiError {
    ApiError::BadHeader("Idempotency-Key may only hold visible ASCII characters (0x21-0x7E)".into())
}

/// SHA-256 (lower-case hex) of the value's canonical JSON.
pub fn fingerprint(value: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(value, &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// JSON with object keys sorted and no white space; independent of whether
/// serde_json keeps insertion order.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (index, (key, value)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The HTTP response for a stored one; a replay is marked `Idempotent-Replayed: true`.
pub fn respond(
    stored: &StoredResponse,
    replayed: bool,
    cache_control: &'static str,
) -> Result<HttpResponse, ApiError> {
    let status = StatusCode::from_u16(stored.status).map_err(ApiError::internal)?;
    let mut response = HttpResponse::build(status);
    response
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((CACHE_CONTROL, cache_control));
    for (name, value) in &stored.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(ApiError::internal)?;
        let value = HeaderValue::from_str(value).map_err(ApiError::internal)?;
        response.insert_header((name, value));
    }
    if replayed {
        response.insert_header((HeaderName::from_static(IDEMPOTENT_REPLAYED), "true"));
    }
    Ok(response.body(stored.body.clone()))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;
    use serde_json::json;

    use super::*;

    fn key(values: &[&str]) -> Result<Option<IdempotencyKey>, ApiError> {
        let mut request = TestRequest::default();
        for value in values {
            request = request.append_header((IDEMPOTENCY_KEY, *value));
        }
        key_of(&request.to_http_request())
    }

    #[test]
    fn quoted_and_bare_keys_are_the_same() {
        let bare = key(&["abc"]).expect("valid").expect("present");
        let quoted = key(&["\"abc\""]).expect("valid").expect("present");
        assert_eq!(bare, quoted);
        assert_eq!(key(&[]).expect("valid"), None);
        let quoted = format!("\"{}\"", "k".repeat(255));
        assert!(key(&[quoted.as_str()]).is_ok());
    }

    #[test]
    fn malformed_keys_name_the_header() {
        let too_long = "k".repeat(256);
        for values in [
            &["a b"][..],
            &[""][..],
            &["\"\""][..],
            &[too_long.as_str()][..],
            &["a", "b"][..],
        ] {
            let Err(error) = key(values) else {
                panic!("{values:?} is refused");
            };
            assert!(error.to_string().contains("Idempotency-Key"), "{error}");
            assert!(error.to_string().starts_with("400"), "{error}");
        }
    }

    #[test]
    fn the_fingerprint_is_of_the_json_value() {
        let a: Value = serde_json::from_str(r#"{"title":"t","description":"d"}"#).expect("json");
        let b: Value =
            serde_json::from_str("{ \"description\" : \"d\",\n \"title\": \"t\" }").expect("json");
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&json!({"title": "t"})));
        assert_eq!(fingerprint(&a).len(), 64);
    }
}
