//! Argo CD RBAC: `argocd-rbac-cm` data through `Policy::from_config_map_data` (policy CSV,
//! `policy.default`, `policy.matchMode`, `scopes`), the same CSV compiled in the other match
//! mode (globs or regular expressions) with `Policy::parse`, AppProject roles added with `with_projects`, and
//! `enforce` for requests named by the input and by the policy's own fields.
//!
//! Input: sections separated by `\n---\n`:
//! 1. the policy CSV (`p, subject, resource, action, object[, effect]` and `g, member, role`);
//! 2. settings, one per line: `policy.default`, `policy.matchMode`, `scopes`;
//! 3. requests, one per line: `subject[;group;group...], resource, action, object`;
//! 4. an AppProject in YAML, whose `spec.roles` join the policy.

#![no_main]

use std::collections::BTreeMap;

use ferry_auth::rbac::{MatchMode, Policy, Subject, resources};
use ferry_types::AppProject;
use libfuzzer_sys::fuzz_target;

/// Requests every policy is asked about.
const REQUESTS: [(&str, &str, &str, &str); 6] = [
    ("admin", "applications", "get", "default/guestbook"),
    ("alice", "applications", "sync", "team-a/guestbook"),
    (
        "proj:team-a:ci",
        "applications",
        "sync",
        "team-a/team-a/app",
    ),
    (
        "role:readonly",
        "clusters",
        "get",
        "https://kubernetes.default.svc",
    ),
    (
        "bob",
        "applications",
        "action/apps/Deployment/restart",
        "team-a/web",
    ),
    ("", "", "", ""),
];

struct Request {
    subject: Subject,
    resource: String,
    action: String,
    object: String,
}

fn request(line: &str) -> Option<Request> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [who, resource, action, object, ..] = fields.as_slice() else {
        return None;
    };
    let mut names = who.split(';');
    let subject = Subject::new(names.next().unwrap_or_default()).with_groups(names);
    Some(Request {
        subject,
        resource: resource.to_string(),
        action: action.to_string(),
        object: object.to_string(),
    })
}

/// The policy's own fields as requests: `p` lines asked about what they name, `g` lines'
/// members asked about everything.
fn requests_from_policy(csv: &str) -> Vec<Request> {
    csv.lines()
        .take(64)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            match fields.as_slice() {
                ["p", subject, resource, action, object, ..] => {
                    request(&format!("{subject}, {resource}, {action}, {object}"))
                }
                ["g", member, role, ..] => {
                    request(&format!("{member};{role}, applications, get, team-a/app"))
                }
                _ => None,
            }
        })
        .collect()
}

fn enforce_all(policy: &Policy, requests: &[Request]) {
    let _ = (policy.default_role(), policy.match_mode(), policy.scopes());
    for rejected in policy.rejected_project_policies() {
        let _ = rejected.to_string();
    }
    for (subject, resource, action, object) in REQUESTS {
        let subject = Subject::new(subject).with_groups(["team-a-admins", "role:admin"]);
        let decision = policy.enforce(&subject, resource, action, object);
        let _ = (decision.is_allowed(), format!("{:?}", decision.matched()));
    }
    for request in requests {
        let decision = policy.enforce(
            &request.subject,
            &request.resource,
            &request.action,
            &request.object,
        );
        let _ = (decision.is_allowed(), format!("{:?}", decision.matched()));
        let _ = resources::request_project(&request.resource, &request.object);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = ferry_fuzz::text(data) else {
        return;
    };
    let mut sections = text.split("\n---\n");
    let csv = sections.next().unwrap_or_default();
    let settings = sections.next().unwrap_or_default();
    let mut requests: Vec<Request> = sections
        .next()
        .unwrap_or_default()
        .lines()
        .take(64)
        .filter_map(request)
        .collect();
    requests.extend(requests_from_policy(csv));
    let projects: Vec<AppProject> = sections
        .next()
        .and_then(|yaml| serde_yaml::from_str(yaml).ok())
        .into_iter()
        .collect();

    let mut data = BTreeMap::new();
    data.insert("policy.csv".to_string(), csv.to_string());
    let mut settings = settings.lines();
    for key in ["policy.default", "policy.matchMode", "scopes"] {
        if let Some(value) = settings.next() {
            data.insert(key.to_string(), value.to_string());
        }
    }
    match Policy::from_config_map_data(&data) {
        Ok(policy) => {
            enforce_all(&policy, &requests);
            enforce_all(&policy.with_projects(&projects), &requests);
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
    // The same lines in the other match mode (each compilation costs the built-in policy too).
    let other = match data.get("policy.matchMode").map(|mode| mode.trim()) {
        Some("regex") => MatchMode::Glob,
        _ => MatchMode::Regex,
    };
    if let Ok(policy) = Policy::parse(csv, Some("role:readonly"), other) {
        enforce_all(&policy.with_projects(&projects), &requests);
    }
});
