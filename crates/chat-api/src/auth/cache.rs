//! Tokens verified recently, so a client's repeated token skips the base64,
//! JSON and signature work.
//!
//! Keyed by the whole token (a different signature is a different key). A
//! bounded TTL cache: at most [`VerifiedTokens::CAPACITY`] tokens, each
//! forgotten once it has expired (or after [`VerifiedTokens::LONGEST_STAY`],
//! whichever comes first). `exp` and `nbf` are still checked on every hit, so
//! the cache can only ever say "verified and still current". One per
//! verifier, never shared between key sets.

use std::time::{Duration, Instant};

use chat_domain::UserId;
use moka::Expiry;
use moka::sync::Cache;

/// What a verified token established, and until when.
#[derive(Clone, Copy, Debug)]
pub(super) struct Verified {
    pub(super) user: UserId,
    /// Seconds since the epoch.
    pub(super) exp: f64,
    /// Seconds since the epoch, if the token has one.
    pub(super) nbf: Option<f64>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    verified: Verified,
    /// How long the entry may stay: until `exp` plus the leeway, capped.
    stay: Duration,
}

/// Each entry's time to live is its own (see [`Entry::stay`]).
struct UntilExpiry;

impl Expiry<Box<str>, Entry> for UntilExpiry {
    fn expire_after_create(&self, _: &Box<str>, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.stay)
    }
}

/// The verified-token cache of one [`super::TokenVerifier`].
pub(super) struct VerifiedTokens {
    entries: Cache<Box<str>, Entry>,
    /// Allowed clock skew for `exp` and `nbf`, in seconds.
    leeway: f64,
}

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedTokens")
            .field("entries", &self.entries.entry_count())
            .finish_non_exhaustive()
    }
}

impl VerifiedTokens {
    /// The most tokens remembered at once.
    pub(super) const CAPACITY: u64 = 10_000;
    /// The longest a token is remembered, however far away its `exp`.
    pub(super) const LONGEST_STAY: Duration = Duration::from_secs(3_600);

    pub(super) fn new(leeway: f64) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(Self::CAPACITY)
                .expire_after(UntilExpiry)
                .build(),
            leeway,
        }
    }

    /// The user of a remembered token that is current at `now` (seconds since the epoch).
    pub(super) fn lookup(&self, token: &str, now: f64) -> Option<UserId> {
        let hit = self.entries.get(token)?.verified;
        let current =
            hit.exp + self.leeway >= now && hit.nbf.is_none_or(|nbf| nbf - self.leeway <= now);
        current.then_some(hit.user)
    }

    /// Remembers a token verified at `now` (seconds since the epoch).
    pub(super) fn remember(&self, token: &str, verified: Verified, now: f64) {
        let remaining = (verified.exp + self.leeway - now).max(0.0);
        let stay = Duration::try_from_secs_f64(remaining)
            .unwrap_or(Self::LONGEST_STAY)
            .min(Self::LONGEST_STAY);
        self.entries.insert(token.into(), Entry { verified, stay });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "5d1c0f52-3f8e-4c2b-8a49-6c3b7f1e9d20";

    #[test]
    fn a_remembered_token_still_expires_and_waits_for_nbf() {
        let cache = VerifiedTokens::new(30.0);
        let user = UserId::parse(SUB).expect("uuid");
        let verified = Verified {
            user,
            exp: 1_000.0,
            nbf: Some(500.0),
        };
        cache.remember("t", verified, 600.0);
        assert_eq!(cache.lookup("t", 700.0), Some(user));
        assert_eq!(cache.lookup("t", 1_029.0), Some(user), "within the leeway");
        assert_eq!(
            cache.lookup("t", 1_031.0),
            None,
            "expired: verified again, and refused"
        );
        assert_eq!(cache.lookup("t", 469.0), None, "not valid yet");
        assert_eq!(cache.lookup("other", 700.0), None);
    }

    #[test]
    fn a_token_is_forgotten_once_expired_and_after_an_hour_at_most() {
        let cache = VerifiedTokens::new(0.0);
        let user = UserId::parse(SUB).expect("uuid");
        let at = |exp| Verified {
            user,
            exp,
            nbf: None,
        };
        cache.remember("expired", at(1_000.0), 2_000.0);
        cache.remember("far", at(1e12), 2_000.0);
        cache.entries.run_pending_tasks();
        assert_eq!(
            cache.entries.get("expired").map(|entry| entry.stay),
            None,
            "an expired token is not kept"
        );
        assert_eq!(
            cache.entries.get("far").map(|entry| entry.stay),
            Some(VerifiedTokens::LONGEST_STAY)
        );
    }
}
