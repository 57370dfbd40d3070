//! Storing: the centroids go through the domain's use case
//! (`ChatService::add_kmeans_data`) over the SeaORM adapter, exactly as any
//! other service sharing the database would write them.

use std::error::Error as StdError;

use chat_domain::{Centroids, ChatId, ChatService, DomainError, KmeansData, NewKmeansData, UserId};
use chat_infra::{Database, DatabaseConfig, SeaOrmRepository, redact_url};

/// Why the result was not stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `DATABASE_URL` is not a database URL.
    #[error("{0}")]
    InvalidUrl(String),
    /// The chat does not exist, or is another user's (the same answer).
    #[error("chat {chat} not found for user {user}")]
    ChatNotFound {
        /// The chat asked for.
        chat: ChatId,
        /// The acting user.
        user: UserId,
    },
    /// The database could not be reached in time.
    #[error("database unavailable at {url}: {cause}")]
    Unavailable {
        /// The URL, password hidden.
        url: String,
        /// Why, with its causes.
        cause: String,
    },
    /// Anything else the database said (a schema not migrated, say).
    #[error("storing failed at {url}: {cause}")]
    Failed {
        /// The URL, password hidden.
        url: String,
        /// Why, with its causes.
        cause: String,
    },
}

/// A connection to the chats' database, acting for one user.
#[derive(Debug)]
pub struct Store {
    service: ChatService<SeaOrmRepository>,
    url: String,
    user: UserId,
}

impl Store {
    /// Builds the pool (without connecting yet: an unreachable server shows
    /// on first use).
    pub async fn connect(url: &str, user: UserId) -> Result<Self, StoreError> {
        let database = Database::connect(&DatabaseConfig::new(url))
            .await
            .map_err(|error| StoreError::InvalidUrl(error.to_string()))?;
        Ok(Self {
            service: ChatService::new(SeaOrmRepository::new(database)),
            url: redact_url(url),
            user,
        })
    }

    /// Fails unless `chat` is one of the user's chats, so that nothing is
    /// trained for a chat the result could not be stored in.
    pub async fn check_chat(&self, chat: ChatId) -> Result<(), StoreError> {
        self.service
            .get(self.user, chat)
            .await
            .map(drop)
            .map_err(|error| self.error(chat, error))
    }

    /// Stores `centroids` as a new result of `chat`.
    pub async fn save(&self, chat: ChatId, centroids: Centroids) -> Result<KmeansData, StoreError> {
        let command = NewKmeansData {
            chat_id: chat,
            centroids,
        };
        self.service
            .add_kmeans_data(self.user, command)
            .await
            .map_err(|error| self.error(chat, error))
    }

    /// Closes the pool.
    pub async fn close(self) {
        self.service.repository().database().close().await;
    }

    fn error(&self, chat: ChatId, error: DomainError) -> StoreError {
        let url = self.url.clone();
        match error {
            DomainError::NotFound => StoreError::ChatNotFound {
                chat,
                user: self.user,
            },
            DomainError::Unavailable(_) => StoreError::Unavailable {
                url,
                cause: with_causes(&error),
            },
            _ => StoreError::Failed {
                url,
                cause: with_causes(&error),
            },
        }
    }
}

/// `error: cause: cause…`, on one line.
fn with_causes(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        // Drivers often repeat their cause in their own message: say it once.
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{message}")]
    struct Layer {
        message: &'static str,
        #[source]
        source: Option<Box<Layer>>,
    }

    #[test]
    fn causes_are_chained_on_one_line_and_said_once() {
        let root = Layer {
            message: "refused\n(os error 111)",
            source: None,
        };
        let repeating = Layer {
            message: "io error: refused\n(os error 111)",
            source: Some(Box::new(root)),
        };
        let top = Layer {
            message: "storage unavailable",
            source: Some(Box::new(repeating)),
        };
        assert_eq!(
            with_causes(&top),
            "storage unavailable: io error: refused (os error 111)"
        );
    }
}
