//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! completed by modifiers from the code's own constants: the domain's limits,
//! the parameters' exact forms, and the answers every route shares (405 with
//! `Allow`, 431, 500, and for the chat routes 401 and 503), each error with
//! the very problem body the service sends as its example.

use actix_web::http::StatusCode;
use chat_domain::{Description, Limit, Title};
use serde_json::{Value, json};
use utoipa::openapi::content::Content;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::AnyOf;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Object, Ref, RefOr, Schema, Type};
use utoipa::{Modify, Number, OpenApi};

use crate::body::MAX_BODY_BYTES;
use crate::dto::{
    ChatCreate, ChatRead, ChatReadWithKmeans, ChatUpdateFull, ChatUpdatePartial, KmeansDataRead,
};
use crate::error::{ApiError, AuthError, FieldError, PROBLEM_JSON, Problem, RETRY_AFTER_SECONDS};
use crate::params::INCLUDE_KMEANS;
use crate::routes::{self, chats, operations};

/// The document behind `GET /openapi.json`.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "chat-api",
        description = "Chats and their k-means results, per user. Every `/chat` route needs \
                       `Authorization: Bearer <JWT>` whose `sub` is the user's UUID. Errors are \
                       `application/problem+json` (RFC 9457).",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        chats::create_chat,
        chats::list_chats,
        chats::get_chat,
        chats::replace_chat,
        chats::patch_chat,
        chats::delete_chat,
        operations::live,
        operations::ready,
        operations::metrics,
        operations::openapi,
        operations::docs,
    ),
    components(schemas(
        ChatRead,
        ChatReadWithKmeans,
        KmeansDataRead,
        ChatCreate,
        ChatUpdateFull,
        ChatUpdatePartial,
        Problem,
        FieldError,
        operations::Health,
    )),
    modifiers(&BearerScheme, &DomainLimits, &Parameters, &Answers),
    tags(
        (name = "chats", description = "The caller's chats"),
        (name = "operations", description = "Health and metrics (no token)"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the chat routes name.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT whose `sub` is the user's UUID; `exp` required.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The limits the domain enforces, written into the document from the
/// domain's constants (utoipa's attributes take only literals), so the
/// document cannot disagree with what is validated.
struct DomainLimits;

/// The request bodies with a title and a description.
const BODIES: [&str; 3] = ["ChatCreate", "ChatUpdateFull", "ChatUpdatePartial"];

impl Modify for DomainLimits {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for body in BODIES {
            let Some(RefOr::T(Schema::Object(body))) = components.schemas.get_mut(body) else {
                continue;
            };
            if let Some(title) = object(body.properties.get_mut("title")) {
                title.min_length = Some(Title::MIN_CHARS);
                title.max_length = Some(Title::MAX_CHARS);
            }
            if let Some(description) = object(body.properties.get_mut("description")) {
                description.max_length = Some(Description::MAX_CHARS);
            }
        }
    }
}

/// The exact form of each parameter, so that every value the document allows
/// is one the service accepts (a property-based client generating values from
/// the document gets no 422 for them). What a schema cannot say (`skip` and
/// `cursor` exclude each other) is in the descriptions.
struct Parameters;

/// A hyphenated UUID in any case, the only form a chat id may take.
pub const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// The cursors this server hands out for chats created from 1970 to the
/// year 8820: version byte 1, then a creation instant whose first byte is 0
/// to 2, then any chat id, in unpadded base64url (34 characters, the last one
/// carrying 2 bits and 4 zero bits). Every string of this form decodes.
pub const CURSOR_PATTERN: &str = "^AQ[A-L][A-Za-z0-9_-]{30}[AQgw]$";

impl Modify for Parameters {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for (_, operation) in operations(item) {
                for parameter in operation.parameters.iter_mut().flatten() {
                    let RefOr::T(parameter) = parameter else {
                        continue;
                    };
                    let Some(schema) = object(parameter.schema.as_mut()) else {
                        continue;
                    };
                    match parameter.name.as_str() {
                        "chat_id" => schema.pattern = Some(UUID_PATTERN.to_owned()),
                        "limit" => {
                            schema.minimum = Some(Number::UInt(Limit::MIN.into()));
                            schema.maximum = Some(Number::UInt(Limit::MAX.into()));
                        }
                        "skip" => {
                            schema.minimum = Some(Number::UInt(0));
                            schema.maximum = Some(Number::Int(i64::MAX as isize));
                        }
                        "cursor" => {
                            schema.pattern = Some(CURSOR_PATTERN.to_owned());
                            schema.min_length = Some(34);
                            schema.max_length = Some(34);
                        }
                        "include" => {
                            schema.enum_values = Some(vec![json!(INCLUDE_KMEANS)]);
                        }
                        _ => {}
                    }
                }
            }
        }
        // `GET /chat/{chat_id}` answers either form of the chat; a body of the
        // `kmeans_datas` form also fits `ChatRead` (responses stay open to new
        // fields), so the two are alternatives (`anyOf`), not exclusive.
        let read = openapi
            .paths
            .paths
            .get_mut("/chat/{chat_id}")
            .and_then(|item| item.get.as_mut())
            .and_then(|get| get.responses.responses.get_mut("200"));
        if let Some(RefOr::T(read)) = read
            && let Some(RefOr::T(json)) = read.content.get_mut("application/json")
        {
            let mut either = AnyOf::new();
            either.items = vec![
                Ref::from_schema_name("ChatRead").into(),
                Ref::from_schema_name("ChatReadWithKmeans").into(),
            ];
            either.description = Some(format!(
                "`ChatRead`, or `ChatReadWithKmeans` with `include={INCLUDE_KMEANS}`"
            ));
            json.schema = Some(Schema::AnyOf(either).into());
        }
    }
}

