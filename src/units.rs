//! Human-friendly units for command-line flags and reports.
//!
//! Parsers ([`parse_size`], [`parse_duration`], [`parse_rate`]) accept the
//! forms people type (`1.5GB`, `250ms`, `10MiB/s`) and return exact integer
//! quantities; their `Err` strings name the offending input so clap can show
//! them verbatim. Formatters ([`human_bytes`], [`human_duration`]) produce
//! short, fixed-precision text for reports.
//!
//! Decimal inputs are evaluated with integer arithmetic (no floating point),
//! rounding half up to the nearest byte or nanosecond.

use std::time::Duration;

const KIB: u128 = 1 << 10;
const MIB: u128 = 1 << 20;
const GIB: u128 = 1 << 30;
const TIB: u128 = 1 << 40;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Fractional digits beyond this many are ignored: they cannot change the
/// result by a whole byte or nanosecond, and the limit keeps the arithmetic
/// inside `u128`.
const MAX_FRACTION_DIGITS: usize = 20;

/// Parses a byte size such as `1234`, `4KiB`, `1.5GB` or `0.5 mib`.
///
/// Units are case-insensitive and may be separated from the number by spaces:
///
/// | prefix | binary (×1024ⁿ)  | decimal (×1000ⁿ) |
/// |--------|------------------|------------------|
/// | none   | none or `B`      | none or `B`      |
/// | kilo   | `K`, `KiB`       | `KB`             |
/// | mega   | `M`, `MiB`       | `MB`             |
/// | giga   | `G`, `GiB`       | `GB`             |
/// | tera   | `T`, `TiB`       | `TB`             |
///
/// A bare letter (`K`, `M`, …) is binary, like `dd` and most download tools.
/// Decimals are allowed and rounded to the nearest byte.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let err = || {
        format!(
            "invalid size {s:?}: expected a number with an optional unit like 4KiB, 1MiB, 1.5GB"
        )
    };
    let (number, unit) = split_number(s.trim()).ok_or_else(err)?;
    let multiplier = size_multiplier(unit.trim_start()).ok_or_else(err)?;
    let bytes = scale_decimal(number, multiplier).ok_or_else(err)?;
    u64::try_from(bytes).map_err(|_| format!("invalid size {s:?}: too large"))
}

/// Parses a duration such as `250ms`, `1.5s`, `1m`, `100us`, `0` or `2m03s`.
///
/// Units: `ns`, `us` (or `µs`), `ms`, `s`, `m` (minutes), `h`. A bare number
/// means seconds, like curl's `--max-time`. Several number-unit pairs may be
/// concatenated (`1m30s`, `1h2m`), which is also what [`human_duration`]
/// prints for long durations. Decimals are rounded to the nearest nanosecond.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || {
        format!("invalid duration {s:?}: expected a number with a unit like 250ms, 2s, 1.5s, 1m")
    };
    let text = s.trim();
    let nanos = if let Some(nanos) = bare_seconds(text) {
        nanos
    } else {
        sum_duration_parts(text).ok_or_else(err)?
    };
    nanos_to_duration(nanos).ok_or_else(|| format!("invalid duration {s:?}: too large"))
}

/// Parses a duration that must be longer than zero (a timeout of zero would fail everything
/// at once).
pub(crate) fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("invalid duration {s:?}: must be longer than 0")),
        d => Ok(d),
    }
}

/// Parses a bandwidth in bytes per second, such as `10MiB/s`, `500KB/s` or
/// `1MiB`: a [`parse_size`] value with an optional `/s` suffix.
pub(crate) fn parse_rate(s: &str) -> Result<u64, String> {
    let text = s.trim();
    let size = strip_suffix_ignore_case(text, "/s").unwrap_or(text);
    parse_size(size).map_err(|_| {
        format!("invalid rate {s:?}: expected bytes per second like 10MiB/s, 500KB/s, 1MiB")
    })
}

/// Formats a byte count with binary units and two decimals: `512 B`,
/// `1.50 MiB`, `3.00 GiB`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    // Move up a unit whenever rounding would print "1024.00".
    while (value * 100.0).round() >= 102_400.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

/// Formats a duration compactly, rounding to the shown precision:
/// `0s`, `850us`, `350ms`, `1.84s`, `2m03s`, `1h02m03s`.
pub(crate) fn human_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_string();
    }
    let nanos = d.as_nanos();
    let micros = round_div(nanos, 1_000);
    if micros < 1_000 {
        return format!("{micros}us");
    }
    let millis = round_div(nanos, 1_000_000);
    if millis < 1_000 {
        return format!("{millis}ms");
    }
    let centis = round_div(nanos, 10_000_000);
    if centis < 6_000 {
        return format!("{}.{:02}s", centis / 100, centis % 100);
    }
    let secs = round_div(nanos, NANOS_PER_SEC);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h == 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{h}h{m:02}m{s:02}s")
    }
}

