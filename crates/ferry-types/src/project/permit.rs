//! What an AppProject permits: source repositories, destinations, resource kinds and the
//! namespaces its Applications may live in. The rules are Argo CD's (`IsSourcePermitted`,
//! `IsDestinationPermitted`, `IsGroupKindPermitted`, `IsAppNamespacePermitted`); the globs are
//! compiled once so a malformed pattern is an error naming the field, not a silent mismatch.

use regex::Regex;

use super::glob::{Glob, Negation, Separator};
use super::{AppProject, AppProjectSpec};
use crate::application::ApplicationDestination;

/// A pattern in an AppProject that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AppProject {project:?}: {field} has an invalid pattern {pattern:?}: {cause}")]
pub struct ProjectError {
    pub project: String,
    /// The field holding the pattern, e.g. `spec.sourceRepos[2]`.
    pub field: String,
    pub pattern: String,
    pub cause: String,
}

/// An AppProject's permissions, ready to check Applications and resources against.
#[derive(Debug, Clone)]
pub struct ProjectPolicy {
    source_repos: Vec<RepoPattern>,
    destinations: Vec<DestinationPattern>,
    cluster_whitelist: Vec<ResourcePattern>,
    cluster_blacklist: Vec<ResourcePattern>,
    /// `None`: every namespaced kind is allowed unless blacklisted.
    namespace_whitelist: Option<Vec<ResourcePattern>>,
    namespace_blacklist: Vec<ResourcePattern>,
    source_namespaces: Vec<NamespacePattern>,
}

/// A `sourceRepos` entry.
#[derive(Debug, Clone)]
struct RepoPattern {
    glob: Glob,
    /// The entry itself starts with `file://`: only such entries permit local repositories.
    local: bool,
}

/// Why a local repository is refused by a project that does not list it; part of the messages
/// of the controller, the CLI and the API server.
pub const LOCAL_REPO_RULE: &str = "file:// repositories must be listed explicitly in sourceRepos";

#[derive(Debug, Clone)]
struct DestinationPattern {
    server: Glob,
    name: Glob,
    namespace: Glob,
}

#[derive(Debug, Clone)]
struct ResourcePattern {
    group: Glob,
    kind: Glob,
    /// Only cluster-scoped entries can name resources.
    name: Option<Glob>,
}

#[derive(Debug, Clone)]
enum NamespacePattern {
    Regex(Regex),
    Glob(Glob),
}

impl AppProject {
    /// Compiles the project's patterns.
    pub fn policy(&self) -> Result<ProjectPolicy, ProjectError> {
        Compiler {
            project: self.metadata.name.as_deref().unwrap_or_default(),
        }
        .compile(&self.spec)
    }
}

struct Compiler<'a> {
    project: &'a str,
}

