//! Built-in checks against recorded live objects. Each fixture under `tests/fixtures/builtin`
//! starts with the health it must get: `# expect: <Status>: <message>`, or `# expect: none`
//! for kinds without a health.

use std::path::Path;

use ferry_health::{HealthChecks, HealthStatus, assess};
use serde_json::Value;

fn expectation(path: &Path, text: &str) -> Option<HealthStatus> {
    let header = text.lines().next().unwrap_or("");
    let expected = header
        .strip_prefix("# expect: ")
        .unwrap_or_else(|| panic!("{}: first line must be `# expect: ...`", path.display()));
    if expected.trim() == "none" {
        return None;
    }
    let (code, message) = expected
        .split_once(':')
        .unwrap_or_else(|| panic!("{}: expected `Status: message`", path.display()));
    let code = code
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some(HealthStatus::new(code, message.trim()))
}

#[test]
fn recorded_objects_get_the_expected_health() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/builtin");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    let checks = HealthChecks::new();
    let mut failures = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let expected = expectation(path, &text);
        let obj: Value =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let actual = assess(&obj, &checks);
        if actual != expected {
            failures.push(format!(
                "{}:\n  expected {expected:?}\n  got      {actual:?}",
                path.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(paths.len() > 80, "fixtures went missing: {}", paths.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
