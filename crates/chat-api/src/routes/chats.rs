//! The six `/chat` operations: parse, call the use case, map the answer.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, ETAG, LINK, LOCATION};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use chat_domain::{Chat, ChatCursor, KeyedCreate, PageStart, StoredResponse};

use crate::auth::AuthUser;
use crate::body::{Json, JsonBody, JsonOrMergePatch};
use crate::cursor;
use crate::dto::{self, ChatRead, ChatReadWithKmeans, KmeansDataRead};
use crate::error::{ApiError, Problem};
use crate::etag::{chat_etag, chat_with_kmeans_etag, expected_version, none_match};
use crate::idempotency;
use crate::params::{ChatPath, GetChatParams, ListMode, ListParams};
use crate::state::AppState;

/// Total number of the caller's chats.
pub const X_TOTAL_COUNT: &str = "x-total-count";
/// The cursor of the next page.
pub const X_NEXT_CURSOR: &str = "x-next-cursor";

/// Authenticated responses may be kept by the client only, and must be revalidated.
const PRIVATE: &str = "private, no-cache";

fn chat_response(status: StatusCode, chat: &Chat) -> HttpResponse {
    HttpResponseBuilder::new(status)
        .insert_header((ETAG, chat_etag(chat)))
        .insert_header((CACHE_CONTROL, PRIVATE))
        .json(ChatRead::from(chat))
}

/// Create a chat.
#[utoipa::path(
    post,
    path = "/chat/",
    tag = "chats",
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the create safe to retry: 1 to 255 visible ASCII characters (0x21-0x7E), bare or in double quotes (the same key). The first successful request with a key stores its response; a retry by the same user with the same key and the same JSON body creates nothing and answers that response again, with `Idempotent-Replayed: true`. Keys are per user and kept at least `IDEMPOTENCY_KEY_TTL_SECONDS` (default 86400)."),
    ),
    request_body(content = dto::ChatCreate, content_type = "application/json"),
    responses(
        (status = 201, description = "Created, or the stored response of an earlier request with the same `Idempotency-Key` and body.", body = ChatRead, headers(
            ("Location" = String, description = "`/chat/{id}` of the new chat"),
            ("ETag" = String, description = "Strong entity tag of the new chat"),
            ("Idempotent-Replayed" = String, description = "`true` when this is the stored response of an earlier request with the same `Idempotency-Key`"),
        )),
        (status = 400, description = "The body is not JSON, or `Idempotency-Key` is malformed or sent more than once (the detail names the header).", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this `Idempotency-Key` is still being processed; retry after `Retry-After`.", body = Problem, content_type = "application/problem+json", headers(
            ("Retry-After" = u32, description = "Seconds to wait before retrying"),
        )),
        (status = 413, description = "The body is larger than 64 KiB.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unknown fields (`errors` lists each), or the `Idempotency-Key` was already used with a different body.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_chat(
    state: web::Data<AppState>,
    AuthUser(user): AuthUser,
    request: HttpRequest,
    body: JsonBody<Json>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency::key_of(&request)?;
    let value = body.into_value();
    if let Some(key) = key {
        let fingerprint = idempotency::fingerprint(&value);
        let command = dto::parse_create(value)?;
        let outcome = state
            .chats()?
            .create_idempotent(user, command, key, fingerprint, created_response)
            .await?;
        return match outcome {
            KeyedCreate::Created(stored) => idempotency::respond(&stored, false, PRIVATE),
            KeyedCreate::Replayed(stored) => idempotency::respond(&stored, true, PRIVATE),
            KeyedCreate::KeyReused => Err(ApiError::IdempotencyKeyReused),
            KeyedCreate::InFlight => Err(ApiError::IdempotencyKeyInFlight),
        };
    }
    let command = dto::parse_create(value)?;
    let chat = state.chats()?.create(user, command).await?;
    let mut response = chat_response(StatusCode::CREATED, &chat);
    response.headers_mut().insert(
        LOCATION,
        format!("/chat/{}", chat.id)
            .parse()
            .map_err(ApiError::internal)?,
    );
    Ok(response)
}

/// What a create answers, to be stored with a keyed create's chat: the same
/// status, `Location`, `ETag` and body as an unkeyed create.
fn created_response(chat: &Chat) -> StoredResponse {
    StoredResponse {
        status: StatusCode::CREATED.as_u16(),
        headers: vec![
            ("Location".to_owned(), format!("/chat/{}", chat.id)),
            ("ETag".to_owned(), chat_etag(chat)),
        ],
        body: serde_json::to_string(&ChatRead::from(chat)).unwrap_or_default(),
    }
}

