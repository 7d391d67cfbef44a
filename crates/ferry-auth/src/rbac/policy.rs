//! The compiled policy and its enforcement.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use ferry_types::AppProject;

use super::builtin::BUILTIN_POLICY;
use super::config_map::DEFAULT_SCOPES;
use super::line::{Effect, PolicyLine, parse_line};
use super::pattern::{MatchMode, Pattern};
use super::project::{RejectedProjectPolicy, compile_projects};
use super::resources::request_project;
use super::rule::{Decision, Matched, Origin, Rule};

/// Why a policy cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{input} line {line}: {reason}")]
    Line {
        /// The `argocd-rbac-cm` key, or "policy CSV" for [`Policy::parse`]'s text.
        input: String,
        line: usize,
        reason: String,
    },
    #[error("{key}: {reason}")]
    Setting { key: String, reason: String },
}

/// Who asks: a user (or a project token's `proj:<project>:<role>`, or a role name when checking
/// a role itself) and the groups its identity provider gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub name: String,
    pub groups: Vec<String>,
}

impl Subject {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            groups: Vec::new(),
        }
    }

    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups.extend(groups.into_iter().map(Into::into));
        self
    }
}

/// A compiled RBAC policy: the built-in policy, the user's policy and, once given, the
/// AppProjects' roles. Immutable and cheap to clone, so a new one can replace the old one
/// atomically when the ConfigMap or a project changes.
#[derive(Debug, Clone)]
pub struct Policy {
    inner: Arc<Compiled>,
}

#[derive(Debug)]
struct Compiled {
    /// Built-in and user rules, shared by every [`Policy::with_projects`] of this policy.
    global: Arc<RuleSet>,
    /// Each project's role rules and group bindings, by project name.
    projects: HashMap<String, RuleSet>,
    rejected: Vec<RejectedProjectPolicy>,
    default_role: Option<String>,
    match_mode: MatchMode,
    scopes: Vec<String>,
}

impl Policy {
    /// Compiles a policy CSV (`p` and `g` lines) on top of the built-in policy. `default_role` is
    /// a role every subject has (`policy.default`).
    pub fn parse(
        csv: &str,
        default_role: Option<&str>,
        match_mode: MatchMode,
    ) -> Result<Self, PolicyError> {
        let scopes = DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect();
        Self::compile(&[("policy CSV", csv)], default_role, match_mode, scopes)
    }

    /// Compiles the named CSV texts, in order, on top of the built-in policy.
    pub(crate) fn compile(
        inputs: &[(&str, &str)],
        default_role: Option<&str>,
        match_mode: MatchMode,
        scopes: Vec<String>,
    ) -> Result<Self, PolicyError> {
        let mut global = RuleSet::default();
        // The built-in rules are globs whatever the match mode: Argo CD's are written as globs.
        global.load(BUILTIN_POLICY, MatchMode::Glob, "built-in policy", |line| {
            Origin::BuiltIn { line }
        })?;
        for (name, text) in inputs {
            let input: Arc<str> = Arc::from(*name);
            global.load(text, match_mode, name, |line| Origin::Policy {
                input: input.clone(),
                line,
            })?;
        }
        Ok(Self {
            inner: Arc::new(Compiled {
                global: Arc::new(global),
                projects: HashMap::new(),
                rejected: Vec::new(),
                default_role: default_role
                    .map(str::trim)
                    .filter(|role| !role.is_empty())
                    .map(str::to_string),
                match_mode,
                scopes,
            }),
        })
    }

    /// This policy with the roles of these AppProjects (replacing those of any projects given
    /// before). Rules a project role may not have are left out and listed by
    /// [`Policy::rejected_project_policies`].
    pub fn with_projects(&self, projects: &[AppProject]) -> Self {
        let (compiled, rejected) = compile_projects(projects, self.inner.match_mode);
        Self {
            inner: Arc::new(Compiled {
                global: self.inner.global.clone(),
                projects: compiled,
                rejected,
                default_role: self.inner.default_role.clone(),
                match_mode: self.inner.match_mode,
                scopes: self.inner.scopes.clone(),
            }),
        }
    }

