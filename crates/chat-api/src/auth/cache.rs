//! Tokens verified recently, so a client's repeated token skips the base64,
//! JSON and signature work.
//!
//! Keyed by the whole token (a different signature is a different key). A
//! bounded cache from a kept crate (quick_cache: sharded, no background
//! threads, a few atomic operations per hit): at most
//! [`VerifiedTokens::CAPACITY`] tokens, the least useful evicted first. Each
//! entry lives until its token expires, or [`VerifiedTokens::LONGEST_STAY`]
//! after it was verified, whichever comes first: `exp`, `nbf` and that age are
//! checked on every hit, and an entry past them is dropped and the token
//! verified again. So the cache can only ever say "verified and still current".
//! One per verifier, never shared between key sets. A token verified with a
//! key of the identity provider's key set also records the set's generation:
//! once the set changes (a key left it), the token is verified again, so a
//! removed key stops working at the refetch that removed it.
//!
//! quick_cache rather than moka: moka's per-entry expiry keeps a timer wheel
//! and records every read for its admission policy, and on the GET path that
//! cost showed in the benchmark (docs/performance.md); expiry here is a
//! comparison on the hit itself.

use std::time::{Duration, Instant};

use chat_domain::UserId;
use quick_cache::sync::Cache;

/// What a verified token established, and until when.
#[derive(Clone, Copy, Debug)]
pub(super) struct Verified {
    pub(super) user: UserId,
    /// Seconds since the epoch.
    pub(super) exp: f64,
    /// Seconds since the epoch, if the token has one.
    pub(super) nbf: Option<f64>,
    /// The key set generation whose key verified the token; `None` for the
    /// secret and the public key file, which never change.
    pub(super) generation: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    verified: Verified,
    /// When the token was verified.
    at: Instant,
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
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl VerifiedTokens {
    /// The most tokens remembered at once.
    pub(super) const CAPACITY: usize = 10_000;
    /// The longest a token is remembered, however far away its `exp`.
    pub(super) const LONGEST_STAY: Duration = Duration::from_secs(3_600);

    pub(super) fn new(leeway: f64) -> Self {
        Self {
            entries: Cache::new(Self::CAPACITY),
            leeway,
        }
    }

    /// The user of a remembered token that is current at `now` (seconds
    /// since the epoch), verified with the key set of `generation` if by one.
    pub(super) fn lookup(&self, token: &str, now: f64, generation: u64) -> Option<UserId> {
        let entry = self.entries.get(token)?;
        let hit = entry.verified;
        if hit.exp + self.leeway < now
            || entry.at.elapsed() > Self::LONGEST_STAY
            || hit.generation.is_some_and(|seen| seen != generation)
        {
            // Expired, remembered too long, or verified with a key set that
            // has changed since: forget it and verify again.
            self.entries.remove(token);
            return None;
        }
        // Not valid yet is not a reason to forget: it becomes valid by itself.
        hit.nbf
            .is_none_or(|nbf| nbf - self.leeway <= now)
            .then_some(hit.user)
    }

    /// Remembers a token verified just now.
    pub(super) fn remember(&self, token: &str, verified: Verified) {
        self.entries.insert(
            token.into(),
            Entry {
                verified,
                at: Instant::now(),
            },
        );
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
            generation: None,
        };
        cache.remember("t", verified);
        assert_eq!(cache.lookup("t", 700.0, 0), Some(user));
        assert_eq!(
            cache.lookup("t", 1_029.0, 0),
            Some(user),
            "within the leeway"
        );
        assert_eq!(cache.lookup("t", 469.0, 0), None, "not valid yet");
        assert_eq!(cache.lookup("other", 700.0, 0), None);
        assert_eq!(
            cache.lookup("t", 1_031.0, 0),
            None,
            "expired: verified again, and refused"
        );
    }

    #[test]
    fn an_expired_token_is_forgotten_on_its_next_lookup() {
        let cache = VerifiedTokens::new(0.0);
        let user = UserId::parse(SUB).expect("uuid");
        cache.remember(
            "expired",
            Verified {
                user,
                exp: 1_000.0,
                nbf: None,
                generation: None,
            },
        );
        assert_eq!(cache.entries.len(), 1);
        assert_eq!(cache.lookup("expired", 2_000.0, 0), None);
        assert_eq!(cache.entries.len(), 0, "the stale entry is gone");
    }

    #[test]
    fn a_token_verified_with_an_older_key_set_is_verified_again() {
        let cache = VerifiedTokens::new(0.0);
        let user = UserId::parse(SUB).expect("uuid");
        let verified = |generation| Verified {
            user,
            exp: 1e12,
            nbf: None,
            generation,
        };
        cache.remember("from the set", verified(Some(3)));
        cache.remember("from the secret", verified(None));
        assert_eq!(cache.lookup("from the set", 0.0, 3), Some(user));
        assert_eq!(cache.lookup("from the secret", 0.0, 4), Some(user));
        assert_eq!(
            cache.lookup("from the set", 0.0, 4),
            None,
            "the set changed"
        );
        assert_eq!(cache.lookup("from the set", 0.0, 3), None, "forgotten");
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = VerifiedTokens::new(0.0);
        let user = UserId::parse(SUB).expect("uuid");
        for i in 0..(VerifiedTokens::CAPACITY * 2) {
            cache.remember(
                &format!("token-{i}"),
                Verified {
                    user,
                    exp: 1e12,
                    nbf: None,
                    generation: None,
                },
            );
        }
        assert!(
            cache.entries.len() <= VerifiedTokens::CAPACITY + VerifiedTokens::CAPACITY / 10,
            "{} entries",
            cache.entries.len()
        );
    }
}
