//! Instants as seconds since the Unix epoch, and the textual forms accord
//! reads: RFC 3339 (`2026-03-01T00:00:00Z`, used by Intel collateral and the
//! CLI) and the calendar fields of ASN.1 `UTCTime` / `GeneralizedTime`.
//!
//! There is no clock here: callers pass the instant at which something is to
//! be checked.

use core::fmt;

/// Seconds since 1970-01-01T00:00:00Z (UTC, no leap seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub i64);

/// Why a timestamp was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeError {
    /// The text is not of the accepted shape.
    Malformed,
    /// A calendar field is out of range (month 13, February 30, hour 24...).
    OutOfRange,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed timestamp (expected YYYY-MM-DDTHH:MM:SSZ)"),
            Self::OutOfRange => f.write_str("timestamp field out of range"),
        }
    }
}

impl core::error::Error for TimeError {}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count from 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both are small and positive by construction.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

impl UnixTime {
    /// The instant of a UTC calendar date and time, with every field checked.
    pub fn from_civil(
        year: i64,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
    ) -> Result<Self, TimeError> {
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(TimeError::OutOfRange);
        }
        let days = days_from_civil(year, month, day);
        Ok(Self(
            days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second),
        ))
    }

    /// Parses `YYYY-MM-DDTHH:MM:SSZ`, optionally with fractional seconds
    /// (ignored) or a numeric offset (`+01:00`), as in RFC 3339.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimeError> {
        let b = text.as_bytes();
        let digits = |range: core::ops::Range<usize>| -> Result<u32, TimeError> {
            let part = b.get(range).ok_or(TimeError::Malformed)?;
            let mut value = 0u32;
            for c in part {
                if !c.is_ascii_digit() {
                    return Err(TimeError::Malformed);
                }
                value = value * 10 + u32::from(c - b'0');
            }
            Ok(value)
        };
        let sep = |i: usize, allowed: &[u8]| -> Result<(), TimeError> {
            match b.get(i) {
                Some(c) if allowed.contains(c) => Ok(()),
                _ => Err(TimeError::Malformed),
            }
        };
        let year = digits(0..4)?;
        sep(4, b"-")?;
        let month = digits(5..7)?;
        sep(7, b"-")?;
        let day = digits(8..10)?;
        sep(10, b"Tt ")?;
        let hour = digits(11..13)?;
        sep(13, b":")?;
        let minute = digits(14..16)?;
        sep(16, b":")?;
        let second = digits(17..19)?;
        let mut i = 19;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return Err(TimeError::Malformed);
            }
        }
        let offset_seconds: i64 = match b.get(i) {
            Some(b'Z' | b'z') if b.len() == i + 1 => 0,
            Some(sign @ (b'+' | b'-')) if b.len() == i + 6 => {
                let hours = digits(i + 1..i + 3)?;
                sep(i + 3, b":")?;
                let minutes = digits(i + 4..i + 6)?;
                if hours > 23 || minutes > 59 {
                    return Err(TimeError::OutOfRange);
                }
                let magnitude = i64::from(hours * 3600 + minutes * 60);
                if *sign == b'+' { magnitude } else { -magnitude }
            }
            _ => return Err(TimeError::Malformed),
        };
        let local = Self::from_civil(i64::from(year), month, day, hour, minute, second)?;
        Ok(Self(local.0 - offset_seconds))
    }

    /// The UTC calendar fields `(year, month, day, hour, minute, second)`.
    pub fn to_civil(self) -> (i64, u32, u32, u32, u32, u32) {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        // Each is below 86 400 / 3600 etc. by construction.
        let field = |v: i64| u32::try_from(v).unwrap_or(0);
        (
            year,
            month,
            day,
            field(secs / 3600),
            field((secs % 3600) / 60),
            field(secs % 60),
        )
    }

    /// Whether `self` lies in the closed interval `[not_before, not_after]`.
    pub fn within(self, not_before: UnixTime, not_after: UnixTime) -> bool {
        not_before <= self && self <= not_after
    }
}

impl fmt::Display for UnixTime {
    /// Formats as RFC 3339 in UTC, e.g. `2026-03-01T00:00:00Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            (secs % 3600) / 60,
            secs % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn parses_and_formats_rfc3339() {
        let t = UnixTime::parse_rfc3339("2026-03-01T00:00:00Z").unwrap();
        assert_eq!(t, UnixTime(1_772_323_200));
        assert_eq!(t.to_string(), "2026-03-01T00:00:00Z");
        assert_eq!(
            UnixTime::parse_rfc3339("1970-01-01T00:00:00Z"),
            Ok(UnixTime(0))
        );
        assert_eq!(
            UnixTime::parse_rfc3339("2025-07-19T10:00:35.123Z"),
            Ok(UnixTime(1_752_919_235))
        );
        assert_eq!(UnixTime::parse_rfc3339("2026-03-01T01:00:00+01:00"), Ok(t));
        assert_eq!(
            UnixTime::parse_rfc3339("2024-02-29T23:59:59Z")
                .map(|t| t.to_string())
                .as_deref(),
            Ok("2024-02-29T23:59:59Z")
        );
        assert_eq!(
            UnixTime::parse_rfc3339("2025-02-29T00:00:00Z"),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            UnixTime::parse_rfc3339("2025-02-28"),
            Err(TimeError::Malformed)
        );
        assert_eq!(
            UnixTime::parse_rfc3339("2025-02-28T00:00:00"),
            Err(TimeError::Malformed)
        );
        assert_eq!(
            UnixTime::parse_rfc3339("2025-02-28T00:00:00Zjunk"),
            Err(TimeError::Malformed)
        );
        assert_eq!(UnixTime(-1).to_string(), "1969-12-31T23:59:59Z");
    }
}
