//! AppProject roles: `spec.roles[]` give the subject `proj:<project>:<role>` the role's policies
//! and bind the role to SSO groups. A project's roles only take part in requests about that
//! project's objects, and each policy must keep to the project (the checks Argo CD's API runs
//! when a project is saved; ferry runs them on every project, however it was written).

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use ferry_types::AppProject;
use ferry_types::project::ProjectRole;
use regex::Regex;

use super::line::{Effect, PolicyLine, parse_line};
use super::pattern::MatchMode;
use super::policy::{CompiledRule, RuleSet};
use super::resources::{
    APPLICATIONS, APPLICATIONSETS, CLUSTERS, EXEC, GET, LOGS, PROJECTS, REPOSITORIES,
};
use super::rule::{Origin, Rule};

/// The resources a project role's policies may name.
const PROJECT_ROLE_RESOURCES: &[&str] = &[
    APPLICATIONS,
    APPLICATIONSETS,
    REPOSITORIES,
    CLUSTERS,
    EXEC,
    LOGS,
];

/// Argo CD's rule for role names; it keeps `proj:<project>:<role>` unambiguous.
static ROLE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new("^[a-zA-Z0-9]([-_a-zA-Z0-9]*[a-zA-Z0-9])?$").expect("valid role name pattern")
});

/// A project role entry that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedProjectPolicy {
    pub project: String,
    pub role: String,
    /// The policy line, group or role name that was left out.
    pub entry: String,
    pub reason: String,
}

impl fmt::Display for RejectedProjectPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AppProject {} role {:?}: ignoring {:?}: {}",
            self.project, self.role, self.entry, self.reason
        )
    }
}

/// Each project's role rules, by project name, and the entries that were left out.
pub(crate) fn compile_projects(
    projects: &[AppProject],
    mode: MatchMode,
) -> (HashMap<String, RuleSet>, Vec<RejectedProjectPolicy>) {
    let mut compiled = HashMap::new();
    let mut rejected = Vec::new();
    for project in projects {
        let Some(name) = project.metadata.name.as_deref().filter(|n| !n.is_empty()) else {
            continue;
        };
        let mut set = RuleSet::default();
        for role in &project.spec.roles {
            add_role(&mut set, name, role, mode, &mut rejected);
        }
        compiled.insert(name.to_string(), set);
    }
    (compiled, rejected)
}

fn add_role(
    set: &mut RuleSet,
    project: &str,
    role: &ProjectRole,
    mode: MatchMode,
    rejected: &mut Vec<RejectedProjectPolicy>,
) {
    let mut reject = |entry: &str, reason: String| {
        rejected.push(RejectedProjectPolicy {
            project: project.to_string(),
            role: role.name.clone(),
            entry: entry.to_string(),
            reason,
        });
    };
    if !ROLE_NAME.is_match(&role.name) {
        reject(
            &role.name,
            "role names are letters, digits, '-' and '_', starting and ending with a letter \
             or digit; the whole role is ignored"
                .to_string(),
        );
        return;
    }
    let subject = format!("proj:{project}:{}", role.name);
    // Argo CD lets every project role read its own project.
    set.add_rule(CompiledRule::exact(Rule {
        subject: subject.clone(),
        resource: PROJECTS.to_string(),
        action: GET.to_string(),
        object: project.to_string(),
        effect: Effect::Allow,
        origin: Origin::ProjectRole {
            project: project.to_string(),
            role: role.name.clone(),
            index: None,
        },
    }));
    for (index, line) in role.policies.iter().enumerate() {
        let origin = Origin::ProjectRole {
            project: project.to_string(),
            role: role.name.clone(),
            index: Some(index),
        };
        match project_rule(project, &subject, line, origin, mode) {
            Ok(rule) => set.add_rule(rule),
            Err(reason) => reject(line, reason),
        }
    }
    for group in &role.groups {
        match group_name(group) {
            Some(group) => set.add_role(group.to_string(), subject.clone()),
            None => reject(group, "empty group name".to_string()),
        }
    }
}

