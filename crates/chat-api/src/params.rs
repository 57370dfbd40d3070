//! Path and query parameters. Each route's parameters are one extractor, so a
//! single 422 lists every invalid one. Unknown query parameters are ignored; a
//! known one given twice, or empty, is invalid.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use chat_domain::{ChatId, Limit, PageRequest, PageStart, Skip};

use crate::cursor;
use crate::error::{ApiError, FieldError};
use crate::fields::FieldErrors;

/// The query string's pairs, percent-decoded.
struct Query(Vec<(String, String)>);

impl Query {
    fn of(request: &HttpRequest) -> Self {
        Self(serde_urlencoded::from_str(request.query_string()).unwrap_or_default())
    }

    /// The single, non-empty value of a known parameter, if given.
    fn one(&self, name: &str, errors: &mut FieldErrors) -> Option<&str> {
        let mut values = self
            .0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str());
        let first = values.next()?;
        if values.next().is_some() {
            errors.add(name, "must be given at most once");
            return None;
        }
        if first.is_empty() {
            errors.add(name, "must not be empty");
            return None;
        }
        Some(first)
    }
}

fn chat_id(request: &HttpRequest, errors: &mut FieldErrors) -> Option<ChatId> {
    let raw = request.match_info().get("chat_id").unwrap_or_default();
    match ChatId::parse(raw) {
        Ok(id) => Some(id),
        Err(error) => {
            errors.add("chat_id", error.to_string());
            None
        }
    }
}

/// `{chat_id}` of `PUT`, `PATCH` and `DELETE /chat/{chat_id}`.
#[derive(Clone, Copy, Debug)]
pub struct ChatPath(pub ChatId);

impl FromRequest for ChatPath {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let mut errors = FieldErrors::parameters();
        let id = chat_id(request, &mut errors);
        ready(errors.finish_with(id.map(Self)))
    }
}

/// `{chat_id}` and `?include=kmeans_datas` of `GET /chat/{chat_id}`.
#[derive(Clone, Copy, Debug)]
pub struct GetChatParams {
    /// The chat.
    pub chat_id: ChatId,
    /// Whether to add the chat's k-means results.
    pub include_kmeans: bool,
}

/// The only value `include` accepts.
pub const INCLUDE_KMEANS: &str = "kmeans_datas";

impl FromRequest for GetChatParams {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let mut errors = FieldErrors::parameters();
        let chat_id = chat_id(request, &mut errors);
        let query = Query::of(request);
        let include = match query.one("include", &mut errors) {
            None => false,
            Some(INCLUDE_KMEANS) => true,
            Some(_) => {
                errors.add("include", format!("must be {INCLUDE_KMEANS}"));
                false
            }
        };
        ready(errors.finish_with(chat_id.map(|chat_id| Self {
            chat_id,
            include_kmeans: include,
        })))
    }
}

/// How the client pages through the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListMode {
    /// `skip` and `limit`.
    Offset,
    /// `cursor` and `limit`.
    Cursor,
}

/// `?skip=&limit=` or `?cursor=&limit=` of `GET /chat/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListParams {
    /// The page to read.
    pub page: PageRequest,
    /// Which parameters chose it.
    pub mode: ListMode,
}

impl FromRequest for ListParams {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(list_params(&Query::of(request)))
    }
}

fn list_params(query: &Query) -> Result<ListParams, ApiError> {
    let mut errors = FieldErrors::parameters();
    let skip = query.one("skip", &mut errors).map(|text| {
        text.parse::<i64>()
            .ok()
            .and_then(|value| Skip::new(value).ok())
            .ok_or_else(|| {
                FieldError::new("skip", format!("must be an integer from 0 to {}", i64::MAX))
            })
    });
    let limit = query.one("limit", &mut errors).map(|text| {
        text.parse::<i64>()
            .ok()
            .and_then(|value| Limit::new(value).ok())
            .ok_or_else(|| {
                FieldError::new(
                    "limit",
                    format!("must be an integer from {} to {}", Limit::MIN, Limit::MAX),
                )
            })
    });
    let cursor = query.one("cursor", &mut errors).map(|text| {
        cursor::decode(text)
            .ok_or_else(|| FieldError::new("cursor", "is not a cursor this server issued"))
    });
    // One entry per field: an undecodable cursor reports that, not the combination.
    if skip.is_some() && cursor.is_some() {
        errors.add("skip", "cannot be combined with cursor");
        if matches!(cursor, Some(Ok(_))) {
            errors.add("cursor", "cannot be combined with skip");
        }
    }
    let (skip, limit, cursor) = (errors.take(skip), errors.take(limit), errors.take(cursor));
    errors.finish()?;
    let limit = limit.unwrap_or_default();
    Ok(match cursor {
        Some(cursor) => ListParams {
            page: PageRequest {
                start: PageStart::After(cursor),
                limit,
            },
            mode: ListMode::Cursor,
        },
        None => ListParams {
            page: PageRequest {
                start: PageStart::Offset(skip.unwrap_or_default()),
                limit,
            },
            mode: ListMode::Offset,
        },
    })
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn parse(query: &str) -> Result<ListParams, Vec<String>> {
        let request = TestRequest::with_uri(&format!("/chat/?{query}")).to_http_request();
        list_params(&Query::of(&request)).map_err(|error| match error {
            ApiError::Invalid { errors, .. } => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("unexpected {other:?}"),
        })
    }

    #[test]
    fn defaults_are_the_first_ten() {
        let params = parse("").expect("valid");
        assert_eq!(params.mode, ListMode::Offset);
        assert_eq!(params.page, PageRequest::default());
        assert!(parse("unknown=1&other").is_ok());
    }

    #[test]
    fn every_bad_parameter_is_listed() {
        assert_eq!(
            parse("skip=-1&limit=0"),
            Err(vec!["skip".into(), "limit".into()])
        );
        assert_eq!(parse("limit=101"), Err(vec!["limit".into()]));
        assert_eq!(parse("limit=1.5"), Err(vec!["limit".into()]));
        assert_eq!(parse("skip=9223372036854775808"), Err(vec!["skip".into()]));
        assert_eq!(parse("limit="), Err(vec!["limit".into()]));
        assert_eq!(parse("limit=5&limit=6"), Err(vec!["limit".into()]));
        assert_eq!(parse("cursor=nope"), Err(vec!["cursor".into()]));
    }

    #[test]
    fn cursor_and_skip_exclude_each_other() {
        let cursor = crate::cursor::encode(&chat_domain::ChatCursor {
            created_at: chat_domain::Timestamp::now(),
            id: ChatId::generate(),
        });
        assert_eq!(
            parse(&format!("skip=0&cursor={cursor}")),
            Err(vec!["skip".into(), "cursor".into()])
        );
        assert_eq!(
            parse(&format!("cursor={cursor}&limit=3")).map(|p| p.mode),
            Ok(ListMode::Cursor)
        );
        assert!(parse(&format!("skip={}", i64::MAX)).is_ok());
    }
}
