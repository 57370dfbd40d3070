//! Opaque list cursors: a position in the list order, encoded for URLs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_domain::{ChatCursor, ChatId, Timestamp};

/// Format version, so the encoding can change without misreading old cursors.
const VERSION: u8 = 1;
const LENGTH: usize = 1 + 8 + 16;

/// The cursor as the `cursor` parameter and `X-Next-Cursor` carry it
/// (base64url: safe in a query string as is).
pub fn encode(cursor: &ChatCursor) -> String {
    let mut bytes = [0u8; LENGTH];
    bytes[0] = VERSION;
    bytes[1..9].copy_from_slice(&cursor.created_at.unix_micros().to_be_bytes());
    bytes[9..].copy_from_slice(cursor.id.as_uuid().as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The position a cursor names; `None` for anything this server did not hand out.
pub fn decode(text: &str) -> Option<ChatCursor> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    let bytes: [u8; LENGTH] = bytes.try_into().ok()?;
    if bytes[0] != VERSION {
        return None;
    }
    let micros = i64::from_be_bytes(bytes[1..9].try_into().ok()?);
    let id = uuid::Uuid::from_bytes(bytes[9..].try_into().ok()?);
    Some(ChatCursor {
        created_at: Timestamp::from_unix_micros(micros)?,
        id: ChatId::from_uuid(id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_anything_else() {
        let cursor = ChatCursor {
            created_at: Timestamp::from_unix_micros(1_795_000_000_123_456).expect("in range"),
            id: ChatId::generate(),
        };
        let text = encode(&cursor);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode(&text), Some(cursor));
        for junk in [
            "",
            "abc",
            "!!!!",
            &text[1..],
            &format!("{text}A"),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(decode(junk), None, "{junk:?}");
        }
    }
}