/// A role policy line, if it is a complete `p` rule for this role that stays in the project.
fn project_rule(
    project: &str,
    subject: &str,
    line: &str,
    origin: Origin,
    mode: MatchMode,
) -> Result<CompiledRule, String> {
    let Some(PolicyLine::Permission {
        subject: written_subject,
        resource,
        action,
        object,
        effect,
        explicit_effect,
    }) = parse_line(line)?
    else {
        return Err(
            "project role policies are `p, <subject>, <resource>, <action>, <object>, <effect>` \
             lines (groups go in spec.roles[].groups)"
                .to_string(),
        );
    };
    if !explicit_effect {
        return Err("the effect (allow or deny) must be given".to_string());
    }
    if written_subject != subject {
        return Err(format!(
            "the subject must be {subject}, not {written_subject}"
        ));
    }
    if !PROJECT_ROLE_RESOURCES.contains(&resource.as_str()) {
        return Err(format!(
            "project roles may only name {}, not {resource}",
            PROJECT_ROLE_RESOURCES.join(", ")
        ));
    }
    if !object_in_project(project, &object) {
        return Err(format!(
            "the object must be {project}/*, {project}/<name> or {project}/<namespace>/<name>: \
             a project role cannot reach other projects"
        ));
    }
    let rule = Rule {
        subject: written_subject,
        resource,
        action,
        object,
        effect,
        origin,
    };
    CompiledRule::compile(rule, mode)
}

/// `<project>/<x>` or `<project>/<x>/<y>`, where the parts are names or wildcards and never
/// climb out (Argo CD's `^<project>/[*\w-.]+(/[*\w-.]+)?$`).
fn object_in_project(project: &str, object: &str) -> bool {
    let part_ok = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '*'))
    };
    let Some(rest) = object
        .strip_prefix(project)
        .and_then(|r| r.strip_prefix('/'))
    else {
        return false;
    };
    let mut parts = rest.split('/');
    let first = parts.next().is_some_and(part_ok);
    let second = parts.next().is_none_or(part_ok);
    first && second && parts.next().is_none()
}

/// A group as Argo CD would read it back from its CSV: trimmed, surrounding quotes removed.
fn group_name(group: &str) -> Option<&str> {
    let group = group.trim();
    let group = group
        .strip_prefix('"')
        .and_then(|g| g.strip_suffix('"'))
        .unwrap_or(group);
    Some(group).filter(|g| !g.is_empty())
}

#[cfg(test)]
mod tests {
    use super::super::{Decision, Policy, Subject};
    use super::*;