/// Splits `s` into a leading decimal number (`digits` or `digits.digits`) and
/// the remainder. Returns `None` if `s` does not start with such a number.
fn split_number(s: &str) -> Option<(&str, &str)> {
    let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
    if int_len == 0 {
        return None;
    }
    let rest = &s[int_len..];
    let Some(after_dot) = rest.strip_prefix('.') else {
        return Some(s.split_at(int_len));
    };
    let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
    if frac_len == 0 {
        return None;
    }
    Some(s.split_at(int_len + 1 + frac_len))
}

/// Bytes per unit for a (possibly empty) size unit, case-insensitively.
fn size_multiplier(unit: &str) -> Option<u128> {
    let multiplier = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => KIB,
        "kb" => 1_000,
        "m" | "mib" => MIB,
        "mb" => 1_000_000,
        "g" | "gib" => GIB,
        "gb" => 1_000_000_000,
        "t" | "tib" => TIB,
        "tb" => 1_000_000_000_000,
        _ => return None,
    };
    Some(multiplier)
}

/// Nanoseconds per unit for a duration unit, case-insensitively.
fn duration_multiplier(unit: &str) -> Option<u128> {
    let multiplier = match unit.to_ascii_lowercase().as_str() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3_600 * NANOS_PER_SEC,
        _ => return None,
    };
    Some(multiplier)
}

/// Exact `number * multiplier` for a decimal string produced by
/// [`split_number`], rounded half up; `None` on overflow.
fn scale_decimal(number: &str, multiplier: u128) -> Option<u128> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let whole = int.parse::<u128>().ok()?.checked_mul(multiplier)?;
    let frac = &frac[..frac.len().min(MAX_FRACTION_DIGITS)];
    if frac.is_empty() {
        return Some(whole);
    }
    let denominator = 10u128.pow(frac.len() as u32);
    let numerator = frac.parse::<u128>().ok()? * multiplier;
    whole.checked_add(round_div(numerator, denominator))
}

/// `n / d` rounded half up.
fn round_div(n: u128, d: u128) -> u128 {
    n / d + u128::from(n % d >= d - d / 2)
}

/// Nanoseconds for a string that is only a number (meaning seconds).
fn bare_seconds(text: &str) -> Option<u128> {
    match split_number(text) {
        Some((number, "")) => scale_decimal(number, NANOS_PER_SEC),
        _ => None,
    }
}

/// Total nanoseconds of one or more concatenated `<number><unit>` parts.
fn sum_duration_parts(text: &str) -> Option<u128> {
    let mut rest = text;
    let mut total = 0u128;
    while !rest.is_empty() {
        let (number, after) = split_number(rest)?;
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(after.len());
        let multiplier = duration_multiplier(&after[..unit_len])?;
        total = total.checked_add(scale_decimal(number, multiplier)?)?;
        rest = after[unit_len..].trim_start();
    }
    (!text.is_empty()).then_some(total)
}

