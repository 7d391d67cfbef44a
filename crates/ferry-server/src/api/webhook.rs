//! `POST /api/webhook`: Git providers' push notifications, as Argo CD takes them. The payload's
//! signature (or token) is the authentication; a verified push asks the controller to refresh
//! every Application with a source it concerns, by the same annotation `argocd app get
//! --refresh` sets. The controller then re-resolves the revision and, with automated sync,
//! syncs. ApplicationSets whose Git generators (at any depth of a matrix or merge) read the
//! pushed repository and revision get the ApplicationSet controller's refresh annotation, as
//! Argo CD's webhook handler gives them; so do those whose pull-request generators list the
//! pull requests of a GitHub `pull_request` or GitLab `Merge Request Hook` delivery. A verified
//! push is also offered to the WorkflowEventBindings of the control namespace, as an Argo
//! Workflows event (its JSON payload, its `x-` headers, no discriminator).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use ferry_types::application::REFRESH_ANNOTATION;
use ferry_types::application_set::ApplicationSetGenerator;
use ferry_types::{Application, ApplicationSet};
use ferry_workflow::event;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::error::ApiError;
use super::state::AppState;
use super::workflow_events;
use crate::metrics::WebhookResult;
use crate::webhook::{self, PushEvent, WebhookError, WebhookEvent};

/// The field manager of the refresh annotation.
const FIELD_MANAGER: &str = "ferry-server";

/// Handles one delivery; the body limit is [`webhook::MAX_PAYLOAD_BYTES`], enforced by the
/// router before the body is read.
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let event = match webhook::parse(&headers, &body, state.settings().webhook_secrets()) {
        Ok(event) => event,
        Err(err) => {
            let provider = provider_name(&err);
            let answer = ignored_or_refused(err);
            let result = match answer {
                Ok(()) => WebhookResult::Ignored,
                Err(_) => WebhookResult::Refused,
            };
            state.metrics().webhook(&provider, result);
            return answer.map(|()| refreshed(&[]));
        }
    };
    let mut workflows = None;
    let (provider, names) = match &event {
        WebhookEvent::Push(push) => {
            workflows = offer_to_bindings(&state, &headers, &body).await;
            (push.provider, receive_push(&state, push).await)
        }
        WebhookEvent::PullRequest(pull) => {
            let appsets = refresh_concerned_appsets(&state, |entry| {
                entry
                    .pull_request
                    .as_ref()
                    .is_some_and(|generator| pull.concerns(generator))
            })
            .await;
            if let Ok(appsets) = &appsets {
                tracing::info!(provider = %pull.provider, action = %pull.action, applicationsets = ?appsets, "webhook pull request refreshes ApplicationSets");
            }
            // Pull requests move no Application source: there are no apps to refresh.
            (pull.provider, appsets.map(|_| Vec::new()))
        }
    };
    let result = match names {
        Ok(_) => WebhookResult::Accepted,
        Err(_) => WebhookResult::Failed,
    };
    state.metrics().webhook(&provider.to_string(), result);
    let mut answer = refreshed(&names?);
    if let Some(workflows) = workflows {
        answer.0["workflows"] = workflows;
    }
    Ok(answer)
}

