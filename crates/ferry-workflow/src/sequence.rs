//! `withSequence`: the numbers upstream expands it to, formatted with a printf format.

use ferry_types::workflow::Sequence;

use crate::expr::{self, Scope};

/// The items of `sequence`, after substituting tags in its fields: from `start` to `end`
/// (counting down when `end` is smaller), or `count` numbers from `start`.
pub fn expand(sequence: &Sequence, scope: &Scope) -> Result<Vec<String>, String> {
    let number = |field: &str, value: &Option<String>| -> Result<Option<i64>, String> {
        let Some(value) = value else {
            return Ok(None);
        };
        let value = expr::substitute(value, scope)?;
        value
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("withSequence.{field}: {value:?} is not a number"))
    };
    let start = number("start", &sequence.start)?.unwrap_or(0);
    let end = match (
        number("end", &sequence.end)?,
        number("count", &sequence.count)?,
    ) {
        (Some(end), _) => end,
        (None, Some(0)) => return Ok(Vec::new()),
        (None, Some(count)) => start + count - 1,
        (None, None) => return Err("withSequence: neither end nor count was specified".into()),
    };
    let format = sequence.format.as_deref().unwrap_or("%d");
    let numbers: Vec<i64> = if start <= end {
        (start..=end).collect()
    } else {
        (end..=start).rev().collect()
    };
    numbers.into_iter().map(|n| printf(format, n)).collect()
}

/// `format` with its one integer verb (`%d`, `%x`, `%X`, `%o`, `%b`, with a width and the `0`
/// and `-` flags) replaced by `n`; `%%` is a percent sign.
fn printf(format: &str, n: i64) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut zero, mut left, mut width) = (false, false, 0usize);
        loop {
            match chars.peek() {
                Some('0') if width == 0 && !zero => zero = true,
                Some('-') => left = true,
                Some(d) if d.is_ascii_digit() => width = width * 10 + (*d as usize - '0' as usize),
                _ => break,
            }
            chars.next();
        }
        let digits = match chars.next() {
            Some('%') => {
                out.push('%');
                continue;
            }
            Some('d') => n.to_string(),
            Some('x') => format!("{n:x}"),
            Some('X') => format!("{n:X}"),
            Some('o') => format!("{n:o}"),
            Some('b') => format!("{n:b}"),
            other => {
                return Err(format!(
                    "withSequence.format {format:?}: unsupported verb {:?}",
                    other.map(String::from).unwrap_or_default()
                ));
            }
        };
        let pad = width.saturating_sub(digits.len());
        match (left, zero) {
            (true, _) => out.extend([digits, " ".repeat(pad)]),
            (false, true) => match digits.strip_prefix('-') {
                Some(rest) => out.extend(["-".into(), "0".repeat(pad), rest.into()]),
                None => out.extend(["0".repeat(pad), digits]),
            },
            (false, false) => out.extend([" ".repeat(pad), digits]),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(
        count: Option<&str>,
        start: Option<&str>,
        end: Option<&str>,
        f: Option<&str>,
    ) -> Sequence {
        Sequence {
            count: count.map(Into::into),
            start: start.map(Into::into),
            end: end.map(Into::into),
            format: f.map(Into::into),
        }
    }

    #[test]
    fn counts_ranges_and_formats_as_upstream() {
        let scope: Scope = [("n".to_string(), "3".to_string())].into();
        let expand = |s: Sequence| expand(&s, &scope);
        assert_eq!(
            expand(seq(Some("{{n}}"), None, None, None)).unwrap(),
            ["0", "1", "2"]
        );
        assert_eq!(
            expand(seq(None, Some("5"), Some("3"), None)).unwrap(),
            ["5", "4", "3"]
        );
        assert_eq!(
            expand(seq(Some("2"), Some("9"), None, Some("user%02X"))).unwrap(),
            ["user09", "user0A"]
        );
        assert!(expand(seq(Some("0"), None, None, None)).unwrap().is_empty());
        assert!(expand(seq(None, None, None, None)).is_err());
        assert!(
            expand(seq(Some("x"), None, None, None))
                .unwrap_err()
                .contains("withSequence.count")
        );
        assert_eq!(printf("[%-3d|%3d|%%]", 7).unwrap(), "[7  |  7|%]");
        assert_eq!(printf("%03d", -7).unwrap(), "-07");
    }
}
