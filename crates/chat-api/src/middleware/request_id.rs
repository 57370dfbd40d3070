//! `X-Request-Id`: the client's, when it is usable, or a new one.

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderName, HeaderValue};

/// The request id header, accepted from clients and set on every response.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A client's request id if it is short, printable and free of spaces; else a new one.
pub fn of(request: &ServiceRequest) -> HeaderValue {
    request
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|value| {
            let bytes = value.as_bytes();
            (1..=128).contains(&bytes.len()) && bytes.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
        })
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn id_for(sent: Option<&str>) -> String {
        let mut request = TestRequest::default();
        if let Some(sent) = sent {
            request = request.insert_header((X_REQUEST_ID, sent));
        }
        let value = of(&request.to_srv_request());
        value.to_str().expect("ascii").to_owned()
    }

    #[test]
    fn a_usable_client_id_is_kept_and_anything_else_replaced() {
        assert_eq!(id_for(Some("abc-123")), "abc-123");
        for unusable in [None, Some("has space"), Some(&*"x".repeat(129))] {
            let made = id_for(unusable);
            assert_eq!(made.len(), 32, "a new simple UUID for {unusable:?}");
            assert!(made.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
}
