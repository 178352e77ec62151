//! Go's `time.ParseDuration`, which runc's duration flags (`events --interval`) go through: a possibly signed
//! sequence of decimal numbers, each with an optional fraction and a unit (`ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`,
//! `h`), such as `300ms`, `1m30s`, `1.5s` or `-2h`; a bare `0` is zero. Values outside Go's signed 64-bit
//! nanoseconds are errors. The error texts are Go's.

use anyhow::{bail, Result};

/// Nanoseconds per unit, as in Go's `unitMap`.
const UNITS: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// 1 << 63: one more than the largest duration, the magnitude of the smallest.
const LIMIT: u64 = 1 << 63;

/// Parses `text` into signed nanoseconds.
pub fn parse(text: &str) -> Result<i64> {
    let invalid = || anyhow::anyhow!("time: invalid duration {text:?}");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let (whole, after_whole) = leading_int(rest).ok_or_else(invalid)?;
        let has_whole = after_whole.len() != rest.len();
        rest = after_whole;
        let (mut fraction, mut scale, mut has_fraction) = (0, 1.0, false);
        if let Some(after_dot) = rest.strip_prefix('.') {
            let (f, s, after_fraction) = leading_fraction(after_dot);
            has_fraction = after_fraction.len() != after_dot.len();
            (fraction, scale, rest) = (f, s, after_fraction);
        }
        if !has_whole && !has_fraction {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            bail!("time: missing unit in duration {text:?}");
        }
        let unit_name = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some(&(_, unit)) = UNITS.iter().find(|(name, _)| *name == unit_name) else {
            bail!("time: unknown unit {unit_name:?} in duration {text:?}");
        };
        if whole > LIMIT / unit {
            return Err(invalid());
        }
        let mut value = whole * unit;
        if fraction > 0 {
            // As Go: float64 keeps fractions of an hour nanosecond-accurate.
            value += (fraction as f64 * (unit as f64 / scale)) as u64;
            if value > LIMIT {
                return Err(invalid());
            }
        }
        total += value;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if negative {
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// The leading `[0-9]*` of `s` and the rest; `None` past 1 << 63.
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut value: u64 = 0;
    for digit in s[..digits].bytes() {
        if value > LIMIT / 10 {
            return None;
        }
        value = value * 10 + u64::from(digit - b'0');
        if value > LIMIT {
            return None;
        }
    }
    Some((value, &s[digits..]))
}

/// The leading `[0-9]*` of a fraction as (digits value, 10^digits, rest); precision stops growing on overflow.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (mut value, mut scale, mut overflow) = (0u64, 1.0f64, false);
    for digit in s[..digits].bytes() {
        if overflow {
            continue;
        }
        if value > (LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let next = value * 10 + u64::from(digit - b'0');
        if next > LIMIT {
            overflow = true;
            continue;
        }
        value = next;
        scale *= 10.0;
    }
    (value, scale, &s[digits..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000_000;

    #[test]
    fn accepts_what_go_accepts() {
        for (text, want) in [
            ("5s", 5 * SECOND),
            ("500ms", SECOND / 2),
            ("1m30s", 90 * SECOND),
            ("1.5s", 3 * SECOND / 2),
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("0s", 0),
            ("-1s", -SECOND),
            ("+2h", 7200 * SECOND),
            (".5s", SECOND / 2),
            ("1.s", SECOND),
            ("1h2m3s4ms5us6ns", 3_723_004_005_006),
            ("3\u{b5}s", 3_000),
            ("3\u{3bc}s", 3_000),
            ("1.0000000001s", SECOND),
            ("0.3333333333333333333h", 1_200_000_000_000),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("2562047h47m16.854775807s", i64::MAX),
        ] {
            assert_eq!(parse(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn rejects_with_go_messages() {
        for (text, message) in [
            ("", "time: invalid duration \"\""),
            ("-", "time: invalid duration \"-\""),
            ("abc", "time: invalid duration \"abc\""),
            ("s", "time: invalid duration \"s\""),
            (".s", "time: invalid duration \".s\""),
            ("1.5", "time: missing unit in duration \"1.5\""),
            ("10", "time: missing unit in duration \"10\""),
            ("3x", "time: unknown unit \"x\" in duration \"3x\""),
            ("1sec", "time: unknown unit \"sec\" in duration \"1sec\""),
            ("1s ", "time: unknown unit \"s \" in duration \"1s \""),
            (
                "9223372036854775808ns",
                "time: invalid duration \"9223372036854775808ns\"",
            ),
            (
                "1h1000000000000000h",
                "time: invalid duration \"1h1000000000000000h\"",
            ),
            (
                "99999999999999999999s",
                "time: invalid duration \"99999999999999999999s\"",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), message, "{text:?}");
        }
    }
}
