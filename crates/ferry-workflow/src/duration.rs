//! Upstream's durations (`suspend.duration`, `retryStrategy.backoff`): a bare number of
//! seconds, or Go's duration syntax such as `90s`, `2m`, `1h30m`.

use jiff::SignedDuration;

pub fn parse(text: &str) -> Result<SignedDuration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(SignedDuration::from_secs(seconds));
    }
    text.parse::<SignedDuration>()
        .map_err(|_| format!("{text:?} is not a duration (seconds, or e.g. 30s, 2m, 1h30m)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_go_durations_parse() {
        assert_eq!(parse("20").unwrap(), SignedDuration::from_secs(20));
        assert_eq!(parse("20s").unwrap(), SignedDuration::from_secs(20));
        assert_eq!(parse("1h30m").unwrap(), SignedDuration::from_secs(5400));
        assert_eq!(parse("2m").unwrap(), SignedDuration::from_secs(120));
        assert_eq!(parse("1.5s").unwrap(), SignedDuration::from_millis(1500));
        assert!(parse("soon").unwrap_err().contains("\"soon\""));
    }
}