impl Compiler<'_> {
    fn glob(
        &self,
        field: impl FnOnce() -> String,
        pattern: &str,
        separator: Separator,
        negation: Negation,
    ) -> Result<Glob, ProjectError> {
        Glob::new(pattern, separator, negation).map_err(|err| ProjectError {
            project: self.project.to_string(),
            field: field(),
            pattern: pattern.to_string(),
            cause: err.kind().to_string(),
        })
    }

    fn compile(&self, spec: &AppProjectSpec) -> Result<ProjectPolicy, ProjectError> {
        let source_repos = spec
            .source_repos
            .iter()
            .enumerate()
            .map(|(i, repo)| {
                let normalized = match repo.strip_prefix('!') {
                    Some(rest) => format!("!{}", normalize_repo_url(rest)),
                    None => normalize_repo_url(repo),
                };
                let field = || format!("spec.sourceRepos[{i}]");
                Ok(RepoPattern {
                    glob: self.glob(field, &normalized, Separator::Slash, Negation::Allowed)?,
                    local: normalized.starts_with("file://"),
                })
            })
            .collect::<Result<_, _>>()?;
        let destinations = spec
            .destinations
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let glob = |part: &str, pattern: &str| {
                    let field = || format!("spec.destinations[{i}].{part}");
                    self.glob(field, pattern, Separator::None, Negation::Allowed)
                };
                Ok(DestinationPattern {
                    server: glob("server", &d.server)?,
                    name: glob("name", &d.name)?,
                    namespace: glob("namespace", &d.namespace)?,
                })
            })
            .collect::<Result<_, _>>()?;
        let cluster_list = |list: &str, items: &[super::ClusterResourceRestrictionItem]| {
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let name = (!item.name.is_empty())
                        .then(|| self.resource_glob(list, i, "name", &item.name))
                        .transpose()?;
                    Ok(ResourcePattern {
                        group: self.resource_glob(list, i, "group", &item.group)?,
                        kind: self.resource_glob(list, i, "kind", &item.kind)?,
                        name,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let namespace_list = |list: &str, items: &[super::GroupKind]| {
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    Ok(ResourcePattern {
                        group: self.resource_glob(list, i, "group", &item.group)?,
                        kind: self.resource_glob(list, i, "kind", &item.kind)?,
                        name: None,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let source_namespaces = spec
            .source_namespaces
            .iter()
            .enumerate()
            .map(|(i, pattern)| self.namespace_pattern(i, pattern))
            .collect::<Result<_, _>>()?;
        Ok(ProjectPolicy {
            source_repos,
            destinations,
            cluster_whitelist: cluster_list(
                "clusterResourceWhitelist",
                &spec.cluster_resource_whitelist,
            )?,
            cluster_blacklist: cluster_list(
                "clusterResourceBlacklist",
                &spec.cluster_resource_blacklist,
            )?,
            namespace_whitelist: spec
                .namespace_resource_whitelist
                .as_deref()
                .map(|items| namespace_list("namespaceResourceWhitelist", items))
                .transpose()?,
            namespace_blacklist: namespace_list(
                "namespaceResourceBlacklist",
                &spec.namespace_resource_blacklist,
            )?,
            source_namespaces,
        })
    }

    /// Group, kind and name patterns match like Go's `filepath.Match`: no `/` crossing, and
    /// a leading `!` is a literal.
    fn resource_glob(
        &self,
        list: &str,
        index: usize,
        part: &str,
        pattern: &str,
    ) -> Result<Glob, ProjectError> {
        let field = || format!("spec.{list}[{index}].{part}");
        self.glob(field, pattern, Separator::Slash, Negation::Literal)
    }

    /// `/regex/` or a glob, as Argo CD's `sourceNamespaces`.
    fn namespace_pattern(
        &self,
        index: usize,
        pattern: &str,
    ) -> Result<NamespacePattern, ProjectError> {
        let field = || format!("spec.sourceNamespaces[{index}]");
        match pattern.strip_prefix('/').and_then(|p| p.strip_suffix('/')) {
            Some(regex) => Regex::new(regex)
                .map(NamespacePattern::Regex)
                .map_err(|err| ProjectError {
                    project: self.project.to_string(),
                    field: field(),
                    pattern: pattern.to_string(),
                    cause: err.to_string(),
                }),
            None => self
                .glob(field, pattern, Separator::None, Negation::Literal)
                .map(NamespacePattern::Glob),
        }
    }
}

impl ProjectPolicy {
    /// What Argo CD checks of an Application against its project: every source repository and
    /// the destination (by the resolved cluster's server and name, as projects may match
    /// either) are permitted. The error is Argo CD's InvalidSpecError message.
    pub fn check_app(
        &self,
        app: &crate::Application,
        cluster_server: &str,
        cluster_name: &str,
    ) -> Result<(), String> {
        let project = app.project();
        for source in app.sources() {
            if !self.is_source_permitted(&source.repo_url) {
                let why = self
                    .source_refusal_hint(&source.repo_url)
                    .map(|hint| format!(": {hint}"))
                    .unwrap_or_default();
                return Err(format!(
                    "application repo {} is not permitted in project '{project}'{why}",
                    source.repo_url
                ));
            }
        }
        let dest = &app.spec.destination;
        let resolved = ApplicationDestination {
            server: cluster_server.to_string(),
            name: cluster_name.to_string(),
            namespace: dest.namespace.clone(),
            ..Default::default()
        };
        if !self.is_destination_permitted(&resolved) {
            return Err(format!(
                "application destination server '{}' and namespace '{}' do not match any of the \
                 allowed destinations in project '{project}'",
                if dest.server.is_empty() {
                    &dest.name
                } else {
                    &dest.server
                },
                dest.namespace
            ));
        }
        Ok(())
    }

    /// Whether an Application may use `repo_url`: some `sourceRepos` entry matches it and no
    /// `!` entry excludes it. URLs are compared normalized (lower case, no `.git`, scp-style
    /// SSH written as a path).
    ///
    /// A local repository (`file://`, or a bare path) reads this machine's disk, where other
    /// tenants' checkouts and Git mirrors live at predictable paths: only an entry that itself
    /// starts with `file://` permits it, never `*` or any other pattern. Its path is compared in
    /// canonical form (percent-escapes decoded, `.` and `..` resolved), so
    /// `file:///srv/team-a/../team-b` is team B's repository to the patterns as well.
    pub fn is_source_permitted(&self, repo_url: &str) -> bool {
        self.source_verdict(repo_url).0
    }

    /// Why `repo_url` is refused beyond "no entry permits it", for messages: the rule on local
    /// repositories when no `file://` entry matches it. `None` otherwise (also when an entry
    /// matched and a `!` entry denied it).
    pub fn source_refusal_hint(&self, repo_url: &str) -> Option<&'static str> {
        self.source_verdict(repo_url).1.then_some(LOCAL_REPO_RULE)
    }

    /// Whether `repo_url` is permitted, and whether it is a local repository that no `file://`
    /// entry lists.
    fn source_verdict(&self, repo_url: &str) -> (bool, bool) {
        let local = local_repo_url(repo_url);
        let url = match &local {
            Some(local) => local.clone(),
            None => normalize_repo_url(repo_url),
        };
        let mut any = false;
        let mut listed = false;
        let mut denied = false;
        for pattern in &self.source_repos {
            if pattern.glob.matches(&url) {
                if local.is_none() || (pattern.local && !pattern.glob.is_deny()) {
                    any = true;
                    listed = true;
                }
            } else if pattern.glob.is_deny() {
                denied = true;
            }
        }
        let unlisted_local = local.is_some() && !listed;
        (any && !denied, unlisted_local)
    }

    /// Whether an Application may deploy to `dest`. An entry matches when its server or its
    /// name matches (an empty destination field never does) and its namespace matches; any `!`
    /// part that fails to match vetoes the destination.
    ///
    /// `permitOnlyProjectScopedClusters` needs the cluster registry and is left to the caller.
    pub fn is_destination_permitted(&self, dest: &ApplicationDestination) -> bool {
        let mut any = false;
        for pattern in &self.destinations {
            let name = !dest.name.is_empty() && pattern.name.matches(&dest.name);
            let server = !dest.server.is_empty() && pattern.server.matches(&dest.server);
            let namespace = pattern.namespace.matches(&dest.namespace);
            if (server || name) && namespace {
                any = true;
            } else if (!name && pattern.name.is_deny())
                || (!server && pattern.server.is_deny())
                || (!namespace && pattern.namespace.is_deny())
            {
                return false;
            }
        }
        any
    }

    /// Whether resources of this group and kind may be managed. Cluster-scoped kinds must be
    /// whitelisted; namespaced kinds are allowed unless a whitelist leaves them out. Blacklists
    /// win. Entries that name resources are ignored here; see [`Self::is_resource_permitted`].
    pub fn is_group_kind_permitted(&self, group: &str, kind: &str, namespaced: bool) -> bool {
        self.is_kind_permitted(group, kind, None, namespaced)
    }

    /// Argo CD's `IsResourcePermitted`: the kind (and, for cluster-scoped resources, the name)
    /// is permitted, and a namespaced resource's namespace is a permitted destination on the
    /// Application's cluster.
    pub fn is_resource_permitted(
        &self,
        group: &str,
        kind: &str,
        name: &str,
        namespace: &str,
        app_destination: &ApplicationDestination,
    ) -> bool {
        let namespaced = !namespace.is_empty();
        if !self.is_kind_permitted(group, kind, Some(name), namespaced) {
            return false;
        }
        !namespaced
            || self.is_destination_permitted(&ApplicationDestination {
                server: app_destination.server.clone(),
                name: app_destination.name.clone(),
                namespace: namespace.to_string(),
                ..Default::default()
            })
    }

    fn is_kind_permitted(
        &self,
        group: &str,
        kind: &str,
        name: Option<&str>,
        namespaced: bool,
    ) -> bool {
        let in_list = |list: &[ResourcePattern]| {
            list.iter().any(|p| {
                p.group.matches(group)
                    && p.kind.matches(kind)
                    && match (&p.name, name) {
                        (None, _) => true,
                        (Some(pattern), Some(name)) => pattern.matches(name),
                        (Some(_), None) => false,
                    }
            })
        };
        if namespaced {
            let whitelisted = self.namespace_whitelist.as_deref().is_none_or(in_list);
            whitelisted && !in_list(&self.namespace_blacklist)
        } else {
            in_list(&self.cluster_whitelist) && !in_list(&self.cluster_blacklist)
        }
    }

    /// Whether an Application in `app_namespace` may use this project: always in the
    /// controller's own namespace, elsewhere only when `sourceNamespaces` matches.
    pub fn is_app_namespace_permitted(
        &self,
        app_namespace: &str,
        controller_namespace: &str,
    ) -> bool {
        app_namespace.is_empty()
            || app_namespace == controller_namespace
            || self.source_namespaces.iter().any(|p| match p {
                NamespacePattern::Regex(re) => re.is_match(app_namespace),
                NamespacePattern::Glob(glob) => glob.matches(app_namespace),
            })
    }
}

/// Argo CD's `NormalizeGitURL`: trimmed, lower case, `git@host:path` written as `git@host/path`,
/// `ssh://` and a trailing `.git` dropped, so one repository has one spelling.
pub fn normalize_repo_url(url: &str) -> String {
    let mut repo = url.trim().to_lowercase();
    if is_ssh_url(&repo) && !repo.starts_with("ssh://") {
        repo = repo.replacen(':', "/", 1);
    }
    let repo = repo.strip_prefix("ssh://").unwrap_or(&repo);
    repo.strip_suffix(".git").unwrap_or(repo).to_string()
}

/// The canonical `file://` form of a local repository URL, `None` for remote ones. Local are
/// `file:` URLs (any case, `file://localhost/` too) and bare paths (`/srv/x`, `./x`, `~/x`; the
/// Git layer refuses those, but they never count as remote here). The path is percent-decoded
/// (as libgit2 reads `file://` URLs) and its `.` and `..` segments resolved lexically, so a
/// pattern sees where the URL really leads. A relative or `~` path keeps its form, which no
/// `file://` pattern matches.
fn local_repo_url(url: &str) -> Option<String> {
    let lower = normalize_repo_url(url);
    let path = if let Some(rest) = lower.strip_prefix("file:") {
        let rest = rest.strip_prefix("//localhost").unwrap_or(rest);
        rest.trim_start_matches('/').to_string()
    } else if let Some(rest) = lower.strip_prefix('/') {
        rest.to_string()
    } else if lower.starts_with('.') || lower.starts_with('~') {
        return Some(lower);
    } else {
        return None;
    };
    let decoded = percent_decode(&path);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let joined = segments.join("/");
    let joined = joined.strip_suffix(".git").unwrap_or(&joined);
    Some(format!("file:///{joined}"))
}

/// `%XX` escapes decoded (invalid ones kept as they are).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `user@host...` with an optional `ssh://` (no `/` or `:` before the last `@`).
fn is_ssh_url(url: &str) -> bool {
    let rest = url.strip_prefix("ssh://").unwrap_or(url);
    rest.rsplit_once('@')
        .is_some_and(|(user, host)| !user.contains(['/', ':']) && !host.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(spec_yaml: &str) -> ProjectPolicy {
        let project: AppProject =
            serde_yaml::from_str(&format!("metadata: {{name: p}}\nspec: {spec_yaml}")).unwrap();
        project.policy().unwrap()
    }

    fn dest(server: &str, name: &str, namespace: &str) -> ApplicationDestination {
        ApplicationDestination {
            server: server.into(),
            name: name.into(),
            namespace: namespace.into(),
            ..Default::default()
        }
    }

    #[test]
    fn repo_urls_normalize_like_argo() {
        assert_eq!(
            normalize_repo_url(" https://GitHub.com/Org/Repo.git "),
            "https://github.com/org/repo"
        );
        assert_eq!(
            normalize_repo_url("git@github.com:org/repo.git"),
            "git@github.com/org/repo"
        );
        assert_eq!(
            normalize_repo_url("ssh://git@github.com/org/repo"),
            "git@github.com/org/repo"
        );
        assert_eq!(
            normalize_repo_url("https://user@github.com/org/repo"),
            "https://user@github.com/org/repo"
        );
    }

    #[test]
    fn source_repos_globs_and_denials() {
        let p = policy("{sourceRepos: ['https://github.com/org/*']}");
        assert!(p.is_source_permitted("https://github.com/org/app"));
        assert!(p.is_source_permitted("https://GITHUB.com/org/app.git"));
        assert!(!p.is_source_permitted("https://github.com/org/group/app"));
        assert!(!p.is_source_permitted("https://github.com/other/app"));

        let p = policy("{sourceRepos: ['*', '!https://github.com/evil/*']}");
        assert!(p.is_source_permitted("https://gitlab.com/x/y"));
        assert!(!p.is_source_permitted("https://github.com/evil/repo.git"));
        // As in Argo CD, a denial also allows everything it does not deny.
        let p = policy("{sourceRepos: ['!https://github.com/evil/*']}");
        assert!(p.is_source_permitted("https://github.com/good/repo"));
        assert!(!p.is_source_permitted("https://github.com/evil/repo"));

        let p = policy("{sourceRepos: ['git@github.com:org/*']}");
        assert!(p.is_source_permitted("ssh://git@github.com/org/repo.git"));
        assert!(!policy("{}").is_source_permitted("https://github.com/org/app"));
    }

    #[test]
    fn local_repositories_need_an_explicit_file_entry() {
        // The security review's case: everything but team B's repositories.
        let p = policy("{sourceRepos: ['*', '!https://git.example.com/team-b/*']}");
        assert!(p.is_source_permitted("https://git.example.com/team-a/app"));
        assert!(!p.is_source_permitted("https://git.example.com/team-b/app"));
        for local in [
            "file:///var/cache/ferry/git/mirrors/0123456789abcdef0123456789abcdef.git",
            "FILE:///srv/git/team-b/app.git",
            "file://localhost/srv/git/team-b/app",
            "/srv/git/team-b/app.git",
            "./team-b",
            "~/team-b",
        ] {
            assert!(!p.is_source_permitted(local), "{local} permitted by '*'");
            assert_eq!(
                p.source_refusal_hint(local),
                Some(LOCAL_REPO_RULE),
                "{local}"
            );
        }
        assert_eq!(
            p.source_refusal_hint("https://git.example.com/team-b/app"),
            None
        );
        // Neither does a pattern that is not `file://` itself, nor a denial of something else.
        for patterns in [
            "['**']",
            "['*/**']",
            "['!https://git.example.com/*']",
            "['/srv/git/**']",
        ] {
            let p = policy(&format!("{{sourceRepos: {patterns}}}"));
            assert!(
                !p.is_source_permitted("file:///srv/git/team-a/app"),
                "{patterns}"
            );
        }
        assert!(
            !AppProject::default_project("argocd")
                .policy()
                .unwrap()
                .is_source_permitted("file:///srv/git/team-a/app")
        );
    }

    #[test]
    fn listed_local_repositories_are_permitted_and_denials_still_apply() {
        let p = policy(
            "{sourceRepos: ['*', 'file:///srv/git/team-a/**', '!file:///srv/git/team-a/secret*']}",
        );
        assert!(p.is_source_permitted("file:///srv/git/team-a/app.git"));
        assert!(p.is_source_permitted("FILE:///srv/git/Team-A/app"));
        assert!(p.is_source_permitted("/srv/git/team-a/app"));
        assert!(p.is_source_permitted("file://localhost/srv/git/team-a/app"));
        assert!(p.is_source_permitted("https://anything/else"));
        assert!(!p.is_source_permitted("file:///srv/git/team-a/secrets.git"));
        // Denied by a listed entry's denial: no hint that listing would help.
        assert_eq!(
            p.source_refusal_hint("file:///srv/git/team-a/secrets"),
            None
        );
        assert!(!p.is_source_permitted("file:///srv/git/team-b/app"));
        assert!(!p.is_source_permitted("./team-a/app"));
        // `..`, `.`, doubled slashes and percent-escapes cannot climb out of a listed directory.
        for sneaky in [
            "file:///srv/git/team-a/../team-b/app",
            "file:///srv/git/team-a/%2e%2e/team-b/app",
            "file:///srv/git/team-a/%2E%2E/team-b/app",
            "file:///srv/git/team-a/./..//team-b/app",
            "/srv/git/team-a/../team-b/app",
        ] {
            assert!(!p.is_source_permitted(sneaky), "{sneaky} permitted");
        }
        assert!(p.is_source_permitted("file:///srv/git/team-b/../team-a/app"));
        assert!(p.is_source_permitted("file:///srv/git/team-a/sub%2fapp"));
        // A denial alone permits what it does not deny, but not local repositories.
        let p = policy("{sourceRepos: ['!file:///srv/git/team-b/**']}");
        assert!(p.is_source_permitted("https://github.com/org/app"));
        assert!(!p.is_source_permitted("file:///srv/git/team-a/app"));
        let p = policy("{sourceRepos: ['file:///srv/git/*/app', '!file:///srv/git/team-b/*']}");
        assert!(p.is_source_permitted("file:///srv/git/team-a/app"));
        assert!(!p.is_source_permitted("file:///srv/git/team-b/app"));
        // Argo CD's rule for remote repositories is unchanged: the denial permits them.
        assert!(p.is_source_permitted("https://github.com/org/app"));
    }

    #[test]
    fn refused_local_repositories_say_why() {
        let project: AppProject = serde_yaml::from_str(
            "metadata: {name: p}\nspec: {sourceRepos: ['*'], destinations: [{server: '*', namespace: '*'}]}",
        )
        .unwrap();
        let policy = project.policy().unwrap();
        let app = |repo: &str| -> crate::Application {
            serde_yaml::from_str(&format!(
                "metadata: {{name: a}}\nspec: {{project: p, source: {{repoURL: '{repo}'}}, \
                 destination: {{server: 'https://c', namespace: web}}}}"
            ))
            .unwrap()
        };
        let err = policy
            .check_app(&app("file:///x"), "https://c", "")
            .unwrap_err();
        assert_eq!(
            err,
            "application repo file:///x is not permitted in project 'p': file:// repositories \
             must be listed explicitly in sourceRepos"
        );
        policy
            .check_app(&app("https://github.com/org/app"), "https://c", "")
            .unwrap();
    }

    #[test]
    fn destinations_match_server_or_name_and_namespace() {
        let p = policy(
            "{destinations: [{server: 'https://kubernetes.default.svc', namespace: 'team-*'}, \
             {name: prod, namespace: web}]}",
        );
        assert!(p.is_destination_permitted(&dest("https://kubernetes.default.svc", "", "team-a")));
        assert!(!p.is_destination_permitted(&dest(
            "https://kubernetes.default.svc",
            "",
            "kube-system"
        )));
        assert!(p.is_destination_permitted(&dest("", "prod", "web")));
        assert!(!p.is_destination_permitted(&dest("", "prod", "db")));
        assert!(!p.is_destination_permitted(&dest("https://other", "", "team-a")));
    }

    #[test]
    fn destination_denials_win() {
        let p = policy(
            "{destinations: [{server: '*', namespace: '*'}, {server: '*', namespace: '!kube-*'}]}",
        );
        assert!(p.is_destination_permitted(&dest("https://c", "", "web")));
        assert!(!p.is_destination_permitted(&dest("https://c", "", "kube-system")));
        let p = policy(
            "{destinations: [{server: '*', namespace: '*'}, {server: '!https://prod', namespace: '*'}]}",
        );
        assert!(!p.is_destination_permitted(&dest("https://prod", "", "web")));
        assert!(p.is_destination_permitted(&dest("https://dev", "", "web")));
    }

    #[test]
    fn default_project_permits_everything_but_name_only_destinations() {
        let p = AppProject::default_project("argocd").policy().unwrap();
        assert!(p.is_source_permitted("https://anything/at/all.git"));
        assert!(p.is_destination_permitted(&dest("https://c", "", "")));
        assert!(p.is_group_kind_permitted("", "Namespace", false));
        assert!(p.is_group_kind_permitted("apps", "Deployment", true));
        // Argo CD resolves a cluster name to its server before this check; so must callers.
        assert!(!p.is_destination_permitted(&dest("", "in-cluster", "web")));
    }

    #[test]
    fn cluster_kinds_need_the_whitelist() {
        let p = policy("{}");
        assert!(!p.is_group_kind_permitted("", "Namespace", false));
        assert!(p.is_group_kind_permitted("apps", "Deployment", true));
        let p = policy(
            "{clusterResourceWhitelist: [{group: '*', kind: '*'}], \
             clusterResourceBlacklist: [{group: rbac.authorization.k8s.io, kind: 'Cluster*'}]}",
        );
        assert!(p.is_group_kind_permitted("", "Namespace", false));
        assert!(!p.is_group_kind_permitted("rbac.authorization.k8s.io", "ClusterRole", false));
    }

    #[test]
    fn namespaced_whitelist_and_blacklist() {
        let p = policy(
            "{namespaceResourceWhitelist: [{group: apps, kind: '*'}, {group: '', kind: ConfigMap}], \
             namespaceResourceBlacklist: [{group: apps, kind: DaemonSet}]}",
        );
        assert!(p.is_group_kind_permitted("apps", "Deployment", true));
        assert!(p.is_group_kind_permitted("", "ConfigMap", true));
        assert!(!p.is_group_kind_permitted("", "Secret", true));
        assert!(!p.is_group_kind_permitted("apps", "DaemonSet", true));
        // An explicitly empty whitelist allows no namespaced kind at all.
        assert!(
            !policy("{namespaceResourceWhitelist: []}").is_group_kind_permitted(
                "",
                "ConfigMap",
                true
            )
        );
        let p = policy("{namespaceResourceBlacklist: [{group: '', kind: ResourceQuota}]}");
        assert!(!p.is_group_kind_permitted("", "ResourceQuota", true));
        assert!(p.is_group_kind_permitted("", "Service", true));
    }

    #[test]
    fn cluster_entries_can_name_resources() {
        let p = policy(
            "{clusterResourceWhitelist: [{group: '', kind: Namespace, name: 'team-*'}], \
             destinations: [{server: '*', namespace: 'team-*'}]}",
        );
        let d = dest("https://c", "", "team-a");
        assert!(p.is_resource_permitted("", "Namespace", "team-a", "", &d));
        assert!(!p.is_resource_permitted("", "Namespace", "kube-system", "", &d));
        assert!(!p.is_group_kind_permitted("", "Namespace", false));
        assert!(p.is_resource_permitted("apps", "Deployment", "web", "team-b", &d));
        assert!(!p.is_resource_permitted("apps", "Deployment", "web", "default", &d));
    }

    #[test]
    fn app_namespaces() {
        let p = policy("{sourceNamespaces: ['team-*', '/^ci-[0-9]+$/']}");
        assert!(p.is_app_namespace_permitted("argocd", "argocd"));
        assert!(p.is_app_namespace_permitted("", "argocd"));
        assert!(p.is_app_namespace_permitted("team-a", "argocd"));
        assert!(p.is_app_namespace_permitted("ci-42", "argocd"));
        assert!(!p.is_app_namespace_permitted("ci-x", "argocd"));
        assert!(!p.is_app_namespace_permitted("prod", "argocd"));
    }

    #[test]
    fn bad_patterns_name_the_field() {
        let project: AppProject = serde_yaml::from_str(
            "metadata: {name: team}\nspec: {namespaceResourceBlacklist: [{group: apps, kind: '[Deploy'}]}",
        )
        .unwrap();
        let err = project.policy().unwrap_err();
        assert_eq!(err.field, "spec.namespaceResourceBlacklist[0].kind");
        assert!(
            err.to_string()
                .starts_with("AppProject \"team\": spec.namespaceResourceBlacklist[0].kind has an invalid pattern \"[Deploy\""),
            "{err}"
        );
        let project: AppProject =
            serde_yaml::from_str("metadata: {name: team}\nspec: {sourceNamespaces: ['/(/']}")
                .unwrap();
        assert_eq!(
            project.policy().unwrap_err().field,
            "spec.sourceNamespaces[0]"
        );
    }
}