    fn project(yaml: &str) -> AppProject {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn projects() -> Vec<AppProject> {
        vec![
            project(
                r#"
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: team-a, namespace: argocd}
spec:
  roles:
    - name: deployer
      policies:
        - p, proj:team-a:deployer, applications, sync, team-a/*, allow
        - p, proj:team-a:deployer, applications, get, team-a/*, allow
        - p, proj:team-a:deployer, applications, sync, team-a/frozen, deny
        - p, proj:team-a:deployer, applications, sync, team-b/*, allow
        - p, proj:team-a:deployer, applications, sync, */*, allow
        - p, proj:team-a:deployer, clusters, get, *, allow
        - p, proj:team-b:deployer, applications, sync, team-b/*, allow
        - p, proj:team-a:deployer, projects, update, team-a/*, allow
        - p, proj:team-a:deployer, applications, delete, team-a/*
        - g, someone, role:admin
      groups: [my-org:team-a, '  ']
    - name: "bad:name"
      policies: ['p, proj:team-a:bad:name, applications, get, team-a/*, allow']
"#,
            ),
            project(
                r#"
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: team-b, namespace: argocd}
spec:
  roles:
    - name: viewer
      policies: ['p, proj:team-b:viewer, applications, get, team-b/*, allow']
      groups: ['"my-org:team-b"']
"#,
            ),
        ]
    }

    fn team_a_member() -> Subject {
        Subject::new("alice").with_groups(["my-org:team-a"])
    }

    #[test]
    fn project_roles_grant_through_groups_within_their_project() {
        let policy = Policy::parse("", None, MatchMode::Glob)
            .unwrap()
            .with_projects(&projects());
        let alice = team_a_member();
        let decision = policy.enforce(&alice, "applications", "sync", "team-a/guestbook");
        assert_eq!(
            decision.to_string(),
            "allowed by p, proj:team-a:deployer, applications, sync, team-a/*, allow \
             (AppProject team-a role deployer policies[0]) via my-org:team-a -> proj:team-a:deployer"
        );
        assert!(
            policy
                .enforce(&alice, "applications", "get", "team-a/ns/guestbook")
                .is_allowed()
        );
        // The role's deny wins within the project.
        assert!(matches!(
            policy.enforce(&alice, "applications", "sync", "team-a/frozen"),
            Decision::Denied(_)
        ));
        // Every project role may read its project, and nothing else.
        let decision = policy.enforce(&alice, "projects", "get", "team-a");
        assert!(decision.is_allowed(), "{decision}");
        assert!(
            !policy
                .enforce(&alice, "projects", "get", "team-b")
                .is_allowed()
        );
        // Quoted groups are unquoted, as Argo CD's CSV reading does.
        let bob = Subject::new("bob").with_groups(["my-org:team-b"]);
        assert!(
            policy
                .enforce(&bob, "applications", "get", "team-b/web")
                .is_allowed()
        );
    }

    #[test]
    fn project_roles_never_reach_other_projects() {
        let policy = Policy::parse("", None, MatchMode::Glob)
            .unwrap()
            .with_projects(&projects());
        let alice = team_a_member();
        for object in ["team-b/web", "team-c/web"] {
            let decision = policy.enforce(&alice, "applications", "sync", object);
            assert_eq!(decision, Decision::NotAllowed, "{object}");
        }
        assert!(
            !policy
                .enforce(&alice, "clusters", "get", "https://prod")
                .is_allowed()
        );
        assert!(
            !policy
                .enforce(&alice, "applications", "delete", "team-a/web")
                .is_allowed()
        );
        // The token subject of a role has the same reach.
        let token = Subject::new("proj:team-a:deployer");
        assert!(
            policy
                .enforce(&token, "applications", "sync", "team-a/web")
                .is_allowed()
        );
        assert!(
            !policy
                .enforce(&token, "applications", "sync", "team-b/web")
                .is_allowed()
        );
        // Without the projects, nothing of theirs applies.
        let bare = Policy::parse("", None, MatchMode::Glob).unwrap();
        assert!(
            !bare
                .enforce(&alice, "applications", "sync", "team-a/web")
                .is_allowed()
        );
    }

    #[test]
    fn rejected_entries_say_why() {
        let policy = Policy::parse("", None, MatchMode::Glob)
            .unwrap()
            .with_projects(&projects());
        let reasons: Vec<String> = policy
            .rejected_project_policies()
            .iter()
            .map(ToString::to_string)
            .collect();
        let outside = "the object must be team-a/*, team-a/<name> or team-a/<namespace>/<name>: \
                       a project role cannot reach other projects";
        assert_eq!(
            reasons,
            [
                format!(
                    "AppProject team-a role \"deployer\": ignoring \"p, proj:team-a:deployer, \
                     applications, sync, team-b/*, allow\": {outside}"
                ),
                format!(
                    "AppProject team-a role \"deployer\": ignoring \"p, proj:team-a:deployer, \
                     applications, sync, */*, allow\": {outside}"
                ),
                "AppProject team-a role \"deployer\": ignoring \"p, proj:team-a:deployer, \
                 clusters, get, *, allow\": the object must be team-a/*, team-a/<name> or \
                 team-a/<namespace>/<name>: a project role cannot reach other projects"
                    .to_string(),
                "AppProject team-a role \"deployer\": ignoring \"p, proj:team-b:deployer, \
                 applications, sync, team-b/*, allow\": the subject must be \
                 proj:team-a:deployer, not proj:team-b:deployer"
                    .to_string(),
                "AppProject team-a role \"deployer\": ignoring \"p, proj:team-a:deployer, \
                 projects, update, team-a/*, allow\": project roles may only name \
                 applications, applicationsets, repositories, clusters, exec, logs, not projects"
                    .to_string(),
                "AppProject team-a role \"deployer\": ignoring \"p, proj:team-a:deployer, \
                 applications, delete, team-a/*\": the effect (allow or deny) must be given"
                    .to_string(),
                "AppProject team-a role \"deployer\": ignoring \"g, someone, role:admin\": \
                 project role policies are `p, <subject>, <resource>, <action>, <object>, \
                 <effect>` lines (groups go in spec.roles[].groups)"
                    .to_string(),
                "AppProject team-a role \"deployer\": ignoring \"  \": empty group name"
                    .to_string(),
                "AppProject team-a role \"bad:name\": ignoring \"bad:name\": role names are \
                 letters, digits, '-' and '_', starting and ending with a letter or digit; the \
                 whole role is ignored"
                    .to_string(),
            ]
        );
        // The `g` line did not make anyone an admin, in the project or elsewhere.
        let someone = Subject::new("someone");
        assert!(
            !policy
                .enforce(&someone, "applications", "delete", "team-a/x")
                .is_allowed()
        );
    }

    #[test]
    fn global_denies_beat_project_role_allows() {
        let policy = Policy::parse(
            "p, my-org:team-a, applications, sync, team-a/guestbook, deny",
            None,
            MatchMode::Glob,
        )
        .unwrap()
        .with_projects(&projects());
        let alice = team_a_member();
        assert!(matches!(
            policy.enforce(&alice, "applications", "sync", "team-a/guestbook"),
            Decision::Denied(_)
        ));
        assert!(
            policy
                .enforce(&alice, "applications", "sync", "team-a/other")
                .is_allowed()
        );
    }

    #[test]
    fn with_projects_replaces_earlier_projects() {
        let base = Policy::parse("", None, MatchMode::Glob).unwrap();
        let with = base.with_projects(&projects());
        let without = with.with_projects(&[]);
        let alice = team_a_member();
        assert!(
            with.enforce(&alice, "applications", "sync", "team-a/x")
                .is_allowed()
        );
        assert!(
            !without
                .enforce(&alice, "applications", "sync", "team-a/x")
                .is_allowed()
        );
        assert!(without.rejected_project_policies().is_empty());
    }

    #[test]
    fn regex_mode_project_roles() {
        let project = project(
            r#"
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: team-a}
spec:
  roles:
    - name: ci
      policies: ['p, proj:team-a:ci, applications, sync, team-a/web-.*, allow']
"#,
        );
        let policy = Policy::parse("", None, MatchMode::Regex)
            .unwrap()
            .with_projects(&[project]);
        let ci = Subject::new("proj:team-a:ci");
        assert!(
            policy
                .enforce(&ci, "applications", "sync", "team-a/web-1")
                .is_allowed()
        );
        assert!(
            !policy
                .enforce(&ci, "applications", "sync", "team-a/db")
                .is_allowed()
        );
        // The unanchored pattern would match inside another project's object; the rule is not
        // even consulted there.
        let elsewhere = "other-team-a/web-1";
        assert!(
            !policy
                .enforce(&ci, "applications", "sync", elsewhere)
                .is_allowed()
        );
        assert!(
            policy
                .enforce(&ci, "projects", "get", "team-a")
                .is_allowed()
        );
    }

    #[test]
    fn objects_must_stay_in_the_project() {
        for (object, ok) in [
            ("team-a/*", true),
            ("team-a/guestbook", true),
            ("team-a/ns/guestbook", true),
            ("team-a/web-.*", true),
            ("team-a/*/*", true),
            ("team-a", false),
            ("team-a/", false),
            ("team-a/a/b/c", false),
            ("team-ab/x", false),
            ("*/x", false),
            ("team-a/{x,y}", false),
        ] {
            assert_eq!(object_in_project("team-a", object), ok, "{object}");
        }
    }
}