fn nanos_to_duration(nanos: u128) -> Option<Duration> {
    let secs = u64::try_from(nanos / NANOS_PER_SEC).ok()?;
    Some(Duration::new(secs, (nanos % NANOS_PER_SEC) as u32))
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let split = s.len().checked_sub(suffix.len())?;
    let (head, tail) = (s.get(..split)?, s.get(split..)?);
    tail.eq_ignore_ascii_case(suffix).then_some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_plain_integers() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("1234"), Ok(1234));
        assert_eq!(parse_size(" 42 "), Ok(42));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn size_units_binary_and_decimal() {
        assert_eq!(parse_size("1B"), Ok(1));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4KB"), Ok(4000));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
        assert_eq!(parse_size("1TB"), Ok(1_000_000_000_000));
    }

    #[test]
    fn size_is_case_insensitive_and_allows_space() {
        assert_eq!(parse_size("1mib"), Ok(1 << 20));
        assert_eq!(parse_size("1MIB"), Ok(1 << 20));
        assert_eq!(parse_size("1 KiB"), Ok(1024));
        assert_eq!(parse_size("3kb"), Ok(3000));
        assert_eq!(parse_size("7b"), Ok(7));
    }

    #[test]
    fn size_decimals_are_exact_and_rounded() {
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("0.5MiB"), Ok(512 * 1024));
        assert_eq!(parse_size("1.1KiB"), Ok(1126)); // 1126.4
        assert_eq!(parse_size("1.5"), Ok(2)); // half rounds up
        assert_eq!(parse_size("0.4B"), Ok(0));
        assert_eq!(parse_size("2.000000000000000000000001K"), Ok(2048));
    }

    #[test]
    fn size_rejects_garbage_and_names_input() {
        for bad in [
            "", " ", "abc", "K", "-1", "1.", ".5", "1..5", "1.5.5", "1 2", "1KiBs", "1 XB", "0x10",
            "+5", "1e3",
        ] {
            let err = parse_size(bad).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        let err = parse_size("abc").unwrap_err();
        assert_eq!(
            err,
            r#"invalid size "abc": expected a number with an optional unit like 4KiB, 1MiB, 1.5GB"#
        );
    }

    #[test]
    fn size_rejects_overflow() {
        assert!(parse_size("18446744073709551616").is_err());
        assert!(parse_size("16777216TiB").is_err());
        assert!(parse_size("99999999999999999999999999999999999999999").is_err());
    }

    #[test]
    fn duration_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("100µs"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("10 MS"), Ok(Duration::from_millis(10)));
    }

    #[test]
    fn duration_bare_number_is_seconds() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn duration_compound_forms() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m03s"), Ok(Duration::from_secs(123)));
        assert_eq!(parse_duration("1h02m03s"), Ok(Duration::from_secs(3723)));
        assert_eq!(parse_duration("1s 500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn duration_rejects_garbage() {
        for bad in [
            "", "ms", "abc", "-1s", "1x", "1sec", "1.s", "s1", "1m30", "5 5",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        assert!(parse_duration("99999999999999999999999h").is_err());
    }

    #[test]
    fn rate_with_and_without_per_second() {
        assert_eq!(parse_rate("10MiB/s"), Ok(10 << 20));
        assert_eq!(parse_rate("500KB/s"), Ok(500_000));
        assert_eq!(parse_rate("1MiB"), Ok(1 << 20));
        assert_eq!(parse_rate("1mib/S"), Ok(1 << 20));
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert_eq!(parse_rate("0"), Ok(0));
    }

    #[test]
    fn rate_rejects_garbage() {
        for bad in ["", "/s", "fast", "10MiB/h", "10MiB/s/s", "1MiB/"] {
            let err = parse_rate(bad).expect_err(bad);
            assert!(err.starts_with(&format!("invalid rate {bad:?}")), "{err}");
        }
    }

    #[test]
    fn human_bytes_formats() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.00 KiB");
        assert_eq!(human_bytes(1536 * 1024), "1.50 MiB");
        assert_eq!(human_bytes(3 << 30), "3.00 GiB");
        assert_eq!(human_bytes((1 << 20) - 1), "1.00 MiB"); // not "1024.00 KiB"
        assert_eq!(human_bytes(u64::MAX), "16.00 EiB");
    }

    #[test]
    fn human_duration_formats() {
        assert_eq!(human_duration(Duration::ZERO), "0s");
        assert_eq!(human_duration(Duration::from_nanos(400)), "0us");
        assert_eq!(human_duration(Duration::from_micros(850)), "850us");
        assert_eq!(human_duration(Duration::from_millis(350)), "350ms");
        assert_eq!(human_duration(Duration::from_micros(999_700)), "1.00s");
        assert_eq!(human_duration(Duration::from_millis(1840)), "1.84s");
        assert_eq!(human_duration(Duration::from_millis(59_999)), "1m00s");
        assert_eq!(human_duration(Duration::from_secs(123)), "2m03s");
        assert_eq!(human_duration(Duration::from_secs(3723)), "1h02m03s");
    }

    #[test]
    fn human_duration_round_trips_through_parser() {
        for secs in [61, 123, 3599, 3723, 90_000] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse_duration(&human_duration(d)), Ok(d));
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            #[test]
            fn parsers_never_panic(
                s in prop_oneof![
                    "[0-9. ]{0,30}[a-zA-Zµ/ ]{0,8}([0-9.]{0,10}[a-z]{0,3}){0,3}",
                    any::<String>(),
                ]
            ) {
                let _ = parse_size(&s);
                let _ = parse_rate(&s);
                let _ = parse_duration(&s);
                if let Ok(d) = parse_positive_duration(&s) {
                    prop_assert!(!d.is_zero());
                }
            }

            #[test]
            fn sizes_round_trip(n in any::<u64>(), k in 0u64..1 << 40) {
                prop_assert_eq!(parse_size(&n.to_string()), Ok(n));
                prop_assert_eq!(parse_size(&format!("{k}KiB")), Ok(k * 1024));
                prop_assert_eq!(parse_rate(&format!("{k}KB/s")), Ok(k * 1000));
            }

            #[test]
            fn durations_round_trip(ms in 0u64..1 << 40, secs in 60u64..10_000_000) {
                prop_assert_eq!(parse_duration(&format!("{ms}ms")), Ok(Duration::from_millis(ms)));
                let d = Duration::from_secs(secs);
                prop_assert_eq!(parse_duration(&human_duration(d)), Ok(d));
            }
        }
    }
}