    /// Whether `subject` may do `action` on `object` of `resource`. The subject's own rules, its
    /// groups', the default role's and those of every role they inherit count; for objects of a
    /// project, so do that project's roles. One matching deny decides; else one matching allow
    /// does; else the request is not allowed.
    pub fn enforce(
        &self,
        subject: &Subject,
        resource: &str,
        action: &str,
        object: &str,
    ) -> Decision {
        let inner = &*self.inner;
        let project = request_project(resource, object).and_then(|name| inner.projects.get(name));
        let sets: Vec<&RuleSet> = std::iter::once(&*inner.global).chain(project).collect();

        // Breadth first from the identities through the roles they inherit, remembering how
        // each was reached; `parent` doubles as the visited set, so role cycles end.
        let mut parent: HashMap<&str, Option<&str>> = HashMap::new();
        let mut queue = VecDeque::new();
        let identities = std::iter::once(subject.name.as_str())
            .chain(subject.groups.iter().map(String::as_str))
            .chain(inner.default_role.as_deref());
        for identity in identities.filter(|identity| !identity.is_empty()) {
            if parent.insert(identity, None).is_none() {
                queue.push_back(identity);
            }
        }
        let mut allowed = None;
        while let Some(node) = queue.pop_front() {
            for set in &sets {
                for rule in set.rules_of(node) {
                    if !rule.matches(resource, action, object) {
                        continue;
                    }
                    match rule.rule.effect {
                        Effect::Deny => return Decision::Denied(rule.matched(node, &parent)),
                        Effect::Allow if allowed.is_none() => {
                            allowed = Some(rule.matched(node, &parent));
                        }
                        Effect::Allow => {}
                    }
                }
                for role in set.roles_of(node) {
                    if !parent.contains_key(role) {
                        parent.insert(role, Some(node));
                        queue.push_back(role);
                    }
                }
            }
        }
        allowed.map_or(Decision::NotAllowed, Decision::Allowed)
    }

    /// The role every subject has (`policy.default`), if any.
    pub fn default_role(&self) -> Option<&str> {
        self.inner.default_role.as_deref()
    }

    pub fn match_mode(&self) -> MatchMode {
        self.inner.match_mode
    }

    /// The identity token claims whose values are the user's groups (`scopes`).
    pub fn scopes(&self) -> &[String] {
        &self.inner.scopes
    }

    /// Project role entries left out by [`Policy::with_projects`], for the operator to fix.
    pub fn rejected_project_policies(&self) -> &[RejectedProjectPolicy] {
        &self.inner.rejected
    }
}

/// Rules by subject and role assignments by member.
#[derive(Debug, Default)]
pub(crate) struct RuleSet {
    rules: HashMap<String, Vec<CompiledRule>>,
    roles: HashMap<String, Vec<String>>,
}

impl RuleSet {
    pub(crate) fn add_rule(&mut self, rule: CompiledRule) {
        self.rules
            .entry(rule.rule.subject.clone())
            .or_default()
            .push(rule);
    }

    pub(crate) fn add_role(&mut self, member: String, role: String) {
        let roles = self.roles.entry(member).or_default();
        if !roles.contains(&role) {
            roles.push(role);
        }
    }

