//! Conformance with Argo CD's bundled health checks: every `<group>/<kind>/health.lua` of its
//! `resource_customizations` (at the release pinned in tools/versions.env, read from the Go
//! module cache) runs in ferry's Lua sandbox on each input of its `health_test.yaml`, and must
//! give the status and message Argo CD's own test expects.

use std::path::{Path, PathBuf};

use ferry_health::{HealthStatus, LuaLimits, LuaScript};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct HealthTests {
    tests: Vec<HealthTest>,
}

/// Go's YAML decoding matches field names in any case, and some of the files rely on it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthTest {
    #[serde(alias = "inputpath")]
    input_path: String,
    health_status: HealthStatus,
}

/// Every directory under `dir` that holds a `health.lua`, sorted.
fn script_dirs(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            script_dirs(&path, found);
        } else if path.file_name().is_some_and(|n| n == "health.lua") {
            found.push(dir.to_owned());
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The file's first YAML document, as Go's YAML decoding reads it (some inputs hold more).
fn first_document(path: &Path) -> Value {
    let text = read(path);
    let first = serde_yaml::Deserializer::from_str(&text)
        .next()
        .unwrap_or_else(|| panic!("{} holds no YAML document", path.display()));
    Value::deserialize(first).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn argo_cd_health_scripts_give_the_health_argo_cd_expects() {
    let corpus = ferry_testkit::argocd_source::resource_customizations().unwrap();
    let mut dirs = Vec::new();
    script_dirs(&corpus, &mut dirs);
    let (mut cases, mut disagreements) = (0, Vec::new());
    for dir in &dirs {
        let name = dir.strip_prefix(&corpus).unwrap().display().to_string();
        let script = LuaScript::new(name.clone(), read(&dir.join("health.lua")))
            .unwrap_or_else(|err| panic!("{name}/health.lua does not compile: {err}"));
        let tests: HealthTests = serde_yaml::from_str(&read(&dir.join("health_test.yaml")))
            .unwrap_or_else(|err| panic!("{name}/health_test.yaml: {err}"));
        for test in tests.tests {
            cases += 1;
            let obj = first_document(&dir.join(&test.input_path));
            let got = script.assess(&obj, &LuaLimits::default());
            if got != test.health_status {
                disagreements.push(format!(
                    "{name}/{}:\n  expected {:?}\n  got      {got:?}",
                    test.input_path, test.health_status
                ));
            }
        }
    }
    println!(
        "{} scripts, {cases} cases, {} agree, {} disagree",
        dirs.len(),
        cases - disagreements.len(),
        disagreements.len()
    );
    assert!(dirs.len() > 200, "only {} health scripts found", dirs.len());
    assert!(
        disagreements.is_empty(),
        "{} of {cases} cases disagree with Argo CD:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}
