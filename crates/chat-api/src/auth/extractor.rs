//! The extractor: a handler that takes an [`AuthUser`] cannot run
//! unauthenticated. The verifier is app data of its own
//! (`web::Data<TokenVerifier>`), so authentication needs nothing else of the
//! application's state.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use chat_domain::UserId;
use futures_util::future::{Either, LocalBoxFuture};

use super::verify::{Authentication, TokenVerifier};
use crate::error::ApiError;

/// The authenticated caller: extracting it verifies the bearer token.
#[derive(Clone, Copy, Debug)]
pub struct AuthUser(pub UserId);

impl AuthUser {
    fn found(user: UserId) -> Self {
        tracing::Span::current().record("user_id", tracing::field::display(user));
        Self(user)
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    /// Ready at once, except for a token whose key the key set lacks: only
    /// that one waits (for a refetch), so only it pays for a boxed future.
    type Future =
        Either<Ready<Result<Self, ApiError>>, LocalBoxFuture<'static, Result<Self, ApiError>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(verifier) = request.app_data::<web::Data<TokenVerifier>>() else {
            return Either::Left(ready(Err(ApiError::internal(
                "the token verifier is not configured",
            ))));
        };
        match verifier.authenticate(request) {
            Authentication::Done(result) => Either::Left(ready(result.map(Self::found))),
            Authentication::Refetch(token) => {
                let verifier = verifier.clone();
                Either::Right(Box::pin(async move {
                    verifier
                        .authenticate_after_refetch(&token)
                        .await
                        .map(Self::found)
                }))
            }
        }
    }
}