    /// Adds the rules and role assignments of a CSV text; `input` names it in errors and
    /// `origin` places a line number.
    fn load(
        &mut self,
        text: &str,
        mode: MatchMode,
        input: &str,
        origin: impl Fn(usize) -> Origin,
    ) -> Result<(), PolicyError> {
        for (index, line) in text.lines().enumerate() {
            let fail = |reason: String| PolicyError::Line {
                input: input.to_string(),
                line: index + 1,
                reason,
            };
            match parse_line(line).map_err(fail)? {
                None => {}
                Some(PolicyLine::Grouping { member, role }) => self.add_role(member, role),
                Some(PolicyLine::Permission {
                    subject,
                    resource,
                    action,
                    object,
                    effect,
                    explicit_effect: _,
                }) => {
                    let rule = Rule {
                        subject,
                        resource,
                        action,
                        object,
                        effect,
                        origin: origin(index + 1),
                    };
                    self.add_rule(CompiledRule::compile(rule, mode).map_err(fail)?);
                }
            }
        }
        Ok(())
    }

    fn rules_of(&self, subject: &str) -> &[CompiledRule] {
        self.rules.get(subject).map_or(&[], Vec::as_slice)
    }

    fn roles_of(&self, member: &str) -> impl Iterator<Item = &str> {
        self.roles
            .get(member)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

/// A rule with its patterns compiled.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    rule: Arc<Rule>,
    resource: Pattern,
    action: Pattern,
    object: Pattern,
}

impl CompiledRule {
    pub(crate) fn compile(rule: Rule, mode: MatchMode) -> Result<Self, String> {
        Ok(Self {
            resource: Pattern::compile(&rule.resource, mode)?,
            action: Pattern::compile(&rule.action, mode)?,
            object: Pattern::compile(&rule.object, mode)?,
            rule: Arc::new(rule),
        })
    }

    /// A rule whose object is matched literally, whatever the match mode.
    pub(crate) fn exact(rule: Rule) -> Self {
        Self {
            resource: Pattern::Exact(rule.resource.clone()),
            action: Pattern::Exact(rule.action.clone()),
            object: Pattern::Exact(rule.object.clone()),
            rule: Arc::new(rule),
        }
    }

    fn matches(&self, resource: &str, action: &str, object: &str) -> bool {
        self.resource.matches(resource)
            && self.action.matches(action)
            && self.object.matches(object)
    }

