//! The chat: its validated fields, the entity, and the commands that change it.

use std::fmt;

use crate::ids::{ChatId, UserId};
use crate::time::Timestamp;

/// Why a title was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TitleError {
    /// Nothing but white space (or nothing at all).
    #[error("must not be empty")]
    Empty,
    /// More than [`Title::MAX_CHARS`] characters after trimming.
    #[error("must be at most {max} characters (got {actual})", max = Title::MAX_CHARS)]
    TooLong {
        /// Characters (Unicode scalar values) after trimming.
        actual: usize,
    },
    /// Contains U+0000, which PostgreSQL cannot store.
    #[error("must not contain U+0000")]
    ContainsNul,
}

/// A chat's title: trimmed of white space at both ends, 1 to 255 characters
/// (Unicode scalar values), no U+0000.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Title(String);

impl Title {
    /// The fewest characters a title may hold, after trimming: it is never empty.
    pub const MIN_CHARS: usize = 1;
    /// The most characters (Unicode scalar values) a title may hold.
    pub const MAX_CHARS: usize = 255;

    /// Trims Unicode `White_Space` at both ends, then validates what is left.
    /// Nothing else is normalised.
    pub fn parse(input: &str) -> Result<Self, TitleError> {
        if input.contains('\0') {
            return Err(TitleError::ContainsNul);
        }
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(TitleError::Empty);
        }
        let chars = trimmed.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(TitleError::TooLong { actual: chars });
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The title as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for Title {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for Title {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Why a description was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescriptionError {
    /// More than [`Description::MAX_CHARS`] characters.
    #[error("must be at most {max} characters (got {actual})", max = Description::MAX_CHARS)]
    TooLong {
        /// Characters (Unicode scalar values).
        actual: usize,
    },
    /// Contains U+0000, which PostgreSQL cannot store.
    #[error("must not contain U+0000")]
    ContainsNul,
}

/// A chat's description: at most 10,000 characters (Unicode scalar values),
/// no U+0000, stored exactly as given (`""` stays `""`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Description(String);

impl Description {
    /// The most characters (Unicode scalar values) a description may hold.
    pub const MAX_CHARS: usize = 10_000;

    /// Validates without changing anything.
    pub fn parse(input: &str) -> Result<Self, DescriptionError> {
        if input.contains('\0') {
            return Err(DescriptionError::ContainsNul);
        }
        // `len()` bounds the count from above, so short inputs skip the scan.
        if input.len() > Self::MAX_CHARS {
            let chars = input.chars().count();
            if chars > Self::MAX_CHARS {
                return Err(DescriptionError::TooLong { actual: chars });
            }
        }
        Ok(Self(input.to_owned()))
    }

    /// The description as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for Description {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A chat's revision counter: 1 on creation, one more on every change.
///
/// It is what ETags and `If-Match` preconditions are made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(i64);

impl Version {
    /// The version of a chat that was just created.
    pub const INITIAL: Self = Self(1);

    /// A version read back from storage or from a client's precondition;
    /// `None` when it is not positive.
    pub fn new(value: i64) -> Option<Self> {
        (value >= 1).then_some(Self(value))
    }

    /// The number inside.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// The version after one more change.
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

/// What a writer believes about the current version (an `If-Match` precondition).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum ExpectedVersion {
    /// No precondition: the write applies to whatever version is current.
    #[default]
    Any,
    /// The write applies only if the current version is one of these; an empty
    /// list can never match (every write fails its precondition).
    OneOf(Vec<Version>),
}

impl ExpectedVersion {
    /// Exactly this version.
    pub fn exactly(version: Version) -> Self {
        Self::OneOf(vec![version])
    }

    /// Whether a chat at `current` satisfies the precondition.
    pub fn is_met_by(&self, current: Version) -> bool {
        match self {
            Self::Any => true,
            Self::OneOf(versions) => versions.contains(&current),
        }
    }
}

/// A chat, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chat {
    /// Server-generated, time-ordered.
    pub id: ChatId,
    /// The owner; every operation on the chat is scoped to them.
    pub user_id: UserId,
    /// Trimmed, 1..=255 characters.
    pub title: Title,
    /// Optional free text.
    pub description: Option<Description>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed; equal to `created_at` until the first change.
    pub updated_at: Timestamp,
    /// Revision counter; see [`Version`].
    pub version: Version,
}

impl Chat {
    /// The chat a [`NewChat`] command creates for `owner` at `now`.
    pub fn create(owner: UserId, command: NewChat, now: Timestamp) -> Self {
        Self {
            id: ChatId::generate(),
            user_id: owner,
            title: command.title,
            description: command.description,
            created_at: now,
            updated_at: now,
            version: Version::INITIAL,
        }
    }

    /// The chat after `changes` were applied at `now`: a new version and `updated_at`.
    pub fn changed(mut self, changes: ChatChanges, now: Timestamp) -> Self {
        if let Some(title) = changes.title {
            self.title = title;
        }
        match changes.description {
            DescriptionPatch::Unchanged => {}
            DescriptionPatch::Set(description) => self.description = Some(description),
            DescriptionPatch::Clear => self.description = None,
        }
        self.updated_at = now;
        self.version = self.version.next();
        self
    }
}

/// Create a chat (`POST`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewChat {
    /// The title.
    pub title: Title,
    /// The description; `None` when omitted or `null`.
    pub description: Option<Description>,
}

/// Replace a chat's fields (`PUT`): a description left out becomes `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatReplacement {
    /// The new title.
    pub title: Title,
    /// The new description.
    pub description: Option<Description>,
}

/// What a patch does to the description.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum DescriptionPatch {
    /// Absent from the patch.
    #[default]
    Unchanged,
    /// Set to this value.
    Set(Description),
    /// Explicitly `null`: remove the description.
    Clear,
}

