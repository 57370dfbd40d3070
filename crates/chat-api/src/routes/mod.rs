//! The route table: every path, its methods (`Allow` for the rest) and handler.

pub mod chats;
pub mod operations;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, VARY};
use actix_web::middleware::{Compress, Next, from_fn};
use actix_web::{Error, guard, web};

use crate::error::ApiError;

/// Methods of the chat collection.
pub const COLLECTION_METHODS: &str = "GET, HEAD, POST";
/// Methods of one chat.
pub const ITEM_METHODS: &str = "GET, HEAD, PUT, PATCH, DELETE";
/// Methods of the read-only operational routes.
pub const READ_ONLY: &str = "GET, HEAD";

/// `GET` routes answer `HEAD` too (actix sends the headers without the body).
fn get_or_head() -> impl guard::Guard {
    guard::Any(guard::Get()).or(guard::Head())
}

/// 405 with `Allow` for a route's other methods; answered before authentication.
fn method_not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move {
        Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed { allow })
    })
}

/// Where `/metrics` is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsOn {
    /// On the public address (no admin address configured).
    Public,
    /// Only on the admin address: the public one answers it 404.
    Admin,
}

/// Registers every route of the public address.
pub fn configure(config: &mut web::ServiceConfig, metrics_on: MetricsOn) {
    if metrics_on == MetricsOn::Public {
        config.service(read_only("/metrics", web::to(operations::metrics)));
    }
    config
        .service(
            // Both spellings of the collection, with no redirect.
            web::resource(["/chat", "/chat/"])
                .route(compressed(
                    web::route().guard(get_or_head()).to(chats::list_chats),
                ))
                .route(web::post().to(chats::create_chat))
                .default_service(method_not_allowed(COLLECTION_METHODS)),
        )
        .service(
            web::resource("/chat/{chat_id}")
                .route(web::route().guard(get_or_head()).to(chats::get_chat))
                .route(web::put().to(chats::replace_chat))
                .route(web::patch().to(chats::patch_chat))
                .route(web::delete().to(chats::delete_chat))
                .default_service(method_not_allowed(ITEM_METHODS)),
        )
        .service(read_only("/health/live", web::to(operations::live)))
        .service(read_only("/health/ready", web::to(operations::ready)))
        .service(read_only(
            "/openapi.json",
            compressed(web::to(operations::openapi)),
        ))
        .service(read_only("/docs", web::to(operations::docs)))
        .service(
            utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                .config(utoipa_swagger_ui::Config::from("/openapi.json")),
        );
}

/// Registers the routes of the admin address (`ADMIN_BIND_ADDRESS`): the
/// metrics and the health probes; everything else is 404 there.
pub fn configure_admin(config: &mut web::ServiceConfig) {
    config
        .service(read_only("/metrics", web::to(operations::metrics)))
        .service(read_only("/health/live", web::to(operations::live)))
        .service(read_only("/health/ready", web::to(operations::ready)));
}

fn read_only(path: &str, handler: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(handler.guard(get_or_head()))
        .default_service(method_not_allowed(READ_ONLY))
}

/// Compression by `Accept-Encoding` (`gzip`, `br`, `zstd`), for the routes
/// whose bodies are large and carry no strong ETag (the list, the OpenAPI
/// document): a strong ETag names exact bytes, so single chats stay as they are.
fn compressed(route: actix_web::Route) -> actix_web::Route {
    route
        .wrap(Compress::default())
        .wrap(from_fn(vary_accept_encoding))
}

/// `Vary: Accept-Encoding` on every answer of a compressing route, compressed
/// or not, so a shared cache never hands one client's encoding to another.
async fn vary_accept_encoding(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut response = next.call(request).await?;
    let headers = response.headers_mut();
    let varies = headers.get_all(VARY).any(|value| {
        value.to_str().is_ok_and(|value| {
            value
                .split(',')
                .any(|name| name.trim().eq_ignore_ascii_case("accept-encoding"))
        })
    });
    if !varies {
        headers.append(VARY, HeaderValue::from_static("accept-encoding"));
    }
    Ok(response)
}
