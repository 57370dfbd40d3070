//! Paging through a user's chats: newest first, by offset or by keyset cursor.

use crate::chat::Chat;
use crate::ids::ChatId;
use crate::time::Timestamp;

/// Why a `skip` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an integer from 0 to {max}", max = i64::MAX)]
pub struct SkipError;

/// How many items to pass over: `0..=i64::MAX` (SQL `OFFSET` is a signed 64-bit integer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Skip(u64);

impl Skip {
    /// Validates the range.
    pub fn new(value: i64) -> Result<Self, SkipError> {
        u64::try_from(value).map(Self).map_err(|_| SkipError)
    }

    /// The number of items passed over.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// Why a `limit` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an integer from {min} to {max}", min = Limit::MIN, max = Limit::MAX)]
pub struct LimitError;

/// How many items a page holds at most: `1..=100`, 10 by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Limit(u8);

impl Limit {
    /// The smallest page.
    pub const MIN: u8 = 1;
    /// The largest page: a bound on what one request may cost.
    pub const MAX: u8 = 100;
    /// The page size when none is asked for.
    pub const DEFAULT: Self = Self(10);

    /// Validates the range.
    pub fn new(value: i64) -> Result<Self, LimitError> {
        u8::try_from(value)
            .ok()
            .filter(|value| (Self::MIN..=Self::MAX).contains(value))
            .map(Self)
            .ok_or(LimitError)
    }

    /// The page size.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A position in the list order (`created_at` desc, then `id` desc): the last
/// item of a page. The next page holds the items strictly after it, whatever was
/// created or deleted in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChatCursor {
    /// The item's creation time.
    pub created_at: Timestamp,
    /// The item's id, which breaks ties between equal creation times.
    pub id: ChatId,
}

impl ChatCursor {
    /// The position of `chat` in the list order.
    pub fn of(chat: &Chat) -> Self {
        Self {
            created_at: chat.created_at,
            id: chat.id,
        }
    }
}

/// Where a page starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageStart {
    /// After passing over this many items (cost grows with the offset).
    Offset(Skip),
    /// Right after this position (constant cost at any depth).
    After(ChatCursor),
}

impl Default for PageStart {
    fn default() -> Self {
        Self::Offset(Skip::default())
    }
}

/// Which page of a user's chats to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct PageRequest {
    /// Where it starts.
    pub start: PageStart,
    /// Its size.
    pub limit: Limit,
}

/// One page of items, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// At most `limit` items.
    pub items: Vec<T>,
    /// How many items the owner has in all.
    pub total: u64,
    /// Whether at least one more item follows this page.
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn limit_defaults_to_ten_and_stays_in_range() {
        assert_eq!(Limit::default().get(), 10);
        assert_eq!(Limit::new(1).map(Limit::get), Ok(1));
        assert_eq!(Limit::new(100).map(Limit::get), Ok(100));
        for bad in [0, -1, 101, 256, i64::MAX, i64::MIN] {
            assert_eq!(Limit::new(bad), Err(LimitError), "{bad}");
        }
    }

    #[test]
    fn skip_is_never_negative() {
        assert_eq!(Skip::new(0).map(Skip::get), Ok(0));
        assert_eq!(Skip::new(i64::MAX).map(Skip::get), Ok(i64::MAX as u64));
        assert_eq!(Skip::new(-1), Err(SkipError));
    }

    proptest! {
        #[test]
        fn limit_accepts_exactly_one_to_a_hundred(value in any::<i64>()) {
            prop_assert_eq!(Limit::new(value).is_ok(), (1..=100).contains(&value));
        }
    }
}
