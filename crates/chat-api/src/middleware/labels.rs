//! Labels for logs and metrics, from closed sets so clients cannot mint series.

use std::borrow::Cow;

use actix_web::dev::ServiceRequest;
use actix_web::http::Method;

/// The method, or `OTHER` for any method outside the usual ones.
pub fn method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The route template, never the raw path; `unmatched` when no route matched.
pub fn route(request: &ServiceRequest) -> Cow<'static, str> {
    match request.match_pattern() {
        Some(pattern) if pattern == "/chat" => Cow::Borrowed("/chat/"),
        Some(pattern) => Cow::Owned(pattern),
        None => Cow::Borrowed("unmatched"),
    }
}
