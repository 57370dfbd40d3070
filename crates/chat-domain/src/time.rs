//! Instants at the precision the databases keep.

use chrono::{DateTime, SubsecRound, Utc};

/// A UTC instant truncated to whole microseconds.
///
/// PostgreSQL's `timestamptz` keeps microseconds; truncating before anything is
/// stored makes the value a write returns identical to what a later read returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// The current instant, truncated to microseconds.
    pub fn now() -> Self {
        Self::from_datetime(Utc::now())
    }

    /// Truncates (never rounds, so never moves into the future) to microseconds.
    pub fn from_datetime(instant: DateTime<Utc>) -> Self {
        Self(instant.trunc_subsecs(6))
    }

    /// The instant `micros` microseconds after the Unix epoch, if representable.
    pub fn from_unix_micros(micros: i64) -> Option<Self> {
        DateTime::from_timestamp_micros(micros).map(Self)
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(&self) -> i64 {
        self.0.timestamp_micros()
    }

    /// The instant as a `chrono` value.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(timestamp: Timestamp) -> Self {
        timestamp.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn now_has_no_sub_microsecond_part() {
        assert_eq!(
            Timestamp::now().as_datetime().timestamp_subsec_nanos() % 1_000,
            0
        );
    }

    proptest! {
        #[test]
        fn truncates_towards_the_past(nanos in 0i64..4_102_444_800_000_000_000) {
            let instant = DateTime::from_timestamp_nanos(nanos);
            let stamp = Timestamp::from_datetime(instant);
            prop_assert!(stamp.as_datetime() <= instant);
            prop_assert_eq!(stamp.unix_micros(), nanos.div_euclid(1_000));
            prop_assert_eq!(Timestamp::from_unix_micros(stamp.unix_micros()), Some(stamp));
        }
    }
}