/// The operations whose answers honour `Accept-Encoding` (`routes::compressed`).
pub const COMPRESSED: [(&str, &str); 2] = [("/chat/", "get"), ("/openapi.json", "get")];

/// The answers routes share, added to every operation that can give them,
/// with their headers and the problem body the service sends as example.
struct Answers;

impl Modify for Answers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, operation) in operations(item) {
                complete(path, method, operation);
            }
        }
    }
}

/// Every operation of a path item, with its lower-case method.
fn operations(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("post", &mut item.post),
        ("put", &mut item.put),
        ("patch", &mut item.patch),
        ("delete", &mut item.delete),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_mut().map(|operation| (method, operation)))
}

/// What `Allow` says on a 405 of this path.
fn allow(path: &str) -> &'static str {
    match path {
        "/chat/" => routes::COLLECTION_METHODS,
        "/chat/{chat_id}" => routes::ITEM_METHODS,
        _ => routes::READ_ONLY,
    }
}

/// Adds the shared answers this operation can give, then the headers and
/// examples of all its answers.
fn complete(path: &str, method: &str, operation: &mut Operation) {
    let bearer = operation.security.is_some();
    let reads_body = operation.request_body.is_some();
    let compressed = COMPRESSED.contains(&(path, method));
    let mut shared = vec![405, 431, 500];
    if bearer {
        shared.extend([401, 503]);
    }
    if reads_body {
        shared.push(408);
    }
    if compressed {
        shared.push(406);
    }
    for status in shared {
        let key = status.to_string();
        operation
            .responses
            .responses
            .entry(key)
            .or_insert_with(|| Response::new(shared_description(status)).into());
    }
    for (status, response) in &mut operation.responses.responses {
        let RefOr::T(response) = response else {
            continue;
        };
        let status: u16 = status.parse().unwrap_or_default();
        if status >= 400 {
            let content = response
                .content
                .entry(PROBLEM_JSON.to_owned())
                .or_insert_with(|| Content::new(Some(Ref::from_schema_name("Problem"))).into());
            if let RefOr::T(content) = content
                && content.example.is_none()
            {
                content.example = serde_json::to_value(example(status, path, reads_body)).ok();
            }
        }
        for (name, header) in headers(status, path, bearer) {
            response
                .headers
                .entry(name.to_owned())
                .or_insert(header.into());
        }
        if compressed {
            response.headers.insert(
                "Vary".to_owned(),
                header(
                    Type::String,
                    "`Accept-Encoding`, on every answer of this route, compressed or not",
                    json!("accept-encoding"),
                )
                .into(),
            );
            if status == 200 {
                let mut encoding = Object::with_type(Type::String);
                encoding.enum_values =
                    Some(["gzip", "br", "zstd", "deflate"].map(Value::from).into());
                let encoding = HeaderBuilder::new()
                    .schema(Some(encoding))
                    .description(Some(
                        "The encoding the body is compressed with, chosen from `Accept-Encoding`; \
                         absent when the body is sent as is",
                    ))
                    .build();
                response
                    .headers
                    .insert("Content-Encoding".to_owned(), encoding.into());
            }
        }
    }
}

/// The description of a shared answer.
fn shared_description(status: u16) -> String {
    match status {
        401 => "No bearer token, another scheme, or a rejected token (the detail says why).",
        405 => {
            "The path exists, the method does not; `Allow` lists the methods it has. \
                Answered before the token is checked."
        }
        406 => {
            "`Accept-Encoding` refuses the plain body (`identity;q=0`) and names no \
                encoding the server has (`gzip`, `br`, `zstd`, `deflate`)."
        }
        408 => "The body did not fully arrive within 30 s of the service starting to read it.",
        431 => "The request headers (names plus values) exceed `HTTP_MAX_HEADER_BYTES`.",
        500 => {
            "An unexpected error (a bug, a stored row that breaks an invariant). The \
                cause is logged, never sent."
        }
        503 => {
            "The database is unreachable, too slow, overloaded or read-only, or the \
                schema is not migrated yet. Retry after `Retry-After` seconds."
        }
        _ => "See the status.",
    }
    .to_owned()
}