/// Change some of a chat's fields (`PATCH`). The title can be changed but never
/// cleared; the description can be changed or cleared.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ChatPatch {
    /// The new title, if given.
    pub title: Option<Title>,
    /// What happens to the description.
    pub description: DescriptionPatch,
}

impl ChatPatch {
    /// The empty patch (`{}`): changes nothing, not even `updated_at`.
    pub fn is_noop(&self) -> bool {
        self.title.is_none() && self.description == DescriptionPatch::Unchanged
    }
}

/// The column changes a repository applies in one write; built from a
/// [`ChatReplacement`] or a non-empty [`ChatPatch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatChanges {
    /// The new title, if it changes.
    pub title: Option<Title>,
    /// What happens to the description.
    pub description: DescriptionPatch,
}

impl From<ChatReplacement> for ChatChanges {
    fn from(replacement: ChatReplacement) -> Self {
        Self {
            title: Some(replacement.title),
            description: match replacement.description {
                Some(description) => DescriptionPatch::Set(description),
                None => DescriptionPatch::Clear,
            },
        }
    }
}

impl From<ChatPatch> for ChatChanges {
    fn from(patch: ChatPatch) -> Self {
        Self {
            title: patch.title,
            description: patch.description,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn title_is_trimmed_of_unicode_white_space_only() {
        let title = Title::parse("\u{3000}\t Hello  world \u{a0}\n").map(Title::into_string);
        assert_eq!(title.as_deref(), Ok("Hello  world"));
        // Zero-width space is not White_Space: kept as given.
        assert_eq!(
            Title::parse("\u{200b}x").map(Title::into_string).as_deref(),
            Ok("\u{200b}x")
        );
    }

    #[test]
    fn title_counts_scalar_values_not_bytes() {
        assert!(Title::parse(&"é".repeat(255)).is_ok());
        assert!(Title::parse(&"🦀".repeat(255)).is_ok());
        assert_eq!(
            Title::parse(&"🦀".repeat(256)),
            Err(TitleError::TooLong { actual: 256 })
        );
        assert_eq!(
            Title::parse(&format!("  {}  ", "a".repeat(255))).map(|t| t.as_str().len()),
            Ok(255)
        );
    }

    #[test]
    fn title_refuses_empty_and_nul() {
        assert_eq!(Title::parse(""), Err(TitleError::Empty));
        assert_eq!(Title::parse(" \t\n "), Err(TitleError::Empty));
        assert_eq!(Title::parse("a\0b"), Err(TitleError::ContainsNul));
    }

    #[test]
    fn description_is_kept_verbatim() {
        assert_eq!(
            Description::parse("")
                .map(Description::into_string)
                .as_deref(),
            Ok("")
        );
        assert_eq!(
            Description::parse("  x  ")
                .map(Description::into_string)
                .as_deref(),
            Ok("  x  ")
        );
        assert!(Description::parse(&"ü".repeat(10_000)).is_ok());
        assert_eq!(
            Description::parse(&"ü".repeat(10_001)),
            Err(DescriptionError::TooLong { actual: 10_001 })
        );
        assert_eq!(Description::parse("\0"), Err(DescriptionError::ContainsNul));
    }

    #[test]
    fn versions_are_positive_and_count_up() {
        assert_eq!(Version::new(0), None);
        assert_eq!(Version::new(-3), None);
        assert_eq!(Version::INITIAL.next().get(), 2);
        assert!(ExpectedVersion::Any.is_met_by(Version::INITIAL));
        assert!(ExpectedVersion::exactly(Version::INITIAL).is_met_by(Version::INITIAL));
        assert!(!ExpectedVersion::exactly(Version::INITIAL.next()).is_met_by(Version::INITIAL));
        assert!(!ExpectedVersion::OneOf(vec![]).is_met_by(Version::INITIAL));
    }

    #[test]
    fn replacement_clears_an_omitted_description() {
        let changes = ChatChanges::from(ChatReplacement {
            title: Title::parse("t").expect("valid title"),
            description: None,
        });
        assert_eq!(changes.description, DescriptionPatch::Clear);
    }

    #[test]
    fn only_the_empty_patch_is_a_noop() {
        assert!(ChatPatch::default().is_noop());
        let clear = ChatPatch {
            description: DescriptionPatch::Clear,
            ..ChatPatch::default()
        };
        assert!(!clear.is_noop());
    }

    proptest! {
        #[test]
        fn a_parsed_title_is_always_valid(input in "\\PC{0,300}") {
            if let Ok(title) = Title::parse(&input) {
                let text = title.as_str();
                prop_assert_eq!(text, text.trim());
                prop_assert!(!text.is_empty());
                prop_assert!(text.chars().count() <= Title::MAX_CHARS);
                prop_assert!(!text.contains('\0'));
                // Parsing is idempotent: a stored title parses to itself.
                prop_assert_eq!(Title::parse(text), Ok(title.clone()));
            }
        }

        #[test]
        fn a_title_is_refused_exactly_when_the_rules_say(input in "[ a\\t\u{3000}\0é🦀]{0,300}") {
            let trimmed = input.trim();
            let expected_ok = !input.contains('\0')
                && !trimmed.is_empty()
                && trimmed.chars().count() <= Title::MAX_CHARS;
            prop_assert_eq!(Title::parse(&input).is_ok(), expected_ok);
        }

        #[test]
        fn a_description_is_refused_exactly_when_the_rules_say(input in "[ a\0é🦀]{0,10010}") {
            let expected_ok = !input.contains('\0') && input.chars().count() <= Description::MAX_CHARS;
            let parsed = Description::parse(&input);
            prop_assert_eq!(parsed.is_ok(), expected_ok);
            if let Ok(description) = parsed {
                prop_assert_eq!(description.as_str(), input.as_str());
            }
        }
    }
}
