//! Conformance with Argo CD's bundled health checks: every `<group>/<kind>/health.lua` of its
//! `resource_customizations` (at the release pinned in tools/versions.env, read from the Go
//! module cache) runs in ferry's Lua sandbox on each input of its `health_test.yaml`, and must
//! give the status and message Argo CD's own test expects.

mod argocd;

use argocd::{corpus, dirs_with, first_document, read, tests};
use ferry_health::{HealthStatus, LuaLimits, LuaScript};
use serde::Deserialize;

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

#[test]
fn argo_cd_health_scripts_give_the_health_argo_cd_expects() {
    let corpus = corpus();
    let dirs = dirs_with(&corpus, "health.lua");
    let (mut cases, mut disagreements) = (0, Vec::new());
    for dir in &dirs {
        let name = dir.strip_prefix(&corpus).unwrap().display().to_string();
        let script = LuaScript::new(name.clone(), read(&dir.join("health.lua")))
            .unwrap_or_else(|err| panic!("{name}/health.lua does not compile: {err}"));
        let health_tests: HealthTests = tests(&dir.join("health_test.yaml"));
        for test in health_tests.tests {
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
