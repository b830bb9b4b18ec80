//! Go-style durations (`30s`, `1m30s`): how recipes write healthcheck
//! intervals, the same syntax `docker run --health-interval` takes.

/// A Go-style duration (`30s`, `1m30s`, `500ms`, `1h`; units ns, us, µs, ms,
/// s, m, h) in nanoseconds: what `docker run --health-interval` accepts.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || {
        format!("`{text}` is not a duration; write a number with a unit, e.g. \"30s\", \"1m30s\", \"500ms\"")
    };
    if text == "0" {
        return Ok(0);
    }
    let mut rest = text;
    let mut total: u64 = 0;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: u64 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty() {
            return Err(bad());
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        // The fraction, exactly: digits beyond nanosecond precision are dropped.
        let mut frac_ns: u64 = 0;
        let mut place = scale;
        for d in frac.bytes() {
            if !d.is_ascii_digit() {
                return Err(bad());
            }
            place /= 10;
            frac_ns += u64::from(d - b'0') * place;
        }
        total = whole
            .checked_mul(scale)
            .and_then(|n| n.checked_add(frac_ns))
            .and_then(|n| n.checked_add(total))
            .ok_or_else(|| format!("`{text}` is too long a duration"))?;
        rest = tail;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("2us"), Ok(2_000));
        assert_eq!(parse_duration("10ns"), Ok(10));
        assert_eq!(parse_duration("0"), Ok(0));
        for bad in ["", "30", "s", "5x", "1..5s", "-1s", "1 s", "99999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
