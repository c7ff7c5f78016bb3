//! Units in the config: sizes (`64MiB`) and durations (`50ms`), parsed and printed.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A size in bytes, written `<n>B`, `<n>KiB`, `<n>MiB`, `<n>GiB` or a bare number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

const SIZE_UNITS: [(&str, u64); 4] = [
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("B", 1),
];

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<ByteSize, String> {
        let text = s.trim();
        let bad =
            || format!("invalid size `{s}`: write a number with B, KiB, MiB or GiB, as in `64MiB`");
        let digits_end = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits_end);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let unit = unit.trim_start();
        let factor = if unit.is_empty() {
            1
        } else {
            SIZE_UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, factor)| *factor)
                .ok_or_else(bad)?
        };
        number
            .checked_mul(factor)
            .map(ByteSize)
            .ok_or_else(|| format!("size `{s}` is too large"))
    }
}

impl fmt::Display for ByteSize {
    /// The largest unit that divides the size exactly: `64MiB`, `1536KiB`, `100B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, factor) = SIZE_UNITS
            .iter()
            .find(|(_, factor)| self.0 != 0 && self.0.is_multiple_of(*factor))
            .copied()
            .unwrap_or(("B", 1));
        write!(f, "{}{name}", self.0 / factor)
    }
}

impl serde::Serialize for ByteSize {
    /// As text with its unit: `64MiB`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        match NumberOrText::deserialize(d)? {
            NumberOrText::Number(n) => Ok(ByteSize(n)),
            NumberOrText::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(u64),
    Text(String),
}

const DURATION_UNITS: [(&str, u64); 4] = [
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
];

/// Parses `<n>us`, `<n>ms`, `<n>s` or `<n>m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    let bad =
        || format!("invalid duration `{s}`: write a number with us, ms, s or m, as in `50ms`");
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let nanos_per = DURATION_UNITS
        .iter()
        .find(|(name, _)| *name == unit.trim_start())
        .map(|(_, n)| *n)
        .ok_or_else(bad)?;
    number
        .checked_mul(nanos_per)
        .map(Duration::from_nanos)
        .ok_or_else(|| format!("duration `{s}` is too long"))
}

/// Prints a duration in the largest unit that divides it exactly: `50ms`, `10s`, `1m`.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    for (name, per) in DURATION_UNITS.iter().rev() {
        let per = u128::from(*per);
        if nanos != 0 && nanos.is_multiple_of(per) {
            return format!("{}{name}", nanos / per);
        }
    }
    format!("{}us", nanos / 1_000)
}

/// Serde helper for config durations: `#[serde(deserialize_with = "units::duration")]`.
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// Serde helper writing an optional duration with its unit (`50ms`).
pub(crate) fn ser_opt_duration<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format_duration(*d)),
        None => s.serialize_none(),
    }
}

/// Serde helper for optional durations.
pub(crate) fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// `#[serde(with = "units::span")]`: an optional duration read and written with its unit.
pub(crate) mod span {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        super::ser_opt_duration(d, s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::opt_duration(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!("100B".parse::<ByteSize>(), Ok(ByteSize(100)));
        assert_eq!("100".parse::<ByteSize>(), Ok(ByteSize(100)));
        assert_eq!("512KiB".parse::<ByteSize>(), Ok(ByteSize(512 << 10)));
        assert_eq!("64MiB".parse::<ByteSize>(), Ok(ByteSize(64 << 20)));
        assert_eq!("64 MiB".parse::<ByteSize>(), Ok(ByteSize(64 << 20)));
        assert_eq!("2GiB".parse::<ByteSize>(), Ok(ByteSize(2 << 30)));
        for bad in ["64MB", "MiB", "-1B", "1.5MiB", "", "12TiB"] {
            assert!(
                bad.parse::<ByteSize>()
                    .unwrap_err()
                    .contains("invalid size"),
                "{bad}"
            );
        }
        assert!("99999999999999999999GiB".parse::<ByteSize>().is_err());
        assert!(
            "18446744073GiB"
                .parse::<ByteSize>()
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
        assert_eq!(ByteSize(1536 << 10).to_string(), "1536KiB");
        assert_eq!(ByteSize(100).to_string(), "100B");
        assert_eq!(ByteSize(0).to_string(), "0B");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        for bad in ["10", "10h", "ms", "1.5s", "-1s", ""] {
            assert!(
                parse_duration(bad)
                    .unwrap_err()
                    .contains("invalid duration"),
                "{bad}"
            );
        }
        assert!(
            parse_duration("99999999999999999m")
                .unwrap_err()
                .contains("too long")
        );
        assert_eq!(format_duration(Duration::from_millis(50)), "50ms");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_micros(1500)), "1500us");
    }
}
