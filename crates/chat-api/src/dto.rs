//! The wire format: request bodies (validated field by field, so a 422 lists
//! every invalid field) and responses (built from domain values). The domain
//! never sees these types.

use std::fmt::{self, Display};

use chat_domain::{
    Chat, ChatPatch, ChatReplacement, Description, DescriptionPatch, KmeansData, NewChat,
    Timestamp, Title,
};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::fields::FieldErrors;

/// An instant as the contract writes it: RFC 3339, UTC, exactly six
/// fractional digits and a `Z` (`2026-11-23T22:42:00.123456Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339Micros(pub Timestamp);

impl Rfc3339Micros {
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, by chrono.
    fn text(&self) -> String {
        self.0
            .as_datetime()
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl Display for Rfc3339Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl Serialize for Rfc3339Micros {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text())
    }
}

/// A chat as the API returns it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ChatRead)]
pub struct ChatRead<'a> {
    /// Server-generated UUID (v7, time-ordered).
    pub id: uuid::Uuid,
    /// Trimmed; 1 to 255 characters.
    pub title: &'a str,
    /// Up to 10,000 characters, or `null`.
    pub description: Option<&'a str>,
    /// The owner: the token's `sub`.
    pub user_id: uuid::Uuid,
    /// RFC 3339, UTC, six fractional digits.
    #[schema(value_type = String, format = DateTime, example = "2026-11-23T22:42:00.123456Z")]
    pub created_at: Rfc3339Micros,
    /// Changes on every successful PUT or PATCH except the empty PATCH.
    #[schema(value_type = String, format = DateTime, example = "2026-11-23T22:42:00.123456Z")]
    pub updated_at: Rfc3339Micros,
}

impl<'a> From<&'a Chat> for ChatRead<'a> {
    fn from(chat: &'a Chat) -> Self {
        Self {
            id: *chat.id.as_uuid(),
            title: chat.title.as_str(),
            description: chat.description.as_ref().map(Description::as_str),
            user_id: *chat.user_id.as_uuid(),
            created_at: Rfc3339Micros(chat.created_at),
            updated_at: Rfc3339Micros(chat.updated_at),
        }
    }
}

/// One k-means result: the cluster centres of a trained model.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = KmeansData)]
pub struct KmeansDataRead<'a> {
    /// Its UUID.
    pub id: uuid::Uuid,
    /// The chat it belongs to.
    pub chat_id: uuid::Uuid,
    /// The number of clusters (rows of `centroids`), at least 1.
    #[schema(minimum = 1)]
    pub k: usize,
    /// `k` rows of equal length, every value finite.
    #[schema(example = json!([[0.0, 1.5], [2.0, 3.0], [4.5, 0.5]]))]
    pub centroids: &'a [Vec<f64>],
    /// RFC 3339, UTC, six fractional digits.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Rfc3339Micros,
}

impl<'a> From<&'a KmeansData> for KmeansDataRead<'a> {
    fn from(data: &'a KmeansData) -> Self {
        Self {
            id: *data.id.as_uuid(),
            chat_id: *data.chat_id.as_uuid(),
            k: data.k(),
            centroids: data.centroids.rows(),
            created_at: Rfc3339Micros(data.created_at),
        }
    }
}

/// A chat with its k-means results, oldest first (`?include=kmeans_datas`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ChatReadWithKmeans)]
pub struct ChatReadWithKmeans<'a> {
    /// The chat's fields.
    #[serde(flatten)]
    pub chat: ChatRead<'a>,
    /// Its k-means results, oldest first.
    pub kmeans_datas: Vec<KmeansDataRead<'a>>,
}

// The request bodies below document themselves for OpenAPI only; their
// length limits are the domain's (`Title`, `Description`), set on the
// document by `openapi::DomainLimits`.

/// Body of `POST /chat/`. Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the body for OpenAPI; parsing is `parse_create`
pub struct ChatCreate {
    /// Trimmed of white space; 1 to 255 characters after trimming; no U+0000.
    #[schema(example = "My Chat")]
    title: String,
    /// At most 10,000 characters; no U+0000; omitted means `null`.
    #[schema(nullable, example = "Example chat")]
    description: Option<String>,
}

