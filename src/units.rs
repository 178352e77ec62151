//! Human-readable sizes as runc's `update` flags take them (docker/go-units `RAMInBytes`): a decimal number, an
//! optional space, and an optional case-insensitive binary suffix `k`, `m`, `g`, `t`, `p`, each optionally followed by
//! `b` or `ib` ("512m", "1.5GiB", "100 kb"); a bare `b` or no suffix means bytes.

use anyhow::{bail, Result};

/// Bytes for `size`, with go-units' error texts (`invalid size: '...'`, `invalid suffix: '...'`).
pub fn ram_in_bytes(size: &str) -> Result<i64> {
    let Some(sep) = size.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        bail!("invalid size: '{size}'");
    };
    let (number, suffix) = if size.as_bytes()[sep] == b' ' {
        (&size[..sep], &size[sep + 1..])
    } else {
        (&size[..=sep], &size[sep + 1..])
    };
    let value: f64 = match number.parse() {
        Ok(v) if v >= 0.0 => v,
        Ok(_) => bail!("invalid size: '{size}'"),
        Err(_) => bail!("strconv.ParseFloat: parsing {number:?}: invalid syntax"),
    };
    if suffix.is_empty() {
        return Ok(value as i64);
    }
    let lower = suffix.to_ascii_lowercase();
    let multiplier: f64 = match lower.as_bytes() {
        [b'b'] => 1.0,
        [unit] | [unit, b'b'] | [unit, b'i', b'b'] => match unit {
            b'k' => 1024f64,
            b'm' => 1024f64.powi(2),
            b'g' => 1024f64.powi(3),
            b't' => 1024f64.powi(4),
            b'p' => 1024f64.powi(5),
            _ => bail!("invalid suffix: '{lower}'"),
        },
        _ => bail!("invalid suffix: '{lower}'"),
    };
    Ok((value * multiplier) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_go_units() {
        let cases = [
            ("1024", 1024),
            ("512m", 512 << 20),
            ("512M", 512 << 20),
            ("1g", 1 << 30),
            ("1GiB", 1 << 30),
            ("2kb", 2048),
            ("100 kb", 102_400),
            ("1.5g", 3 << 29),
            ("7b", 7),
            ("0", 0),
        ];
        for (text, bytes) in cases {
            assert_eq!(ram_in_bytes(text).unwrap(), bytes, "{text}");
        }
    }

    #[test]
    fn bad_sizes_name_the_problem() {
        assert_eq!(
            ram_in_bytes("abc").unwrap_err().to_string(),
            "invalid size: 'abc'"
        );
        assert_eq!(
            ram_in_bytes("10x").unwrap_err().to_string(),
            "invalid suffix: 'x'"
        );
        assert_eq!(
            ram_in_bytes("10mbb").unwrap_err().to_string(),
            "invalid suffix: 'mbb'"
        );
        assert_eq!(
            ram_in_bytes("10kx").unwrap_err().to_string(),
            "invalid suffix: 'kx'"
        );
        assert_eq!(
            ram_in_bytes("-5m").unwrap_err().to_string(),
            "invalid size: '-5m'"
        );
    }
}
