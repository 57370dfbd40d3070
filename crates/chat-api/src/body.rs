//! Request bodies: size limit, media type, JSON syntax — checked in the
//! contract's order (413, then 415, then 400) before any field is looked at.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{FromRequest, HttpRequest};
use futures_util::StreamExt;

use crate::error::ApiError;

/// The largest body accepted: 64 KiB (65,536 bytes is accepted, 65,537 is a 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An oversized body is read and discarded up to this much, so the client is
/// still reading when the 413 arrives instead of seeing its connection reset;
/// beyond it the connection is closed.
const DRAIN_LIMIT: usize = 1024 * 1024;

/// How long a client may take to send a body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Which media types a route accepts for its body.
pub trait MediaTypes {
    /// Lower-case media types, without parameters.
    const ACCEPTED: &'static [&'static str];
}

/// `application/json` only (POST, PUT).
#[derive(Debug)]
pub struct Json;

impl MediaTypes for Json {
    const ACCEPTED: &'static [&'static str] = &["application/json"];
}

/// `application/json` or `application/merge-patch+json` (PATCH).
#[derive(Debug)]
pub struct JsonOrMergePatch;

impl MediaTypes for JsonOrMergePatch {
    const ACCEPTED: &'static [&'static str] = &["application/json", "application/merge-patch+json"];
}

/// A body that is syntactically valid JSON of an accepted media type.
#[derive(Debug)]
pub struct JsonBody<M: MediaTypes = Json> {
    value: serde_json::Value,
    _media: PhantomData<M>,
}

impl<M: MediaTypes> JsonBody<M> {
    /// The parsed document.
    pub fn into_value(self) -> serde_json::Value {
        self.value
    }
}

impl<M: MediaTypes + 'static> FromRequest for JsonBody<M> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = payload.take();
        // Nothing runs until polled, so checks of the extractors before this
        // one in a handler's arguments (token, path, query) come first.
        Box::pin(async move {
            let bytes = tokio::time::timeout(BODY_TIMEOUT, read_limited(&request, payload))
                .await
                .map_err(|_| ApiError::BodyTimeout)??;
            check_media_type::<M>(&request, bytes.is_empty())?;
            if bytes.is_empty() {
                return Err(ApiError::MalformedJson(
                    "request body is empty; a JSON object is expected".into(),
                ));
            }
            let value = serde_json::from_slice(&bytes).map_err(|error| {
                ApiError::MalformedJson(format!("request body is not valid JSON: {error}"))
            })?;
            Ok(Self {
                value,
                _media: PhantomData,
            })
        })
    }
}

/// Reads at most [`MAX_BODY_BYTES`]; more is a 413.
async fn read_limited(request: &HttpRequest, mut payload: Payload) -> Result<Vec<u8>, ApiError> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > DRAIN_LIMIT) {
        return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0).min(MAX_BODY_BYTES));
    let mut received = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| {
            ApiError::MalformedJson(format!("request body could not be read: {error}"))
        })?;
        received += chunk.len();
        if received > DRAIN_LIMIT {
            break;
        }
        if received <= MAX_BODY_BYTES {
            body.extend_from_slice(&chunk);
        }
    }
    if received > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
    }
    Ok(body)
}

/// 415 unless the body is declared as one of `M`'s media types. An empty body
/// without a `Content-Type` is not "a body": it falls through to the 400.
fn check_media_type<M: MediaTypes>(request: &HttpRequest, empty: bool) -> Result<(), ApiError> {
    let expected = || M::ACCEPTED.join(" or ");
    let Some(header) = request.headers().get(CONTENT_TYPE) else {
        return if empty {
            Ok(())
        } else {
            Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type is missing; send {}",
                expected()
            )))
        };
    };
    let media_type = header
        .to_str()
        .ok()
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if M::ACCEPTED.contains(&media_type.as_str()) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be {}",
            expected()
        )))
    }
}