/// Read one chat, optionally with its k-means results.
#[utoipa::path(
    get,
    path = "/chat/{chat_id}",
    tag = "chats",
    params(
        ("chat_id" = uuid::Uuid, Path, description = "The chat's id (hyphenated UUID, any case)"),
        ("include" = Option<String>, Query, description = "`kmeans_datas` (the only value) adds the chat's k-means results, oldest first: the answer is then a `ChatReadWithKmeans`"),
        ("If-None-Match" = Option<String>, Header, description = "ETags the client holds (weak comparison; a list, or `*`); a match answers 304. Any value is accepted."),
    ),
    responses(
        (status = 200, description = "The chat: a `ChatRead`, or with `include=kmeans_datas` a `ChatReadWithKmeans` (the chat's fields and `kmeans_datas`). Never compressed.", body = ChatRead, headers(
            ("ETag" = String, description = "Strong entity tag of this representation (the `kmeans_datas` form has its own)"),
        )),
        (status = 304, description = "`If-None-Match` matched; no body.", headers(
            ("ETag" = String, description = "The current entity tag"),
        )),
        (status = 404, description = "No such chat, or another user's.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`chat_id` is not a UUID, or `include` is not `kmeans_datas`.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_chat(
    state: web::Data<AppState>,
    AuthUser(user): AuthUser,
    params: GetChatParams,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let chats = state.chats()?;
    if params.include_kmeans {
        let (chat, results) = chats.get_with_kmeans_data(user, params.chat_id).await?;
        let etag = chat_with_kmeans_etag(&chat, &results);
        if none_match(&request, &etag) {
            return Ok(not_modified(etag));
        }
        let body = ChatReadWithKmeans {
            chat: ChatRead::from(&chat),
            kmeans_datas: results.iter().map(KmeansDataRead::from).collect(),
        };
        return Ok(HttpResponse::Ok()
            .insert_header((ETAG, etag))
            .insert_header((CACHE_CONTROL, PRIVATE))
            .json(body));
    }
    let chat = chats.get(user, params.chat_id).await?;
    let etag = chat_etag(&chat);
    if none_match(&request, &etag) {
        return Ok(not_modified(etag));
    }
    Ok(chat_response(StatusCode::OK, &chat))
}

fn not_modified(etag: String) -> HttpResponse {
    HttpResponse::NotModified()
        .insert_header((ETAG, etag))
        .insert_header((CACHE_CONTROL, PRIVATE))
        .finish()
}

/// List the caller's chats, newest first.
#[utoipa::path(
    get,
    path = "/chat/",
    tag = "chats",
    params(
        ("skip" = Option<i64>, Query, description = "Items to pass over (default 0). Not together with `cursor`: both is a 422."),
        ("limit" = Option<i64>, Query, description = "Page size (default 10)"),
        ("cursor" = Option<String>, Query, description = "A value from `X-Next-Cursor`: the page after the item it names. Opaque; not together with `skip` (both is a 422). A value the server did not hand out may be a 422."),
    ),
    responses(
        (status = 200, description = "A page of chats, newest first (possibly empty).", body = [ChatRead], headers(
            ("X-Total-Count" = u64, description = "The caller's number of chats"),
            ("Link" = String, description = "RFC 8288 `next`/`prev` links (relative, keeping `limit`), where they exist"),
            ("X-Next-Cursor" = String, description = "Cursor of the page's last item: on every full page in offset mode, and in cursor mode when more items follow"),
        )),
        (status = 422, description = "Invalid `skip`, `limit` or `cursor`, a parameter given twice or empty, or `skip` with `cursor` (`errors` lists each).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_chats(
    state: web::Data<AppState>,
    AuthUser(user): AuthUser,
    params: ListParams,
) -> Result<HttpResponse, ApiError> {
    let page = state.chats()?.list(user, params.page).await?;
    let limit = u64::from(params.page.limit.get());
    let full = page.items.len() as u64 == limit;
    let next_cursor = match params.mode {
        ListMode::Offset if full => page.items.last().map(ChatCursor::of),
        ListMode::Cursor if page.has_more => page.items.last().map(ChatCursor::of),
        _ => None,
    }
    .map(|position| cursor::encode(&position));

    let mut links = Vec::new();
    match (params.page.start, &next_cursor) {
        (PageStart::Offset(skip), _) => {
            let skip = skip.get();
            if skip.saturating_add(limit) < page.total {
                links.push(format!(
                    "</chat/?skip={}&limit={limit}>; rel=\"next\"",
                    skip + limit
                ));
            }
            if skip > 0 {
                links.push(format!(
                    "</chat/?skip={}&limit={limit}>; rel=\"prev\"",
                    skip.saturating_sub(limit)
                ));
            }
        }
        (PageStart::After(_), Some(next)) => {
            links.push(format!(
                "</chat/?limit={limit}&cursor={next}>; rel=\"next\""
            ));
        }
        (PageStart::After(_), None) => {}
    }

    let mut response = HttpResponse::Ok();
    response
        .insert_header((X_TOTAL_COUNT, page.total))
        .insert_header((CACHE_CONTROL, PRIVATE));
    if !links.is_empty() {
        response.insert_header((LINK, links.join(", ")));
    }
    if let Some(next) = next_cursor {
        response.insert_header((X_NEXT_CURSOR, next));
    }
    Ok(response.json(page.items.iter().map(ChatRead::from).collect::<Vec<_>>()))
}

/// Replace a chat's fields.
#[utoipa::path(
    put,
    path = "/chat/{chat_id}",
    tag = "chats",
    params(
        ("chat_id" = uuid::Uuid, Path, description = "The chat's id"),
        ("If-Match" = Option<String>, Header, description = "Apply only if the chat's ETag is one of these"),
    ),
    request_body(content = dto::ChatUpdateFull, content_type = "application/json"),
    responses(
        (status = 200, description = "The replaced chat.", body = ChatRead, headers(("ETag" = String, description = "Strong entity tag of the chat now"))),
        (status = 400, description = "The body is not JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such chat, or another user's.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` does not match the current ETag.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 64 KiB.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid path or body.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn replace_chat(
    state: web::Data<AppState>,
    AuthUser(user): AuthUser,
    ChatPath(chat_id): ChatPath,
    body: JsonBody<Json>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let replacement = dto::parse_replacement(body.into_value())?;
    let expected = expected_version(&request);
    let chat = state
        .chats()?
        .replace(user, chat_id, replacement, &expected)
        .await?;
    Ok(chat_response(StatusCode::OK, &chat))
}

/// Change some of a chat's fields (JSON merge patch).
#[utoipa::path(
    patch,
    path = "/chat/{chat_id}",
    tag = "chats",
    params(
        ("chat_id" = uuid::Uuid, Path, description = "The chat's id"),
        ("If-Match" = Option<String>, Header, description = "Apply only if the chat's ETag is one of these"),
    ),
    request_body(
        content(
            (dto::ChatUpdatePartial = "application/json"),
            (dto::ChatUpdatePartial = "application/merge-patch+json"),
        )
    ),
    responses(
        (status = 200, description = "The chat after the patch (`{}` returns it unchanged).", body = ChatRead, headers(("ETag" = String, description = "Strong entity tag of the chat now"))),
        (status = 400, description = "The body is not JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such chat, or another user's.", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` does not match the current ETag.", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than 64 KiB.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is neither `application/json` nor `application/merge-patch+json`.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid path or body (`\"title\": null` included).", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn patch_chat(
    state: web::Data<AppState>,
    AuthUser(user): AuthUser,
    ChatPath(chat_id): ChatPath,
    body: JsonBody<JsonOrMergePatch>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let patch = dto::parse_patch(body.into_value())?;
    let expected = expected_version(&request);
    let chat = state
        .chats()?
        .patch(user, chat_id, patch, &expected)
        .await?;
    Ok(chat_response(StatusCode::OK, &chat))
}

/// Delete a chat and its k-means results.
#[utoipa::path(
    delete,
    path = "/chat/{chat_id}",
    tag = "chats",
    params(
        ("chat_id" = uuid::Uuid, Path, description = "The chat's id"),
        ("If-Match" = Option<String>, Header, description = "Delete only if the chat's ETag is one of these"),
    ),
    responses(
        (status = 204, description = "Deleted; no body."),
        (status = 404, description = "No such chat, or another user's (also for all but one of concurrent deletes).", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` does not match the current ETag.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`chat_id` is not a UUID.", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_chat(
    state: web::Data<AppState>,
    AuthUser(user): AuthUser,
    ChatPath(chat_id): ChatPath,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let expected = expected_version(&request);
    state.chats()?.delete(user, chat_id, &expected).await?;
    Ok(HttpResponse::NoContent().finish())
}
