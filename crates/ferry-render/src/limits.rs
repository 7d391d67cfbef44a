//! Bounds on the work one render may cause, so that a repository written to hurt (a huge file,
//! a template that prints forever, an endless or memory-hungry Jsonnet program) fails its own
//! app with an error instead of exhausting the controller.
//!
//! Each limit has a default no real install is expected to reach and is raised by the flag of
//! `ferry-controller` and `ferry render` its error message names.

use crate::error::ErrorKind;

/// One manifest file a directory source reads, a Jsonnet file or import included
/// (`--max-manifest-file-size`; Argo CD caps a directory app's files together at 10M).
pub const DEFAULT_MAX_MANIFEST_FILE_SIZE: u64 = 10 << 20;
/// Rendered manifests of one app, all sources together, as compact JSON
/// (`--max-manifest-size`).
pub const DEFAULT_MAX_MANIFEST_SIZE: u64 = 64 << 20;
/// What one tool process may write to stdout or to stderr (`--max-tool-output`).
pub const DEFAULT_MAX_TOOL_OUTPUT: u64 = 128 << 20;
/// Memory of each tool process, as its data limit (`RLIMIT_DATA`; `--max-tool-memory`).
pub const DEFAULT_MAX_TOOL_MEMORY: u64 = 2 << 30;
/// File contents of one repository checkout, submodules included (`--max-repo-size`; Argo CD
/// caps an extracted chart at 1G).
pub const DEFAULT_MAX_REPO_SIZE: u64 = 1 << 30;

/// Parses a size as the size flags take it: a number of bytes, optionally followed by a
/// Kubernetes quantity suffix, `Ki`, `Mi`, `Gi`, `Ti` (powers of 1024) or `k`/`K`, `M`, `G`,
/// `T` (powers of 1000, as Argo CD's `10M`); a trailing `B` is allowed (`10MiB`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let body = trimmed.strip_suffix('B').unwrap_or(trimmed);
    let split = body
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(body.len());
    let (number, unit) = body.split_at(split);
    let not_a_size = || format!("{text:?}: not a size (e.g. 10Mi, 512Ki, 10M, 1048576)");
    if number.is_empty() {
        return Err(not_a_size());
    }
    let factor: u64 = match unit.trim() {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use bytes, Ki, Mi, Gi, Ti, k, M, G or T)"
            ));
        }
    };
    let value: f64 = number.parse().map_err(|_| not_a_size())?;
    let bytes = value * factor as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("{text:?}: out of range"));
    }
    Ok(bytes.round() as u64)
}

/// A size for messages: `512 B`, `10 KiB`, `12.3 MiB`, `2 GiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let shown = format!("{value:.1}");
    let shown = shown.strip_suffix(".0").unwrap_or(&shown);
    format!("{shown} {}", UNITS[unit])
}

/// A size and the limit it passed, for messages: in binary units, or in bytes when those would
/// show the same number (`2065 B, over the limit of 2000 B`).
pub(crate) fn format_over(size: u64, limit: u64) -> (String, String) {
    let (shown, limit_shown) = (format_size(size), format_size(limit));
    if shown == limit_shown {
        (format!("{size} B"), format!("{limit} B"))
    } else {
        (shown, limit_shown)
    }
}

/// What the rendered manifests of one app may still take: `used` bytes (as compact JSON) of
/// `limit`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ManifestBudget {
    pub used: u64,
    pub limit: u64,
}

impl ManifestBudget {
    pub(crate) fn new(limit: u64) -> Self {
        Self { used: 0, limit }
    }

    /// Counts `objects`; fails with [`ErrorKind::ManifestsTooLarge`] once the total passes the
    /// limit.
    pub(crate) fn spend(&mut self, objects: &[serde_json::Value]) -> Result<(), ErrorKind> {
        self.used = self.used.saturating_add(json_size(objects));
        if self.used > self.limit {
            return Err(ErrorKind::ManifestsTooLarge {
                size: self.used,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

/// Bytes of `objects` as compact JSON, counted without building the text.
pub(crate) fn json_size(objects: &[serde_json::Value]) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    for object in objects {
        // Writing JSON values to a counter cannot fail.
        let _ = serde_json::to_writer(&mut count, object);
    }
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_bytes_and_quantities() {
        for (text, bytes) in [
            ("0", 0),
            ("1048576", 1 << 20),
            ("512Ki", 512 << 10),
            ("10Mi", 10 << 20),
            ("10MiB", 10 << 20),
            ("1.5Gi", 3 << 29),
            ("2Gi", 2 << 30),
            ("10M", 10_000_000),
            ("1G", 1_000_000_000),
            ("64k", 64_000),
            (" 7 ", 7),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "Mi", "ten", "10 parsecs", "-1", "1e400"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_format_in_binary_units() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(1024), "1 KiB");
        assert_eq!(format_size(10 << 20), "10 MiB");
        assert_eq!(format_size(12_897_485), "12.3 MiB");
        assert_eq!(format_size(2 << 30), "2 GiB");
    }

    #[test]
    fn sizes_over_a_limit_never_look_equal_to_it() {
        assert_eq!(
            format_over(12_897_485, 10 << 20),
            ("12.3 MiB".into(), "10 MiB".into())
        );
        assert_eq!(format_over(2065, 2000), ("2065 B".into(), "2000 B".into()));
    }

    #[test]
    fn json_size_is_the_compact_json_length() {
        let objects = vec![
            serde_json::json!({"kind": "ConfigMap", "data": {"a": "ü"}}),
            serde_json::json!([1, 2]),
        ];
        let expected: usize = objects
            .iter()
            .map(|o| serde_json::to_vec(o).unwrap().len())
            .sum();
        assert_eq!(json_size(&objects), expected as u64);
    }
}
