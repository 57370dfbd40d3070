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

    /// The first instant kept: 0001-01-01T00:00:00Z.
    pub const MIN_UNIX_MICROS: i64 = -62_135_596_800_000_000;

    /// The last instant kept: 9999-12-31T23:59:59.999999Z.
    pub const MAX_UNIX_MICROS: i64 = 253_402_300_799_999_999;

    /// The instant `micros` microseconds after the Unix epoch, if it lies in
    /// the years 1 to 9999.
    ///
    /// The range is what both databases store and compare as written: outside
    /// it PostgreSQL refuses the value (before year 1 its text form needs `BC`)
    /// and SQLite's text timestamps no longer sort by time (a fifth digit or a
    /// sign). An instant from outside, such as a cursor a client made up, is
    /// refused here, before any statement is sent.
    pub fn from_unix_micros(micros: i64) -> Option<Self> {
        if !(Self::MIN_UNIX_MICROS..=Self::MAX_UNIX_MICROS).contains(&micros) {
            return None;
        }
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
    fn only_the_years_1_to_9999_are_kept() {
        let first = Timestamp::from_unix_micros(Timestamp::MIN_UNIX_MICROS).expect("year 1");
        assert_eq!(
            first.as_datetime().to_rfc3339(),
            "0001-01-01T00:00:00+00:00"
        );
        let last = Timestamp::from_unix_micros(Timestamp::MAX_UNIX_MICROS).expect("year 9999");
        assert_eq!(
            last.as_datetime().to_rfc3339(),
            "9999-12-31T23:59:59.999999+00:00"
        );
        for outside in [
            Timestamp::MIN_UNIX_MICROS - 1,
            Timestamp::MAX_UNIX_MICROS + 1,
            i64::MIN,
            i64::MAX,
        ] {
            assert_eq!(Timestamp::from_unix_micros(outside), None, "{outside}");
        }
    }

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
