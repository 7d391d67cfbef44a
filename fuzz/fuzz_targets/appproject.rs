//! AppProjects and the checks made against them: `ferry_types::AppProject` from YAML,
//! `AppProject::policy()` (every pattern compiled), the source, destination, kind, namespace
//! and cluster-scope checks, service-account impersonation, orphaned-resource ignores, and sync
//! windows (cron schedules, durations, time zones) evaluated at ordinary and extreme instants.
//!
//! Input: a YAML stream, the AppProject first and optionally an Application second (its
//! sources and destination are checked against the project, its name and destination select
//! sync windows).

#![no_main]

use ferry_types::application::ApplicationDestination;
use ferry_types::{AppProject, Application};
use jiff::Timestamp;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

const REPOS: [&str; 8] = [
    "https://github.com/argoproj/argocd-example-apps.git",
    "git@github.com:Org/Repo.git",
    "ssh://git@gitlab.com:2222/group/sub/project",
    "file:///srv/git/team-a/../team-b/apps.git",
    "file://localhost/srv/%2e%2e/x",
    "/srv/git/apps",
    "registry.example.com/charts",
    "",
];
const KINDS: [(&str, &str); 6] = [
    ("", "ConfigMap"),
    ("apps", "Deployment"),
    ("", "Namespace"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("argoproj.io", "Application"),
    ("*", "*"),
];

fn destinations(app: Option<&Application>) -> Vec<ApplicationDestination> {
    let mut out: Vec<ApplicationDestination> = [
        ("https://kubernetes.default.svc", "in-cluster", "default"),
        ("", "prod", "team-a"),
        ("https://10.0.0.1:6443", "", ""),
        ("", "", "kube-system"),
    ]
    .into_iter()
    .map(|(server, name, namespace)| ApplicationDestination {
        server: server.into(),
        name: name.into(),
        namespace: namespace.into(),
        ..Default::default()
    })
    .collect();
    out.extend(app.map(|app| app.spec.destination.clone()));
    out
}

fn instants(data: &[u8]) -> Vec<Timestamp> {
    let derived = (ferry_fuzz::hash(data) % 8_000_000_000) as i64;
    [
        0,
        1_767_225_600, // 2026-01-01T00:00:00Z
        1_774_747_800, // 2026-03-29T01:30:00Z, a European DST change
        1_793_514_600, // 2026-11-01T06:30:00Z, an American DST change
        derived,
        Timestamp::MIN.as_second(),
        Timestamp::MAX.as_second(),
    ]
    .into_iter()
    .filter_map(|s| Timestamp::from_second(s).ok())
    .collect()
}

fn exercise(project: &AppProject, app: Option<&Application>, data: &[u8]) {
    let _ = project.unknown_fields();
    for cluster_project in ["", "team-a", project.metadata.name.as_deref().unwrap_or("")] {
        let _ = project.permits_cluster(cluster_project);
        if let Some(app) = app {
            let _ = project.check_cluster_scope(app, cluster_project);
        }
    }
    for dest in destinations(app) {
        let _ = project.service_account_to_impersonate(&dest.server, &dest.namespace, "argocd");
    }
    if let Some(orphans) = &project.spec.orphaned_resources {
        let _ = orphans.is_warn();
        for (group, kind) in KINDS {
            let _ = orphans.ignores(group, kind, "default");
        }
    }

    if let Ok(policy) = project.policy() {
        let app_repos = app
            .into_iter()
            .flat_map(|a| a.sources())
            .map(|s| s.repo_url.as_str());
        for repo in REPOS.into_iter().chain(app_repos) {
            let _ = policy.is_source_permitted(repo);
            let _ = policy.source_refusal_hint(repo);
        }
        let dests = destinations(app);
        for dest in &dests {
            let _ = policy.is_destination_permitted(dest);
            for (group, kind) in KINDS {
                let _ = policy.is_group_kind_permitted(group, kind, true);
                let _ = policy.is_group_kind_permitted(group, kind, false);
                let _ = policy.is_resource_permitted(group, kind, "x", &dest.namespace, dest);
                let _ = policy.is_resource_permitted(group, kind, "x", "", dest);
            }
        }
        for namespace in ["", "argocd", "team-a", "kube-system"] {
            let _ = policy.is_app_namespace_permitted(namespace, "argocd");
        }
        if let Some(app) = app {
            let _ = policy.is_app_namespace_permitted(
                app.metadata.namespace.as_deref().unwrap_or_default(),
                "argocd",
            );
            for dest in &dests {
                let _ = policy.check_app(app, &dest.server, &dest.name);
            }
        }
    }

    for window in &project.spec.sync_windows {
        let _ = window.validate();
    }
    let instants = instants(data);
    let evaluate = |windows: ferry_types::project::SyncWindows<'_>| {
        let _ = (windows.is_empty(), windows.all().count());
        for now in &instants {
            let _ = windows.active(*now);
            let _ = windows.can_sync(*now, false);
            let _ = windows.can_sync(*now, true);
        }
    };
    if let Ok(windows) = project.all_sync_windows() {
        evaluate(windows);
    }
    if let Some(app) = app
        && let Ok(windows) = project.sync_windows(app)
    {
        evaluate(windows);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = ferry_fuzz::text(data) else {
        return;
    };
    let mut documents = serde_yaml::Deserializer::from_str(text);
    let Some(Ok(project)) = documents.next().map(AppProject::deserialize) else {
        return;
    };
    let app = documents
        .next()
        .and_then(|document| Application::deserialize(document).ok());
    exercise(&project, app.as_ref(), data);
});