    /// This rule, reached from an identity through `parent` links ending at `subject`.
    fn matched(&self, subject: &str, parent: &HashMap<&str, Option<&str>>) -> Matched {
        let mut via = vec![subject.to_string()];
        let mut node = subject;
        while let Some(Some(up)) = parent.get(node) {
            via.push(up.to_string());
            node = up;
        }
        via.reverse();
        Matched {
            rule: self.rule.clone(),
            via,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(csv: &str) -> Policy {
        Policy::parse(csv, None, MatchMode::Glob).unwrap()
    }

    fn can(policy: &Policy, subject: &Subject, resource: &str, action: &str, object: &str) -> bool {
        policy
            .enforce(subject, resource, action, object)
            .is_allowed()
    }

    fn user(name: &str) -> Subject {
        Subject::new(name)
    }

    #[test]
    fn admin_user_is_admin_through_the_builtin_policy_only() {
        let policy = policy("");
        let admin = user("admin");
        assert!(can(
            &policy,
            &admin,
            "applications",
            "sync",
            "team-a/guestbook"
        ));
        assert!(can(
            &policy,
            &admin,
            "applications",
            "get",
            "team-a/ns/guestbook"
        ));
        assert!(can(
            &policy,
            &admin,
            "clusters",
            "delete",
            "https://prod:6443"
        ));
        assert!(can(&policy, &admin, "exec", "create", "team-a/guestbook"));
        assert!(can(
            &policy,
            &admin,
            "applications",
            "action/apps/Deployment/restart",
            "team-a/guestbook"
        ));
        // Extensions are granted explicitly, even to admins, as in Argo CD.
        assert!(!can(&policy, &admin, "extensions", "invoke", "metrics"));
        assert!(!can(
            &policy,
            &user("alice"),
            "applications",
            "get",
            "team-a/guestbook"
        ));
        let decision = policy.enforce(&admin, "applications", "get", "team-a/guestbook");
        assert_eq!(
            decision.to_string(),
            "allowed by p, role:readonly, applications, get, */*, allow (built-in policy line 2) \
             via admin -> role:admin -> role:readonly"
        );
    }

    #[test]
    fn readonly_reads_everything_but_changes_nothing() {
        let policy = policy("g, alice, role:readonly");
        let alice = user("alice");
        for (resource, object) in [
            ("applications", "team-a/guestbook"),
            ("applicationsets", "team-a/set"),
            ("clusters", "https://prod:6443"),
            ("repositories", "https://git.example.com/apps"),
            ("write-repositories", "https://git.example.com/apps"),
            ("projects", "team-a"),
            ("accounts", "alice"),
            ("certificates", "git.example.com"),
            ("gpgkeys", "4AEE18F83AFDEB23"),
            ("logs", "team-a/guestbook"),
        ] {
            assert!(can(&policy, &alice, resource, "get", object), "{resource}");
            assert!(
                !can(&policy, &alice, resource, "delete", object),
                "{resource}"
            );
        }
        assert!(!can(&policy, &alice, "exec", "create", "team-a/guestbook"));
        assert!(!can(
            &policy,
            &alice,
            "applications",
            "sync",
            "team-a/guestbook"
        ));
    }

    #[test]
    fn roles_inherit_transitively_and_cycles_end() {
        let policy = policy(
            "p, role:base, applications, sync, team-a/*, allow\n\
             g, role:middle, role:base\n\
             g, role:top, role:middle\n\
             g, role:base, role:top\n\
             g, alice, role:top",
        );
        let decision = policy.enforce(&user("alice"), "applications", "sync", "team-a/web");
        assert!(decision.is_allowed());
        assert_eq!(
            decision.matched().unwrap().via,
            ["alice", "role:top", "role:middle", "role:base"]
        );
        assert!(!can(
            &policy,
            &user("bob"),
            "applications",
            "sync",
            "team-a/web"
        ));
    }

    #[test]
    fn deny_wins_over_allow_from_any_identity() {
        let policy = Policy::parse(
            "p, role:dev, applications, *, team-a/*, allow\n\
             p, contractors, applications, delete, *, deny\n\
             g, dev-team, role:dev",
            Some("role:readonly"),
            MatchMode::Glob,
        )
        .unwrap();
        let alice = user("alice").with_groups(["dev-team", "contractors"]);
        assert!(can(&policy, &alice, "applications", "sync", "team-a/web"));
        let decision = policy.enforce(&alice, "applications", "delete", "team-a/web");
        assert!(matches!(decision, Decision::Denied(_)), "{decision}");
        assert_eq!(
            decision.to_string(),
            "denied by p, contractors, applications, delete, *, deny (policy CSV line 2) via contractors"
        );
        // A deny on the user also beats what the default role allows.
        let policy = Policy::parse(
            "p, alice, applications, get, secret/*, deny",
            Some("role:readonly"),
            MatchMode::Glob,
        )
        .unwrap();
        assert!(!can(
            &policy,
            &user("alice"),
            "applications",
            "get",
            "secret/app"
        ));
        assert!(can(
            &policy,
            &user("alice"),
            "applications",
            "get",
            "public/app"
        ));
        assert!(can(
            &policy,
            &user("bob"),
            "applications",
            "get",
            "secret/app"
        ));
    }

    #[test]
    fn the_default_role_applies_to_everyone() {
        let policy = Policy::parse("", Some(" role:readonly "), MatchMode::Glob).unwrap();
        assert_eq!(policy.default_role(), Some("role:readonly"));
        let decision = policy.enforce(&user("anyone"), "projects", "get", "team-a");
        assert_eq!(decision.matched().unwrap().via, ["role:readonly"]);
        assert!(can(&policy, &Subject::default(), "clusters", "get", "x"));
        assert!(!can(
            &policy,
            &user("anyone"),
            "projects",
            "delete",
            "team-a"
        ));
        let policy = Policy::parse("", Some(""), MatchMode::Glob).unwrap();
        assert_eq!(policy.default_role(), None);
    }

    #[test]
    fn groups_are_subjects_too() {
        let policy = policy(
            "p, my-org:ops, clusters, update, *, allow\n\
             g, my-org:admins, role:admin",
        );
        let carol = user("carol").with_groups(["my-org:ops"]);
        assert!(can(&policy, &carol, "clusters", "update", "https://prod"));
        assert!(!can(&policy, &carol, "clusters", "delete", "https://prod"));
        let dave = user("dave").with_groups(["my-org:admins"]);
        assert!(can(&policy, &dave, "projects", "delete", "team-a"));
    }

    #[test]
    fn a_missing_effect_allows() {
        let policy = policy("p, alice, applications, get, team-a/*");
        assert!(can(
            &policy,
            &user("alice"),
            "applications",
            "get",
            "team-a/x"
        ));
    }

    #[test]
    fn regex_mode_applies_to_user_rules_and_keeps_builtin_roles_working() {
        let policy = Policy::parse(
            "p, role:dev, applications, (get|sync), ^team-(a|b)/.*$, allow\n\
             g, alice, role:dev\n\
             g, root, role:admin",
            None,
            MatchMode::Regex,
        )
        .unwrap();
        let alice = user("alice");
        assert!(can(&policy, &alice, "applications", "sync", "team-b/web"));
        assert!(!can(&policy, &alice, "applications", "sync", "team-c/web"));
        assert!(!can(
            &policy,
            &alice,
            "applications",
            "delete",
            "team-a/web"
        ));
        assert!(can(
            &policy,
            &user("root"),
            "applications",
            "delete",
            "team-c/web"
        ));
        assert!(can(&policy, &user("admin"), "clusters", "get", "https://x"));
    }

    #[test]
    fn errors_name_the_line() {
        let err = Policy::parse(
            "# comment\np, alice, applications, get, */*, allow\np, bob, applications",
            None,
            MatchMode::Glob,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "policy CSV line 3: `p` lines have 5 or 6 fields (p, subject, resource, action, \
             object[, effect]), this one has 3"
        );
        let err = Policy::parse(
            "p, bob, applications, get, *[, allow",
            None,
            MatchMode::Glob,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("policy CSV line 1: invalid glob \"*[\""),
            "{err}"
        );
        let err = Policy::parse(
            "p, bob, applications, get, (, allow",
            None,
            MatchMode::Regex,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("policy CSV line 1: invalid regular expression \"(\""),
            "{err}"
        );
    }

    #[test]
    fn the_builtin_policy_is_valid_and_complete() {
        let mut set = RuleSet::default();
        set.load(BUILTIN_POLICY, MatchMode::Glob, "built-in", |line| {
            Origin::BuiltIn { line }
        })
        .unwrap();
        // Argo CD's 10 and 33, and ferry's 5 and 13 for the Argo Workflows resources.
        assert_eq!(set.rules_of("role:readonly").len(), 15);
        assert_eq!(set.rules_of("role:admin").len(), 46);
        assert_eq!(set.roles_of("admin").collect::<Vec<_>>(), ["role:admin"]);
        assert_eq!(
            set.roles_of("role:admin").collect::<Vec<_>>(),
            ["role:readonly"]
        );
    }

    #[test]
    fn policies_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Policy>();
    }

    #[test]
    fn clones_share_the_compiled_rules() {
        let policy = policy("p, alice, applications, get, */*, allow");
        let copy = policy.clone();
        assert!(Arc::ptr_eq(&policy.inner, &copy.inner));
        let with_projects = policy.with_projects(&[]);
        assert!(Arc::ptr_eq(
            &policy.inner.global,
            &with_projects.inner.global
        ));
    }
}