/// Body of `PUT /chat/{chat_id}`: a full replacement (an omitted description becomes `null`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the body for OpenAPI; parsing is `parse_replacement`
pub struct ChatUpdateFull {
    /// Trimmed of white space; 1 to 255 characters after trimming; no U+0000.
    title: String,
    /// At most 10,000 characters; no U+0000; omitted means `null`.
    #[schema(nullable)]
    description: Option<String>,
}

/// Body of `PATCH /chat/{chat_id}` (also as `application/merge-patch+json`):
/// any subset of the fields; `{}` changes nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the body for OpenAPI; parsing is `parse_patch`
pub struct ChatUpdatePartial {
    /// A new title; `null` is refused.
    #[schema(nullable = false)]
    title: Option<String>,
    /// A new description; `null` clears it.
    #[schema(nullable)]
    description: Option<Option<String>>,
}

/// Walks a JSON object's fields, collecting every problem before answering.
struct Fields {
    object: Map<String, Value>,
    errors: FieldErrors,
}

/// A field that may be absent, `null`, or a value.
enum Nullable<T> {
    Absent,
    Null,
    Value(T),
    Invalid,
}

impl Fields {
    fn new(value: Value, known: &[&str]) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::body();
        let Value::Object(object) = value else {
            errors.add("body", "must be a JSON object");
            return Err(errors.into_error());
        };
        for key in object.keys().filter(|key| !known.contains(&key.as_str())) {
            errors.add(key.as_str(), "unknown field");
        }
        Ok(Self { object, errors })
    }

    fn reject(&mut self, field: &str, message: impl Into<String>) {
        self.errors.add(field, message);
    }

    /// A string field parsed by `parse`; `required` decides whether absence is an error.
    fn string<T, E: Display>(
        &mut self,
        field: &str,
        required: bool,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Nullable<T> {
        match self.object.get(field) {
            None if required => {
                self.reject(field, "is required");
                Nullable::Invalid
            }
            None => Nullable::Absent,
            Some(Value::Null) => Nullable::Null,
            Some(Value::String(text)) => match parse(text) {
                Ok(value) => Nullable::Value(value),
                Err(error) => {
                    self.reject(field, error.to_string());
                    Nullable::Invalid
                }
            },
            Some(_) => {
                self.reject(field, "must be a string");
                Nullable::Invalid
            }
        }
    }

    /// A string that must not be `null`.
    fn non_null<T, E: Display>(
        &mut self,
        field: &str,
        required: bool,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        match self.string(field, required, parse) {
            Nullable::Value(value) => Some(value),
            Nullable::Null => {
                self.reject(field, "must be a string, not null");
                None
            }
            Nullable::Absent | Nullable::Invalid => None,
        }
    }

    fn finish(self) -> Result<(), ApiError> {
        self.errors.finish()
    }
}

/// A validated value that `finish` guarantees is present.
fn validated<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::internal(format!("{field} passed validation without a value")))
}

fn title_and_description(value: Value) -> Result<(Title, Option<Description>), ApiError> {
    let mut fields = Fields::new(value, &["title", "description"])?;
    let title = fields.non_null("title", true, Title::parse);
    let description = match fields.string("description", false, Description::parse) {
        Nullable::Value(description) => Some(Some(description)),
        Nullable::Absent | Nullable::Null => Some(None),
        Nullable::Invalid => None,
    };
    fields.finish()?;
    Ok((
        validated(title, "title")?,
        validated(description, "description")?,
    ))
}

/// `POST` body to command.
pub fn parse_create(value: Value) -> Result<NewChat, ApiError> {
    let (title, description) = title_and_description(value)?;
    Ok(NewChat { title, description })
}

/// `PUT` body to command.
pub fn parse_replacement(value: Value) -> Result<ChatReplacement, ApiError> {
    let (title, description) = title_and_description(value)?;
    Ok(ChatReplacement { title, description })
}

