//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use chat_domain::{Description, Limit, Title};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Object, RefOr, Schema};
use utoipa::{Modify, Number, OpenApi};

use crate::dto::{
    ChatCreate, ChatRead, ChatReadWithKmeans, ChatUpdateFull, ChatUpdatePartial, KmeansDataRead,
};
use crate::error::{FieldError, Problem};
use crate::routes::{chats, operations};

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
    modifiers(&BearerScheme, &DomainLimits),
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
        let list = openapi
            .paths
            .paths
            .get_mut("/chat/")
            .and_then(|item| item.get.as_mut());
        for parameter in list
            .and_then(|list| list.parameters.as_mut())
            .into_iter()
            .flatten()
        {
            if let RefOr::T(parameter) = parameter
                && parameter.name == "limit"
                && let Some(limit) = object(parameter.schema.as_mut())
            {
                limit.minimum = Some(Number::UInt(Limit::MIN.into()));
                limit.maximum = Some(Number::UInt(Limit::MAX.into()));
            }
        }
    }
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
