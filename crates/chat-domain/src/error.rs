//! The use cases' error: what a caller of [`crate::ChatService`] must handle.

use crate::ports::{BoxError, RepositoryError};

/// Why a use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// No such chat for this user (absent, or another user's: the same answer).
    #[error("chat not found")]
    NotFound,
    /// The caller's expected version is stale.
    #[error("the chat has changed since the expected version")]
    PreconditionFailed,
    /// A constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Storage is unavailable; retry later.
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else; the cause is for the log only.
    #[error("unexpected error")]
    Unexpected(#[source] BoxError),
}

impl From<RepositoryError> for DomainError {
    fn from(error: RepositoryError) -> Self {
        match error {
            RepositoryError::NotFound => Self::NotFound,
            RepositoryError::VersionMismatch => Self::PreconditionFailed,
            RepositoryError::Conflict(what) => Self::Conflict(what),
            RepositoryError::Unavailable(cause) => Self::Unavailable(cause),
            RepositoryError::Other(cause) => Self::Unexpected(cause),
        }
    }
}
