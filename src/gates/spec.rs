//! What the gates demand: the recipe's `[check]` table or `check`'s flags,
//! as one [`Gates`], and the value syntax both share (sizes with units,
//! ratios as `0.9` or `"90%"`).

use std::fmt;

/// CI gates; each is off when unset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gates {
    /// Total uncompressed size: the bytes of every file in every layer.
    pub max_size: Option<u64>,
    /// Non-directory paths in the merged tree.
    pub max_files: Option<u64>,
    /// Package-name globs that must not be installed.
    pub forbid_packages: Vec<String>,
    pub require_non_root: bool,
    /// A ratio in [0, 1].
    pub lowest_efficiency: Option<f64>,
    pub highest_wasted_bytes: Option<u64>,
    /// A ratio in [0, 1] (dive's `highestUserWastedPercent` is a ratio too).
    pub highest_user_wasted_percent: Option<f64>,
}

impl Gates {
    pub fn is_empty(&self) -> bool {
        *self == Gates::default()
    }

    /// `self` with every gate `other` sets taken from `other` (flags over a recipe).
    pub fn overridden_by(mut self, other: Gates) -> Gates {
        self.max_size = other.max_size.or(self.max_size);
        self.max_files = other.max_files.or(self.max_files);
        self.forbid_packages.extend(other.forbid_packages);
        self.require_non_root |= other.require_non_root;
        self.lowest_efficiency = other.lowest_efficiency.or(self.lowest_efficiency);
        self.highest_wasted_bytes = other.highest_wasted_bytes.or(self.highest_wasted_bytes);
        self.highest_user_wasted_percent = other
            .highest_user_wasted_percent
            .or(self.highest_user_wasted_percent);
        self
    }
}

/// A value a gate cannot use; the caller names the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError(pub String);

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `"50MB"` (10^6), `"1.5GiB"` (2^30), `"512k"`, `"1024"` (bytes). SI
/// prefixes are decimal and `Ki`/`Mi`/… binary, as `ls --si`/`-h` and
/// dive read them; the `B` is optional and case does not matter.
pub fn parse_size(s: &str) -> Result<u64, ValueError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        ValueError(format!(
            "`{s}` is not a size (examples: 50MB, 1.5GiB, 200k, 1048576)"
        ))
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "ki" => 1024.0,
        "mi" => 1024.0 * 1024.0,
        "gi" => 1024.0 * 1024.0 * 1024.0,
        "ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let bytes = (n * mult).round();
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `0.9`, `"0.9"` or `"90%"` → 0.9; anything outside [0, 1] is refused
/// (a bare `90` is almost certainly meant as a percent: say so).
pub fn parse_ratio(s: &str) -> Result<f64, ValueError> {
    let t = s.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| ValueError(format!("`{s}` is not a ratio (examples: 0.9, 90%)")))?;
    ratio(value).map_err(|_| {
        ValueError(format!(
            "`{s}` is outside 0..1 (write a percent with `%`, e.g. \"{t}%\")"
        ))
    })
}

/// A ratio from a TOML number.
pub fn ratio(v: f64) -> Result<f64, ValueError> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(ValueError(format!(
            "{v} is outside 0..1 (a ratio: 0.9 means 90%)"
        )))
    }
}

/// Bytes in decimal units with one decimal, as the gate messages print
/// them ("61.2 MB"): the units `max_size = "50MB"` is written in.
pub fn show_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        let s = format!("{v:.1}");
        let s = s.strip_suffix(".0").unwrap_or(&s);
        format!("{s} {}", UNITS[unit])
    }
}

/// A ratio as a percent, one decimal ("87.5%").
pub fn show_ratio(r: f64) -> String {
    if r.is_infinite() {
        return "∞%".into();
    }
    let s = format!("{:.1}", r * 100.0);
    let s = s.strip_suffix(".0").unwrap_or(&s);
    format!("{s}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_si_and_binary_units() {
        assert_eq!(parse_size("50MB"), Ok(50_000_000));
        assert_eq!(parse_size("1.5GiB"), Ok(1_610_612_736));
        assert_eq!(parse_size("512k"), Ok(512_000));
        assert_eq!(parse_size("2 MiB"), Ok(2 << 20));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("7b"), Ok(7));
        for bad in ["", "MB", "5XB", "1.2.3MB", "-1MB", "1e400"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ratios_take_fractions_and_percents() {
        assert_eq!(parse_ratio("0.9"), Ok(0.9));
        assert_eq!(parse_ratio("90%"), Ok(0.9));
        assert_eq!(parse_ratio("0%"), Ok(0.0));
        let err = parse_ratio("90").unwrap_err();
        assert!(err.0.contains("\"90%\""), "{err}");
        assert!(parse_ratio("x").is_err());
    }

    #[test]
    fn sizes_print_in_the_units_they_are_written_in() {
        assert_eq!(show_size(61_200_000), "61.2 MB");
        assert_eq!(show_size(50_000_000), "50 MB");
        assert_eq!(show_size(999), "999 B");
        assert_eq!(show_ratio(0.875), "87.5%");
        assert_eq!(show_ratio(0.2), "20%");
    }

    #[test]
    fn flags_override_the_recipe_and_add_forbidden_packages() {
        let recipe = Gates {
            max_size: Some(1),
            max_files: Some(2),
            forbid_packages: vec!["bash".into()],
            ..Gates::default()
        };
        let flags = Gates {
            max_size: Some(3),
            forbid_packages: vec!["dnf*".into()],
            ..Gates::default()
        };
        let g = recipe.overridden_by(flags);
        assert_eq!(g.max_size, Some(3));
        assert_eq!(g.max_files, Some(2));
        assert_eq!(g.forbid_packages, vec!["bash", "dnf*"]);
        assert!(!g.is_empty());
        assert!(Gates::default().is_empty());
    }
}
