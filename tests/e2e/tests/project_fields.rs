//! AppProject fields that must not fail open: a project that asks for its own clusters only
//! (`permitOnlyProjectScopedClusters`), for signed commits (`signatureKeys`) or for syncs as a
//! service account (`destinationServiceAccounts` with impersonation on) gets exactly that from
//! the CLI, the API server and the controller, or nothing is deployed.

use std::time::Duration;

use anyhow::Result;
use ferry_e2e::{Story, is};
use ferry_testkit::gpg::GpgKey;
use ferry_testkit::server::ServerProcess;
use ferry_types::application::{OperationPhase, condition};
use ferry_types::{AppProject, Application};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const IN_CLUSTER: &str = "https://kubernetes.default.svc";

/// Creates an object of kind `K` in the story's namespace from its JSON.
async fn create<K: kube::Resource<DynamicType = ()>>(
    story: &Story,
    mut object: Value,
) -> Result<()> {
    let resource = ApiResource::erase::<K>(&());
    object["apiVersion"] = json!(resource.api_version);
    object["kind"] = json!(resource.kind);
    let api: Api<DynamicObject> =
        Api::namespaced_with(story.ctx.client(), story.namespace(), &resource);
    api.create(&PostParams::default(), &serde_json::from_value(object)?)
        .await?;
    Ok(())
}

/// Creates AppProject `name` with `spec`.
async fn create_project(story: &Story, name: &str, spec: Value) -> Result<()> {
    create::<AppProject>(story, json!({"metadata": {"name": name}, "spec": spec})).await
}

/// An Application of `project` for `path` of the story's repository, deploying into the
/// story's namespace, as JSON.
fn application(story: &Story, name: &str, project: &str, path: &str, extra: Value) -> Value {
    let mut app = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name},
        "spec": {
            "project": project,
            "source": {"repoURL": story.repo.file_url(), "path": path},
            "destination": {"server": IN_CLUSTER, "namespace": story.namespace()},
        },
    });
    if let (Some(spec), Value::Object(extra)) = (app["spec"].as_object_mut(), extra) {
        spec.extend(extra);
    }
    app
}

async fn greeting(story: &Story, config_map: &str) -> Result<Option<String>> {
    Ok(story
        .ctx
        .api::<ConfigMap>()
        .get_opt(config_map)
        .await?
        .and_then(|cm| cm.data)
        .and_then(|data| data.get("greeting").cloned()))
}

fn operation_state(app: &Application) -> (OperationPhase, String) {
    let state = app
        .status
        .as_ref()
        .and_then(|s| s.operation_state.clone())
        .expect("an operation state");
    let mut messages = vec![state.message.clone()];
    if let Some(result) = &state.sync_result {
        messages.extend(result.resources.iter().map(|r| r.message.clone()));
    }
    (state.phase, messages.join("\n"))
}

/// The admin's session on a running `ferry-server`.
struct ServerSession {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl ServerSession {
    async fn login(story: &Story, server: &ServerProcess) -> Result<Self> {
        Ok(Self {
            http: reqwest::Client::new(),
            base: format!("http://{}", server.address()),
            token: story.admin_token(server).await?,
        })
    }

    /// `POST /api/v1/applications`: the status and the answer.
    async fn create_app(&self, app: &Value) -> Result<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}/api/v1/applications", self.base))
            .bearer_auth(&self.token)
            .json(app)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }
}