/// The response headers an answer with this status carries.
fn headers(status: u16, path: &str, bearer: bool) -> Vec<(&'static str, Header)> {
    let mut headers = Vec::new();
    match status {
        401 => headers.push((
            "WWW-Authenticate",
            header(
                Type::String,
                "`Bearer`, with `error=\"invalid_token\"` and an `error_description` \
                 when a token was sent and rejected (RFC 6750)",
                json!(AuthError::rejected("token has expired").challenge()),
            ),
        )),
        405 => headers.push((
            "Allow",
            header(
                Type::String,
                "The methods this path accepts",
                json!(allow(path)),
            ),
        )),
        409 => headers.push((
            "Retry-After",
            header(Type::Integer, "Seconds to wait before retrying", json!(1)),
        )),
        503 => headers.push((
            "Retry-After",
            header(
                Type::Integer,
                "Seconds to wait before retrying",
                json!(RETRY_AFTER_SECONDS),
            ),
        )),
        _ => {}
    }
    let cache_control = match status {
        200 | 201 | 304 if bearer => Some("private, no-cache"),
        200 if path.starts_with("/health/") => Some("no-store"),
        _ => None,
    };
    if let Some(value) = cache_control {
        headers.push((
            "Cache-Control",
            header(
                Type::String,
                "How clients may keep this answer",
                json!(value),
            ),
        ));
    }
    headers
}

/// A header of this type, with a description and an example.
fn header(kind: Type, description: &str, example: Value) -> Header {
    let integer = matches!(kind, Type::Integer);
    let mut schema = Object::with_type(kind);
    if integer {
        schema.minimum = Some(Number::UInt(0));
    }
    HeaderBuilder::new()
        .schema(Some(schema))
        .description(Some(description))
        .example(Some(example))
        .build()
}

/// The problem body the service answers with this status, as an example.
fn example(status: u16, path: &str, reads_body: bool) -> Problem {
    let error = match status {
        400 => ApiError::MalformedJson(
            "request body is not valid JSON: EOF while parsing a value at line 1 column 10".into(),
        ),
        401 => ApiError::Unauthorized(AuthError::rejected("token has expired")),
        404 if path.starts_with("/chat") => ApiError::chat_not_found(),
        405 => ApiError::MethodNotAllowed { allow: allow(path) },
        408 => ApiError::BodyTimeout,
        409 => ApiError::IdempotencyKeyInFlight,
        412 => ApiError::PreconditionFailed,
        413 => ApiError::PayloadTooLarge(MAX_BODY_BYTES),
        415 => ApiError::UnsupportedMediaType("Content-Type must be application/json".into()),
        422 if reads_body => ApiError::invalid_body(vec![
            FieldError::new("titel", "unknown field"),
            FieldError::new("title", "must not be empty"),
        ]),
        422 if path.contains("{chat_id}") => ApiError::invalid_parameters(vec![FieldError::new(
            "chat_id",
            "must be a UUID in hyphenated form (8-4-4-4-12 hexadecimal digits)",
        )]),
        422 => ApiError::invalid_parameters(vec![FieldError::new(
            "limit",
            "must be an integer from 1 to 100",
        )]),
        431 => ApiError::HeadersTooLarge,
        500 => ApiError::internal("the cause goes to the log"),
        503 if path == "/health/ready" => {
            let mut problem = ApiError::Unavailable(None).problem();
            problem.detail = "not ready: the database is unavailable".into();
            return problem;
        }
        503 => ApiError::Unavailable(None),
        _ => {
            // Answered by a layer other than ours (406 from compression):
            // the problem body has the reason phrase as its detail.
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reason = code.canonical_reason().unwrap_or("Error");
            return Problem {
                kind: "about:blank",
                title: reason,
                status,
                detail: reason.to_lowercase(),
                errors: None,
            };
        }
    };
    error.problem()
}

/// The inline object schema, if that is what `schema` is.
fn object(schema: Option<&mut RefOr<Schema>>) -> Option<&mut Object> {
    match schema? {
        RefOr::T(Schema::Object(object)) => Some(object),
        _ => None,
    }
}

/// The document with the crate's version, as JSON bytes.
pub fn document() -> Vec<u8> {
    let mut openapi = ApiDoc::openapi();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    serde_json::to_vec_pretty(&openapi).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_limits_are_the_domains() {
        let document: serde_json::Value =
            serde_json::from_slice(&document()).expect("JSON document");
        for body in BODIES {
            let properties = &document["components"]["schemas"][body]["properties"];
            assert_eq!(properties["title"]["minLength"], Title::MIN_CHARS, "{body}");
            assert_eq!(properties["title"]["maxLength"], Title::MAX_CHARS, "{body}");
            assert_eq!(
                properties["description"]["maxLength"],
                Description::MAX_CHARS,
                "{body}"
            );
        }
        let limit = document["paths"]["/chat/"]["get"]["parameters"]
            .as_array()
            .and_then(|parameters| parameters.iter().find(|p| p["name"] == "limit"))
            .expect("the limit parameter");
        assert_eq!(limit["schema"]["minimum"], Limit::MIN);
        assert_eq!(limit["schema"]["maximum"], Limit::MAX);
    }
}