/// Offers a verified push to the control namespace's WorkflowEventBindings; what each did
/// (`{binding, workflow}` or `{binding, error}`, unmatched ones left out), or `None` when there
/// are no bindings (or no Workflow CRDs) there.
async fn offer_to_bindings(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Option<Value> {
    let payload: Value = match serde_json::from_slice(body) {
        Ok(payload) => payload,
        Err(err) => {
            tracing::info!(reason = %err, "webhook push not offered to WorkflowEventBindings: the payload is not JSON");
            return None;
        }
    };
    let event = workflow_events::event(headers, state.namespace(), "", payload);
    let outcomes = match event::dispatch(&state.client(), &event).await {
        Ok(outcomes) => outcomes,
        Err(err) => {
            tracing::debug!(reason = %err, "no WorkflowEventBindings to offer the push to");
            return None;
        }
    };
    if outcomes.is_empty() {
        return None;
    }
    Some(workflow_events::reported(outcomes))
}

/// Refreshes the apps and ApplicationSets `push` concerns; the names of the apps.
async fn receive_push(state: &AppState, push: &PushEvent) -> Result<Vec<String>, ApiError> {
    let names = refresh_concerned(state, push).await?;
    let appsets = refresh_concerned_appsets(state, |entry| {
        entry
            .git
            .as_ref()
            .is_some_and(|git| webhook::matches(&git.repo_url, &git.revision, push))
    })
    .await?;
    if !appsets.is_empty() {
        tracing::info!(provider = %push.provider, applicationsets = ?appsets, "webhook push refreshes ApplicationSets");
    }
    tracing::info!(provider = %push.provider, refreshed = ?names, "webhook push received");
    Ok(names)
}

/// Asks every app `push` concerns to refresh, in the namespaces the server serves (as Argo CD's
/// handler); the names of those that were asked (`<namespace>/<name>` outside the control
/// namespace).
async fn refresh_concerned(state: &AppState, push: &PushEvent) -> Result<Vec<String>, ApiError> {
    let namespaces = state.app_namespaces();
    let apps: Api<Application> = if namespaces.control_only() {
        Api::namespaced(state.client(), state.namespace())
    } else {
        Api::all(state.client())
    };
    let listed = apps
        .list(&ListParams::default())
        .await
        .map_err(|err| ApiError::kube("listing Applications", &err))?;
    let mut names = Vec::new();
    for app in listed.items.iter().filter(|app| concerns(app, push)) {
        let namespace = app.metadata.namespace.as_deref().unwrap_or_default();
        if !namespaces.allows(namespace) {
            continue;
        }
        let name = app.metadata.name.clone().unwrap_or_default();
        let apps: Api<Application> = Api::namespaced(state.client(), namespace);
        if request_refresh(&apps, &name).await? {
            names.push(if namespace == state.namespace() {
                name
            } else {
                format!("{namespace}/{name}")
            });
        }
    }
    Ok(names)
}

/// Asks every ApplicationSet with a generator `concerned` (at any depth of a matrix or merge)
/// to generate again; the names of those asked.
async fn refresh_concerned_appsets(
    state: &AppState,
    concerned: impl Fn(&ApplicationSetGenerator) -> bool,
) -> Result<Vec<String>, ApiError> {
    let appsets: Api<ApplicationSet> = Api::namespaced(state.client(), state.namespace());
    let listed = appsets
        .list(&ListParams::default())
        .await
        .map_err(|err| ApiError::kube("listing ApplicationSets", &err))?;
    let mut names = Vec::new();
    for appset in listed.items.iter() {
        if !appset
            .spec
            .generators
            .iter()
            .any(|g| any_depth(g, &concerned))
        {
            continue;
        }
        let name = appset.metadata.name.clone().unwrap_or_default();
        let patch = json!({"metadata": {"annotations": {
            ferry_types::application_set::REFRESH_ANNOTATION: "true"
        }}});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        match appsets.patch(&name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => names.push(name),
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(err) => return Err(ApiError::kube("requesting an ApplicationSet refresh", &err)),
        }
    }
    Ok(names)
}

/// Whether the entry, or a generator of a matrix or merge in it, is `concerned`.
fn any_depth(
    entry: &ApplicationSetGenerator,
    concerned: &impl Fn(&ApplicationSetGenerator) -> bool,
) -> bool {
    if concerned(entry) {
        return true;
    }
    let nested = entry
        .matrix
        .iter()
        .flat_map(|m| &m.generators)
        .chain(entry.merge.iter().flat_map(|m| &m.generators));
    nested.into_iter().any(|g| any_depth(g, concerned))
}

fn refreshed(names: &[String]) -> Json<Value> {
    Json(json!({ "refreshed": names }))
}

/// `Ok` for a genuine delivery with nothing to refresh (a ping, another event), the error to
/// answer with otherwise. The reason is logged; it never holds the secret or signature.
fn ignored_or_refused(err: WebhookError) -> Result<(), ApiError> {
    let provider = provider_name(&err);
    let refusal = match &err {
        WebhookError::Ping { .. }
        | WebhookError::NotAPush { .. }
        | WebhookError::IgnoredAction { .. } => {
            tracing::debug!(provider = %provider, reason = %err, "webhook ignored");
            return Ok(());
        }
        WebhookError::SecretNotConfigured { .. }
        | WebhookError::MissingSignature { .. }
        | WebhookError::BadSignature { .. } => ApiError::unauthenticated(err.to_string()),
        WebhookError::TooLarge { .. }
        | WebhookError::UnknownSender
        | WebhookError::Malformed { .. } => ApiError::invalid_argument(err.to_string()),
    };
    tracing::info!(provider = %provider, reason = %err, "webhook refused");
    Err(refusal)
}

fn provider_name(err: &WebhookError) -> String {
    err.provider()
        .map_or_else(|| "unknown".to_string(), |provider| provider.to_string())
}

/// Whether a Git source of `app` may have moved with `push`. Helm chart sources come from chart
/// repositories, which Git pushes do not change.
fn concerns(app: &Application, push: &PushEvent) -> bool {
    app.sources().iter().any(|source| {
        !source.is_chart() && webhook::matches(&source.repo_url, &source.target_revision, push)
    })
}

/// Sets the refresh annotation; `false` when the app was deleted meanwhile. Any other failure
/// fails the delivery, so the provider shows it and it can be redelivered (refreshing twice is
/// harmless).
async fn request_refresh(apps: &Api<Application>, name: &str) -> Result<bool, ApiError> {
    let patch = json!({
        "metadata": { "annotations": BTreeMap::from([(REFRESH_ANNOTATION, "normal")]) },
    });
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    match apps.patch(name, &params, &Patch::Merge(&patch)).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(false),
        Err(err) => Err(ApiError::kube("requesting a refresh", &err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Code;
    use crate::webhook::{Provider, PushedRef, RefKind};

    fn push() -> PushEvent {
        PushEvent {
            provider: Provider::GitHub,
            repo_urls: vec!["https://github.com/octo-org/guestbook".into()],
            revision_refs: vec![PushedRef {
                full_ref: "refs/heads/main".into(),
                name: "main".into(),
                kind: RefKind::Branch,
                before: None,
                after: Some("0d1a26e".into()),
            }],
            default_branch: Some("main".into()),
            changed_files: Vec::new(),
        }
    }

    fn app(spec: Value) -> Application {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "app"},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn any_git_source_of_the_pushed_repo_and_ref_concerns_the_app() {
        let repo = "git@github.com:octo-org/guestbook.git";
        let single = app(json!({"source": {"repoURL": repo, "targetRevision": "main"}}));
        assert!(concerns(&single, &push()));
        let pinned = app(json!({"source": {"repoURL": repo, "targetRevision": "v1.0.0"}}));
        assert!(!concerns(&pinned, &push()));
        let multi = app(json!({"sources": [
            {"repoURL": "https://github.com/octo-org/other", "targetRevision": "main"},
            {"repoURL": repo, "targetRevision": "HEAD"},
        ]}));
        assert!(concerns(&multi, &push()));
        // `sources` wins over `source`, as it does for the controller.
        let shadowed = app(json!({
            "source": {"repoURL": repo, "targetRevision": "main"},
            "sources": [{"repoURL": "https://github.com/octo-org/other"}],
        }));
        assert!(!concerns(&shadowed, &push()));
        let chart = app(json!({"source": {
            "repoURL": "https://github.com/octo-org/guestbook", "chart": "guestbook",
            "targetRevision": "main",
        }}));
        assert!(!concerns(&chart, &push()));
    }

    #[test]
    fn git_generators_of_the_pushed_repo_and_ref_concern_the_appset_at_any_depth() {
        let entry =
            |value: Value| -> ApplicationSetGenerator { serde_json::from_value(value).unwrap() };
        let repo = "https://github.com/octo-org/guestbook.git";
        let git = |revision: &str| json!({"git": {"repoURL": repo, "revision": revision, "directories": [{"path": "*"}]}});
        let git_generator_concerned = |entry: &ApplicationSetGenerator, push: &PushEvent| {
            any_depth(entry, &|g: &ApplicationSetGenerator| {
                g.git
                    .as_ref()
                    .is_some_and(|git| webhook::matches(&git.repo_url, &git.revision, push))
            })
        };
        assert!(git_generator_concerned(&entry(git("main")), &push()));
        assert!(git_generator_concerned(&entry(git("HEAD")), &push()));
        assert!(!git_generator_concerned(&entry(git("v1.0.0")), &push()));
        let nested = json!({"matrix": {"generators": [
            {"list": {"elements": []}},
            {"merge": {"mergeKeys": ["a"], "generators": [git("main")]}},
        ]}});
        assert!(git_generator_concerned(&entry(nested), &push()));
        assert!(!git_generator_concerned(
            &entry(json!({"list": {"elements": []}})),
            &push()
        ));
    }

    #[test]
    fn forgeries_are_401_garbage_400_and_pings_answered() {
        let github = Provider::GitHub;
        for (err, code) in [
            (
                WebhookError::BadSignature {
                    provider: github,
                    header: "X-Hub-Signature-256",
                },
                Code::Unauthenticated,
            ),
            (
                WebhookError::SecretNotConfigured {
                    provider: github,
                    key: "webhook.github.secret",
                },
                Code::Unauthenticated,
            ),
            (WebhookError::UnknownSender, Code::InvalidArgument),
            (WebhookError::malformed(github, "no"), Code::InvalidArgument),
        ] {
            let message = err.to_string();
            let refusal = ignored_or_refused(err).unwrap_err();
            assert_eq!((refusal.code, refusal.message), (code, message));
        }
        assert!(ignored_or_refused(WebhookError::Ping { provider: github }).is_ok());
        assert!(ignored_or_refused(WebhookError::not_a_push(github, "issues")).is_ok());
        let edited = WebhookError::IgnoredAction {
            provider: github,
            event: "pull_request".into(),
            action: "edited".into(),
        };
        assert!(ignored_or_refused(edited).is_ok());
    }
}
