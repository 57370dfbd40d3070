//! Safe retries of a create: an idempotency key chosen by the client, a
//! fingerprint of the request, and the response stored with the chat.

/// A client's idempotency key: 1 to 255 visible ASCII characters (0x21–0x7E).
/// Keys are scoped to their user: the same key of two users are two keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

/// Why a value is not an [`IdempotencyKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    /// No characters.
    #[error("is empty")]
    Empty,
    /// More than [`IdempotencyKey::MAX_LEN`] characters.
    #[error("is longer than 255 characters")]
    TooLong,
    /// A character outside 0x21–0x7E.
    #[error("may only hold visible ASCII characters (0x21-0x7E)")]
    NotVisibleAscii,
}

impl IdempotencyKey {
    /// The longest key accepted.
    pub const MAX_LEN: usize = 255;

    /// Validates a bare key.
    pub fn parse(value: &str) -> Result<Self, IdempotencyKeyError> {
        if value.is_empty() {
            return Err(IdempotencyKeyError::Empty);
        }
        if !value.bytes().all(|byte| (0x21..=0x7e).contains(&byte)) {
            return Err(IdempotencyKeyError::NotVisibleAscii);
        }
        if value.len() > Self::MAX_LEN {
            return Err(IdempotencyKeyError::TooLong);
        }
        Ok(Self(value.to_owned()))
    }

    /// The key as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The response a keyed create answered, stored to be answered again: the
/// status, the headers that must be repeated, and the body as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status (201 for a create).
    pub status: u16,
    /// Header names and values, in order (e.g. `Location`, `ETag`).
    pub headers: Vec<(String, String)>,
    /// The body, exactly as sent.
    pub body: String,
}

/// What a keyed create stores next to its chat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotentRequest {
    /// The client's key.
    pub key: IdempotencyKey,
    /// A fingerprint of the request body (the same for the same JSON value).
    pub fingerprint: String,
    /// The response to answer now and to every replay.
    pub response: StoredResponse,
}

/// What became of a keyed create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotentOutcome {
    /// The chat and the key were stored together.
    Created,
    /// The key was already used with the same fingerprint: nothing was
    /// created; this is the response stored then.
    Replayed(StoredResponse),
    /// The key was already used with another request body: nothing was created.
    KeyReused,
    /// A request with the key is still being processed: nothing was created.
    InFlight,
}

/// What a keyed create answers: [`IdempotentOutcome`], with the response to
/// send when the chat was created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyedCreate {
    /// The chat was created; send this response (the one stored with the key).
    Created(StoredResponse),
    /// A replay: send the stored response, marked as replayed.
    Replayed(StoredResponse),
    /// The key was used with another request body.
    KeyReused,
    /// A request with the key is still being processed.
    InFlight,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_1_to_255_visible_ascii_characters() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"~".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("!\"#}~").is_ok());
        assert_eq!(IdempotencyKey::parse(""), Err(IdempotencyKeyError::Empty));
        assert_eq!(
            IdempotencyKey::parse(&"a".repeat(256)),
            Err(IdempotencyKeyError::TooLong)
        );
        for bad in ["a b", "a\tb", "é", "a\u{7f}"] {
            assert_eq!(
                IdempotencyKey::parse(bad),
                Err(IdempotencyKeyError::NotVisibleAscii),
                "{bad:?}"
            );
        }
    }
}