/// `PATCH` body to command.
pub fn parse_patch(value: Value) -> Result<ChatPatch, ApiError> {
    let mut fields = Fields::new(value, &["title", "description"])?;
    let title = fields.non_null("title", false, Title::parse);
    let description = match fields.string("description", false, Description::parse) {
        Nullable::Absent | Nullable::Invalid => DescriptionPatch::Unchanged,
        Nullable::Null => DescriptionPatch::Clear,
        Nullable::Value(description) => DescriptionPatch::Set(description),
    };
    fields.finish()?;
    Ok(ChatPatch { title, description })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn errors(result: Result<impl std::fmt::Debug, ApiError>) -> Vec<(String, String)> {
        match result {
            Err(ApiError::Invalid { errors, .. }) => {
                errors.into_iter().map(|e| (e.field, e.message)).collect()
            }
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn create_trims_and_defaults_the_description() {
        let command = parse_create(json!({"title": "  Hi  "})).expect("valid");
        assert_eq!(command.title.as_str(), "Hi");
        assert_eq!(command.description, None);
        let command = parse_create(json!({"title": "x", "description": null})).expect("valid");
        assert_eq!(command.description, None);
    }

    #[test]
    fn every_invalid_field_is_listed() {
        let found = errors(parse_create(
            json!({"title": "  ", "description": 5, "titel": "x", "user_id": "u"}),
        ));
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found.contains(&("title".into(), "must not be empty".into())));
        assert!(found.contains(&("description".into(), "must be a string".into())));
        assert!(found.contains(&("titel".into(), "unknown field".into())));
        assert!(found.contains(&("user_id".into(), "unknown field".into())));
    }

    #[test]
    fn wrong_shapes_are_422s_that_say_why() {
        assert_eq!(
            errors(parse_create(json!([1, 2]))),
            [("body".into(), "must be a JSON object".into())]
        );
        assert_eq!(
            errors(parse_create(json!({}))),
            [("title".into(), "is required".into())]
        );
        assert_eq!(
            errors(parse_create(json!({"title": null}))),
            [("title".into(), "must be a string, not null".into())]
        );
        assert_eq!(
            errors(parse_create(json!({"title": "a\u{0}b"}))),
            [("title".into(), "must not contain U+0000".into())]
        );
        let long = errors(parse_create(json!({"title": "x".repeat(256)})));
        assert_eq!(
            long,
            [(
                "title".into(),
                "must be at most 255 characters (got 256)".into()
            )]
        );
    }

    #[test]
    fn patch_distinguishes_absent_null_and_set() {
        assert!(parse_patch(json!({})).expect("valid").is_noop());
        let clear = parse_patch(json!({"description": null})).expect("valid");
        assert_eq!(clear.description, DescriptionPatch::Clear);
        assert!(clear.title.is_none());
        assert_eq!(
            errors(parse_patch(json!({"title": null}))),
            [("title".into(), "must be a string, not null".into())]
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc_to_the_microsecond_in_every_year() {
        for micros in [
            0_i64,
            1,
            999_999,
            951_782_400_000_000,
            1_795_000_000_123_456,
            253_402_300_799_999_999,
        ] {
            let stamp = Rfc3339Micros(Timestamp::from_unix_micros(micros).expect("in range"));
            let chrono = stamp
                .0
                .as_datetime()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string();
            assert_eq!(stamp.to_string(), chrono);
            assert_eq!(
                serde_json::to_string(&stamp).expect("json"),
                format!("\"{chrono}\"")
            );
        }
    }

    #[test]
    fn timestamps_always_have_six_digits_and_a_z() {
        let whole = Timestamp::from_unix_micros(1_795_000_000_000_000).expect("in range");
        assert_eq!(
            Rfc3339Micros(whole).to_string(),
            "2026-11-18T11:06:40.000000Z"
        );
        let fine = Timestamp::from_unix_micros(1_795_000_000_000_001).expect("in range");
        assert_eq!(
            Rfc3339Micros(fine).to_string(),
            "2026-11-18T11:06:40.000001Z"
        );
    }
}