#[tokio::test]
async fn a_project_of_scoped_clusters_deploys_to_its_own_clusters_only() -> Result<()> {
    let mut story = Story::new().await?;
    let project = story.app_name("scoped");
    create_project(
        &story,
        &project,
        json!({
            "sourceRepos": [story.repo.file_url()],
            "destinations": [{"server": "*", "namespace": "*"}],
            "permitOnlyProjectScopedClusters": true,
        }),
    )
    .await?;
    let refusal = format!(
        "application destination server '{IN_CLUSTER}' and namespace '{}' do not match any of \
         the allowed destinations in project '{project}'",
        story.namespace()
    );
    let app = story.app_name("scoped-web");

    // The in-cluster default has no Secret, so it belongs to no project. The CLI refuses...
    let url = story.repo.file_url();
    let output = story.ferry_output(&[
        "app",
        "create",
        &app,
        "--repo",
        &url,
        "--path",
        "guestbook",
        "--dest-server",
        IN_CLUSTER,
        "--dest-namespace",
        story.namespace(),
        "--project",
        &project,
    ])?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the CLI created the app");
    assert!(stderr.contains(&refusal), "{stderr}");

    // ...so does the API server...
    story.start_controller()?;
    let server = story.start_server().await?;
    let session = ServerSession::login(&story, &server).await?;
    let automated = json!({"syncPolicy": {"automated": {}}});
    let manifest = application(&story, &app, &project, "guestbook", automated);
    let (status, answer) = session.create_app(&manifest).await?;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&refusal),
        "{answer}"
    );

    // ...and so does the controller, for an app written straight to Kubernetes.
    create::<Application>(&story, manifest).await?;
    let message = story
        .wait_condition(&app, condition::INVALID_SPEC_ERROR)
        .await?;
    assert_eq!(message, refusal);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        greeting(&story, "guestbook-config").await?,
        None,
        "deployed"
    );

    // A cluster Secret for the in-cluster server, scoped to the project: now it is the
    // project's own cluster.
    create::<Secret>(
        &story,
        json!({
            "metadata": {"name": "in-cluster", "labels": {"argocd.argoproj.io/secret-type": "cluster"}},
            "stringData": {"name": "in-cluster", "server": IN_CLUSTER, "project": project},
        }),
    )
    .await?;
    story
        .wait_app(&app, "Synced and Healthy on the project's cluster", |a| {
            is::synced_and_healthy(a) && !is::condition(condition::INVALID_SPEC_ERROR)(a)
        })
        .await?;
    assert_eq!(
        greeting(&story, "guestbook-config").await?.as_deref(),
        Some("hello")
    );
    let other = application(
        &story,
        &story.app_name("scoped-api"),
        &project,
        "guestbook",
        json!({}),
    );
    let (status, answer) = session.create_app(&other).await?;
    assert_eq!(status, 200, "{answer}");
    server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_project_that_wants_signed_commits_never_syncs_another() -> Result<()> {
    let mut story = Story::new().await?;
    let trusted = GpgKey::generate("trusted")?;
    let stranger = GpgKey::generate("stranger")?;
    // Both public keys are configured; the project lists the trusted one only.
    let mut keys = serde_json::Map::new();
    for key in [&trusted, &stranger] {
        keys.insert(key.key_id.clone(), json!(key.armored_public_key()?));
    }
    create::<ConfigMap>(
        &story,
        json!({"metadata": {"name": "argocd-gpg-keys-cm"}, "data": keys}),
    )
    .await?;
    let project = story.app_name("signed");
    create_project(
        &story,
        &project,
        json!({
            "sourceRepos": [story.repo.file_url()],
            "destinations": [{"server": "*", "namespace": "*"}],
            "signatureKeys": [{"keyID": trusted.key_id}],
        }),
    )
    .await?;
    let configmap = |greeting: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: guestbook-config\ndata:\n  greeting: {greeting}\n"
        )
    };
    let signed = story.repo.commit_signed("signed guestbook", &trusted)?;
    story.start_controller()?;
    let app = story.app_name("signed-web");
    story.create_app(
        &app,
        "guestbook",
        &["--project", &project, "--sync-policy", "automated"],
    )?;
    story
        .wait_app(&app, "Synced and Healthy at the signed commit", |a| {
            is::synced_and_healthy(a) && is::at_revision(&signed)(a) && is::operation_finished(a)
        })
        .await?;

    // An unsigned commit: a ComparisonError naming the app, the source, the commit and why.
    story
        .repo
        .write("guestbook/configmap.yaml", configmap("unsigned"))?;
    let unsigned = story.repo.commit("unsigned change")?;
    let message = story
        .wait_condition(&app, condition::COMPARISON_ERROR)
        .await?;
    for part in [
        app.as_str(),
        &story.repo.file_url(),
        &unsigned,
        "is not signed",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    // Automated sync stays away from it, and a manual sync is refused.
    let output = story.ferry_output(&["app", "sync", &app, "--timeout", "60"])?;
    assert!(!output.status.success(), "a manual sync succeeded");
    let refused = story
        .wait_app(&app, "the manual sync finished", is::operation_finished)
        .await?;
    let (phase, why) = operation_state(&refused);
    assert_ne!(phase, OperationPhase::Succeeded);
    assert!(why.contains("is not signed"), "{why}");
    assert_eq!(
        greeting(&story, "guestbook-config").await?.as_deref(),
        Some("hello")
    );

    // Signed, but by a key the project does not list (its public key is configured).
    story
        .repo
        .write("guestbook/configmap.yaml", configmap("stranger"))?;
    let by_stranger = story.repo.commit_signed("stranger's change", &stranger)?;
    let message = story
        .wait_app(&app, "a ComparisonError about the stranger's commit", |a| {
            a.status
                .as_ref()
                .and_then(|s| s.condition(condition::COMPARISON_ERROR))
                .is_some_and(|c| c.message.contains(&by_stranger))
        })
        .await?
        .status
        .unwrap()
        .condition(condition::COMPARISON_ERROR)
        .unwrap()
        .message
        .clone();
    assert!(
        message.contains(&stranger.key_id) && message.contains("not allowed in AppProject"),
        "{message}"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        greeting(&story, "guestbook-config").await?.as_deref(),
        Some("hello")
    );

    // Signed by the trusted key again: synced, and the error is gone.
    story
        .repo
        .write("guestbook/configmap.yaml", configmap("trusted"))?;
    let trusted_change = story.repo.commit_signed("trusted change", &trusted)?;
    story
        .wait_app(&app, "synced at the trusted commit", |a| {
            is::synced(a)
                && is::at_revision(&trusted_change)(a)
                && !is::condition(condition::COMPARISON_ERROR)(a)
        })
        .await?;
    story
        .eventually("the trusted greeting deployed", || async {
            Ok(greeting(&story, "guestbook-config").await?.as_deref() == Some("trusted"))
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn syncs_act_as_the_projects_service_account() -> Result<()> {
    let mut story = Story::new().await?;
    let ns = story.namespace().to_string();
    story.repo.write(
        "impersonated/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deployer-config\ndata:\n  greeting: hello\n",
    )?;
    story.repo.write(
        "impersonated/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: deployer-secret\nstringData:\n  token: t0k3n\n",
    )?;
    story.repo.write(
        "unmatched/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: unmatched-config\ndata:\n  greeting: hello\n",
    )?;
    story.repo.commit("apps for impersonation")?;
    create::<ConfigMap>(
        &story,
        json!({
            "metadata": {"name": "argocd-cm"},
            "data": {"application.sync.impersonation.enabled": "true"},
        }),
    )
    .await?;
    // The deployer may manage ConfigMaps of the namespace, nothing else.
    create::<ServiceAccount>(&story, json!({"metadata": {"name": "deployer"}})).await?;
    let rules =
        |resources: &[&str]| json!([{"apiGroups": [""], "resources": resources, "verbs": ["*"]}]);
    create::<Role>(
        &story,
        json!({"metadata": {"name": "deployer"}, "rules": rules(&["configmaps"])}),
    )
    .await?;
    create::<RoleBinding>(
        &story,
        json!({
            "metadata": {"name": "deployer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": ns}],
        }),
    )
    .await?;
    let project = story.app_name("impersonated");
    create_project(
        &story,
        &project,
        json!({
            "sourceRepos": [story.repo.file_url()],
            "destinations": [{"server": "*", "namespace": "*"}],
            "destinationServiceAccounts": [
                {"server": IN_CLUSTER, "namespace": "other-*", "defaultServiceAccount": "nobody"},
                {"server": "*", "namespace": ns, "defaultServiceAccount": "deployer"},
            ],
        }),
    )
    .await?;
    story.start_controller()?;
    let app = story.app_name("impersonated");
    story.create_app(&app, "impersonated", &["--project", &project])?;
    story
        .wait_app(&app, "OutOfSync before any sync", is::out_of_sync)
        .await?;

    // The Secret is beyond the deployer's RBAC: the sync fails, naming the account.
    let output = story.ferry_output(&["app", "sync", &app, "--timeout", "60"])?;
    assert!(!output.status.success(), "the sync succeeded");
    let failed = story
        .wait_app(&app, "the sync finished", is::operation_finished)
        .await?;
    let (phase, why) = operation_state(&failed);
    assert_ne!(phase, OperationPhase::Succeeded);
    let account = format!("system:serviceaccount:{ns}:deployer");
    for part in ["forbidden", account.as_str(), "secrets"] {
        assert!(why.contains(part), "{part:?} missing from: {why}");
    }
    let secrets = story.ctx.api::<Secret>();
    assert!(secrets.get_opt("deployer-secret").await?.is_none());

    // Once RBAC lets the deployer manage Secrets, the same sync passes.
    let role = json!({"rules": rules(&["configmaps", "secrets"])});
    story
        .ctx
        .api::<Role>()
        .patch("deployer", &PatchParams::default(), &Patch::Merge(role))
        .await?;
    story.ferry(&["app", "sync", &app, "--timeout", "120"])?;
    let synced = story
        .wait_app(&app, "the sync finished", is::operation_finished)
        .await?;
    assert_eq!(operation_state(&synced).0, OperationPhase::Succeeded);
    assert!(secrets.get_opt("deployer-secret").await?.is_some());
    assert_eq!(
        greeting(&story, "deployer-config").await?.as_deref(),
        Some("hello")
    );

    // A destination no entry matches is refused with Argo CD's error...
    let unmatched_project = story.app_name("unmatched");
    create_project(
        &story,
        &unmatched_project,
        json!({
            "sourceRepos": [story.repo.file_url()],
            "destinations": [{"server": "*", "namespace": "*"}],
            "destinationServiceAccounts": [
                {"server": "*", "namespace": "other-*", "defaultServiceAccount": "deployer"},
            ],
        }),
    )
    .await?;
    let unmatched = story.app_name("unmatched");
    story.create_app(&unmatched, "unmatched", &["--project", &unmatched_project])?;
    let output = story.ferry_output(&["app", "sync", &unmatched, "--timeout", "60"])?;
    assert!(!output.status.success(), "the unmatched sync succeeded");
    let refused = story
        .wait_app(&unmatched, "the sync finished", is::operation_finished)
        .await?;
    let (phase, why) = operation_state(&refused);
    assert_eq!(phase, OperationPhase::Error);
    assert!(
        why.contains(&format!(
            "no matching service account found for destination server {IN_CLUSTER} and namespace {ns}"
        )),
        "{why}"
    );
    assert_eq!(greeting(&story, "unmatched-config").await?, None);

    // ...and with impersonation off (followed live), syncs are the controller's again.
    let off = json!({"data": {"application.sync.impersonation.enabled": "false"}});
    story
        .ctx
        .api::<ConfigMap>()
        .patch("argocd-cm", &PatchParams::default(), &Patch::Merge(off))
        .await?;
    story.ferry(&["app", "sync", &unmatched, "--timeout", "120"])?;
    assert_eq!(
        greeting(&story, "unmatched-config").await?.as_deref(),
        Some("hello")
    );
    Ok(())
}
