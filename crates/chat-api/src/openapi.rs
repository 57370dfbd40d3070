//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
    modifiers(&BearerScheme),
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

/// The document with the crate's version, as JSON bytes.
pub fn document() -> Vec<u8> {
    let mut openapi = ApiDoc::openapi();
    openapi.info.version = env!("CARGO_PKG_VERSION").to_owned();
    serde_json::to_vec_pretty(&openapi).unwrap_or_default()
}
