//! Durations written the way Argo CD's manifests write them: Go's `time.ParseDuration` syntax
//! (`90s`, `1h30m`, `1.5h`, `300ms`), used by sync windows and sync retry backoff.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    pub input: String,
    pub reason: &'static str,
}

/// Parses a Go duration. Negative durations are refused: nothing in an Application or
/// AppProject has a meaning for them.
pub fn parse_go_duration(input: &str) -> Result<Duration, DurationError> {
    let fail = |reason| DurationError {
        input: input.to_string(),
        reason,
    };
    let mut rest = input.strip_prefix('+').unwrap_or(input);
    if rest.starts_with('-') {
        return Err(fail("negative durations are not allowed"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(fail("empty duration"));
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(fail("expected a number"));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "" => return Err(fail("missing unit")),
            _ => return Err(fail("unknown unit")),
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| fail("number too large"))?
        };
        // The fraction is scaled digit by digit so `1.5h` is exact.
        let mut scale = unit_nanos;
        let mut fraction_nanos: u128 = 0;
        for digit in fraction.bytes() {
            scale /= 10;
            fraction_nanos += u128::from(digit - b'0') * scale;
        }
        nanos = whole
            .checked_mul(unit_nanos)
            .and_then(|n| n.checked_add(fraction_nanos))
            .and_then(|n| n.checked_add(nanos))
            .filter(|n| *n <= u128::from(u64::MAX))
            .ok_or_else(|| fail("duration too large"))?;
        rest = next;
    }
    let secs = (nanos / 1_000_000_000) as u64;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Argo CD's retry backoff durations: a bare integer counts seconds, anything else is a Go
/// duration.
pub fn parse_seconds_or_duration(input: &str) -> Result<Duration, DurationError> {
    match input.trim().parse::<i64>() {
        Ok(secs) if secs < 0 => Err(DurationError {
            input: input.to_string(),
            reason: "negative durations are not allowed",
        }),
        Ok(secs) => Ok(Duration::from_secs(secs as u64)),
        Err(_) => parse_go_duration(input.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        let d = |s| parse_go_duration(s).unwrap();
        assert_eq!(d("0"), Duration::ZERO);
        assert_eq!(d("90s"), Duration::from_secs(90));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("1.5h"), Duration::from_secs(5400));
        assert_eq!(d(".5s"), Duration::from_millis(500));
        assert_eq!(d("300ms"), Duration::from_millis(300));
        assert_eq!(d("2h45m30.5s"), Duration::from_millis(9_930_500));
        assert_eq!(d("1us"), Duration::from_nanos(1_000));
        assert_eq!(d("+10m"), Duration::from_secs(600));
    }

    #[test]
    fn bad_durations_say_why() {
        let e = |s| parse_go_duration(s).unwrap_err().reason;
        assert_eq!(e("10"), "missing unit");
        assert_eq!(e("1d"), "unknown unit");
        assert_eq!(e(""), "empty duration");
        assert_eq!(e("-1h"), "negative durations are not allowed");
        assert_eq!(e("h"), "expected a number");
        assert_eq!(e("1..5h"), "expected a number");
        assert_eq!(e("99999999999999999999h"), "duration too large");
        assert_eq!(
            parse_go_duration("1x").unwrap_err().to_string(),
            "invalid duration \"1x\": unknown unit"
        );
    }

    #[test]
    fn retry_durations_default_to_seconds() {
        assert_eq!(
            parse_seconds_or_duration("5").unwrap(),
            Duration::from_secs(5)
        );
        assert_eq!(
            parse_seconds_or_duration("2m").unwrap(),
            Duration::from_secs(120)
        );
        assert!(parse_seconds_or_duration("-5").is_err());
        assert!(parse_seconds_or_duration("soon").is_err());
    }
}
