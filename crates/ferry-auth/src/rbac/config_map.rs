//! The policy's source of truth: Argo CD's `argocd-rbac-cm` ConfigMap.

use std::collections::BTreeMap;

use super::policy::{Policy, PolicyError};

/// The ConfigMap holding the RBAC settings, in the control namespace.
pub const CONFIG_MAP_NAME: &str = "argocd-rbac-cm";
/// The main policy CSV; `policy.<anything>.csv` keys are appended to it.
pub const POLICY_CSV_KEY: &str = "policy.csv";
/// The role every subject has.
pub const POLICY_DEFAULT_KEY: &str = "policy.default";
/// `glob` (the default) or `regex`.
pub const MATCH_MODE_KEY: &str = "policy.matchMode";
/// The token claims holding a user's groups, as a YAML list: `[groups, email]`.
pub const SCOPES_KEY: &str = "scopes";
/// The scopes when the ConfigMap names none.
pub const DEFAULT_SCOPES: &[&str] = &["groups"];

impl Policy {
    /// The policy an `argocd-rbac-cm` ConfigMap's data describes: `policy.csv`, then every other
    /// `policy.*.csv` key in key order (as Argo CD concatenates them), `policy.default`,
    /// `policy.matchMode` and `scopes`.
    pub fn from_config_map_data(data: &BTreeMap<String, String>) -> Result<Self, PolicyError> {
        let match_mode = data
            .get(MATCH_MODE_KEY)
            .map(|mode| mode.parse())
            .transpose()
            .map_err(|reason| PolicyError::Setting {
                key: MATCH_MODE_KEY.to_string(),
                reason,
            })?
            .unwrap_or_default();
        let scopes = parse_scopes(data.get(SCOPES_KEY).map(String::as_str))?;
        Self::compile(
            &policy_texts(data),
            data.get(POLICY_DEFAULT_KEY).map(String::as_str),
            match_mode,
            scopes,
        )
    }
}

/// The policy CSVs by key, `policy.csv` first and the others sorted by key (a `BTreeMap`
/// iterates in the byte order Argo CD sorts in).
fn policy_texts(data: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    let main = data.get_key_value(POLICY_CSV_KEY);
    let overlays = data.iter().filter(|(key, _)| {
        key.as_str() != POLICY_CSV_KEY && key.starts_with("policy.") && key.ends_with(".csv")
    });
    main.into_iter()
        .chain(overlays)
        .map(|(key, text)| (key.as_str(), text.as_str()))
        .collect()
}

fn parse_scopes(value: Option<&str>) -> Result<Vec<String>, PolicyError> {
    let value = value.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Ok(DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect());
    }
    serde_yaml::from_str(value).map_err(|err| PolicyError::Setting {
        key: SCOPES_KEY.to_string(),
        reason: format!("expected a YAML list of claim names such as [groups, email]: {err}"),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Decision, MatchMode, Origin, Subject};
    use super::*;

    fn data(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn overlays_follow_policy_csv_in_key_order() {
        let data = data(&[
            (
                "policy.z-last.csv",
                "p, alice, applications, get, */*, allow",
            ),
            ("policy.csv", "p, alice, applications, get, */*, allow"),
            (
                "policy.a-first.csv",
                "p, alice, applications, get, */*, allow",
            ),
            ("policy.default.txt", "not a policy"),
            ("policy.default", "role:readonly"),
            ("policy.matchMode", "glob"),
        ]);
        let keys: Vec<&str> = policy_texts(&data).iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            ["policy.csv", "policy.a-first.csv", "policy.z-last.csv"]
        );
        let policy = Policy::from_config_map_data(&data).unwrap();
        let decision = policy.enforce(&Subject::new("alice"), "applications", "get", "a/b");
        let Decision::Allowed(matched) = decision else {
            panic!("{decision}")
        };
        assert_eq!(
            matched.rule.origin,
            Origin::Policy {
                input: "policy.csv".into(),
                line: 1
            }
        );
        assert_eq!(policy.default_role(), Some("role:readonly"));
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let data = data(&[
            ("policy.csv", "p, alice, applications, get, */*, allow"),
            ("policy.team.csv", "\n\ng, bob"),
        ]);
        assert_eq!(
            Policy::from_config_map_data(&data).unwrap_err().to_string(),
            "policy.team.csv line 3: `g` lines have 3 fields (g, user-or-group, role), this one has 2"
        );
    }

    #[test]
    fn settings_and_their_defaults() {
        let policy = Policy::from_config_map_data(&BTreeMap::new()).unwrap();
        assert_eq!(policy.default_role(), None);
        assert_eq!(policy.match_mode(), MatchMode::Glob);
        assert_eq!(policy.scopes(), ["groups"]);
        // The built-in policy is there without any policy key.
        let admin = Subject::new("admin");
        assert!(
            policy
                .enforce(&admin, "projects", "delete", "x")
                .is_allowed()
        );

        let policy = Policy::from_config_map_data(&data(&[
            ("policy.matchMode", "regex"),
            ("scopes", "[groups, email]"),
            (
                "policy.csv",
                "p, alice@example.com, applications, get, ^team-a/.*$, allow",
            ),
        ]))
        .unwrap();
        assert_eq!(policy.match_mode(), MatchMode::Regex);
        assert_eq!(policy.scopes(), ["groups", "email"]);
        let alice = Subject::new("alice@example.com");
        assert!(
            policy
                .enforce(&alice, "applications", "get", "team-a/x")
                .is_allowed()
        );
        assert!(
            !policy
                .enforce(&alice, "applications", "get", "xteam-a/x")
                .is_allowed()
        );
    }

    #[test]
    fn bad_settings_are_errors() {
        let err = Policy::from_config_map_data(&data(&[("policy.matchMode", "regexp")]));
        assert_eq!(
            err.unwrap_err().to_string(),
            "policy.matchMode: unknown match mode \"regexp\" (use glob or regex)"
        );
        let err = Policy::from_config_map_data(&data(&[("scopes", "{groups: 1}")]));
        assert!(
            err.unwrap_err()
                .to_string()
                .starts_with("scopes: expected a YAML list of claim names"),
        );
    }
}
