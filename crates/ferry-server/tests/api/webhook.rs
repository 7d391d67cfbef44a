//! `POST /api/webhook`: a signed push refreshes the apps it concerns and nothing else, a signed
//! pull request the ApplicationSets listing its pull requests; forged and unconfigured
//! deliveries change nothing.

use std::time::Duration;

use anyhow::Result;
use ferry_testkit::kube::TestContext;
use ferry_types::application::REFRESH_ANNOTATION;
use ferry_types::{Application, ApplicationSet};
use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use serde_json::json;
use sha2::Sha256;

use crate::harness::{self, Server, create_git_app, install_crds};

const SECRET: &str = "webhook s3cret for the story";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/webhook/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// GitHub's `X-Hub-Signature-256` of `body` with `secret`.
fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn github(
    server: &Server,
    event: &str,
    body: &[u8],
    signature: &str,
) -> Result<harness::Response> {
    server
        .post_raw(
            "/api/webhook",
            &[
                ("X-GitHub-Event", event),
                ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
                ("X-Hub-Signature-256", signature),
            ],
            body,
        )
        .await
}

/// The refresh annotation of each app, and whether `ferry-server` manages one of its fields.
async fn refresh_state(ctx: &TestContext, name: &str) -> Result<(Option<String>, bool)> {
    let app = ctx.api::<Application>().get(name).await?;
    let annotation = app
        .metadata
        .annotations
        .unwrap_or_default()
        .remove(REFRESH_ANNOTATION);
    let managed = app
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .any(|entry| entry.manager.as_deref() == Some("ferry-server"));
    Ok((annotation, managed))
}

#[tokio::test]
async fn a_signed_push_refreshes_the_apps_it_concerns_and_forgeries_nothing() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "argocd-secret"},
        "stringData": {"webhook.github.secret": SECRET},
    }))?;
    ctx.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    // The push fixture is of octo-org/guestbook's `main`.
    let guestbook = "https://github.com/octo-org/guestbook.git";
    create_git_app(&ctx, "guestbook", "default", guestbook, "main").await?;
    let other = "https://github.com/octo-org/other.git";
    create_git_app(&ctx, "other", "default", other, "main").await?;
    // ApplicationSets whose Git generators read the pushed repository and branch are refreshed.
    for (name, repo) in [("guestbook-dirs", guestbook), ("other-dirs", other)] {
        let appset: ApplicationSet = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "ApplicationSet",
            "metadata": {"name": name},
            "spec": {
                "generators": [{"matrix": {"generators": [
                    {"list": {"elements": [{"env": "dev"}]}},
                    {"git": {"repoURL": repo, "revision": "HEAD", "directories": [{"path": "*"}]}},
                ]}}],
                "template": {"metadata": {"name": "{{path.basename}}"}, "spec": {}},
            },
        }))?;
        ctx.api::<ApplicationSet>()
            .create(&PostParams::default(), &appset)
            .await?;
    }
    let server = Server::start(&ctx).await?;
    let push = fixture("github-push.json");
    let untouched = (None, false);

    let forged = github(&server, "push", &push, &github_signature("guess", &push)).await?;
    assert_eq!(forged.status, 401, "{:?}", forged.body);
    assert_eq!(forged.body["code"], 16);
    assert_eq!(
        forged.body["message"],
        "GitHub webhook refused: the X-Hub-Signature-256 header does not match the configured \
         secret"
    );

    let gitlab = server
        .post_raw(
            "/api/webhook",
            &[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", SECRET)],
            &fixture("gitlab-push.json"),
        )
        .await?;
    assert_eq!(gitlab.status, 401, "{:?}", gitlab.body);
    assert!(
        gitlab.body["message"]
            .as_str()
            .unwrap()
            .contains("set `webhook.gitlab.secret` in the argocd-secret Secret"),
        "{:?}",
        gitlab.body
    );

    let garbage = server
        .post_raw("/api/webhook", &[("User-Agent", "curl/8.0")], b"{}")
        .await?;
    assert_eq!(garbage.status, 400, "{:?}", garbage.body);

    // Refused by its length before anything reads it: axum's 413, not the parser's 400.
    let oversize = vec![b' '; ferry_server::webhook::MAX_PAYLOAD_BYTES + 1];
    let too_large = github(
        &server,
        "push",
        &oversize,
        &github_signature(SECRET, &oversize),
    )
    .await?;
    assert_eq!(too_large.status, 413, "{:?}", too_large.body);

    let ping = fixture("github-ping.json");
    let pong = github(&server, "ping", &ping, &github_signature(SECRET, &ping)).await?;
    assert_eq!(pong.status, 200, "{:?}", pong.body);
    assert_eq!(pong.body, json!({"refreshed": []}));

    for app in ["guestbook", "other"] {
        assert_eq!(refresh_state(&ctx, app).await?, untouched, "{app}");
    }

    let signature = github_signature(SECRET, &push);
    let genuine = github(&server, "push", &push, &signature).await?;
    assert_eq!(genuine.status, 200, "{:?}", genuine.body);
    assert_eq!(genuine.body, json!({"refreshed": ["guestbook"]}));
    // The annotation is written before the answer; allow the API server a second to show it.
    let mut state = refresh_state(&ctx, "guestbook").await?;
    for _ in 0..10 {
        if state.0.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        state = refresh_state(&ctx, "guestbook").await?;
    }
    assert_eq!(state, (Some("normal".to_string()), true));
    assert_eq!(refresh_state(&ctx, "other").await?, untouched);
    let appset_refresh = |name: &'static str| {
        let api = ctx.api::<ApplicationSet>();
        async move {
            let appset = api.get(name).await?;
            anyhow::Ok(
                appset
                    .metadata
                    .annotations
                    .unwrap_or_default()
                    .remove(ferry_types::application_set::REFRESH_ANNOTATION),
            )
        }
    };
    assert_eq!(
        appset_refresh("guestbook-dirs").await?.as_deref(),
        Some("true")
    );
    assert_eq!(appset_refresh("other-dirs").await?, None);

    let log = server.stop().await?;
    for expected in [
        "webhook refused provider=GitHub",
        "webhook refused provider=GitLab",
        "webhook refused provider=unknown",
    ] {
        let (message, provider) = expected.rsplit_once(' ').unwrap();
        assert!(
            log.lines()
                .any(|line| line.contains(message) && line.contains(provider)),
            "no {expected:?} in:\n{log}"
        );
    }
    harness::assert_no_secrets(&log, &[SECRET, &signature[7..]]);
    Ok(())
}

/// The ApplicationSet controller's refresh annotation of `name`.
async fn appset_refresh(ctx: &TestContext, name: &str) -> Result<Option<String>> {
    let appset = ctx.api::<ApplicationSet>().get(name).await?;
    Ok(appset
        .metadata
        .annotations
        .unwrap_or_default()
        .remove(ferry_types::application_set::REFRESH_ANNOTATION))
}

#[tokio::test]
async fn a_signed_pull_request_refreshes_the_appsets_listing_its_pull_requests() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "argocd-secret"},
        "stringData": {"webhook.github.secret": SECRET, "webhook.gitlab.secret": SECRET},
    }))?;
    ctx.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    // The fixtures are a pull request opened on github.com's octo-org/guestbook and a merge
    // request opened on project 1 of gitlab.example.com.
    let gitlab_api = "https://gitlab.example.com/";
    let guestbook_prs =
        json!({"pullRequest": {"github": {"owner": "octo-org", "repo": "guestbook"}}});
    for (name, generator) in [
        // Nested in a matrix, as preview environments usually are.
        (
            "guestbook-previews",
            json!({"matrix": {"generators": [
                {"list": {"elements": [{"env": "preview"}]}},
                guestbook_prs.clone(),
            ]}}),
        ),
        (
            "gitlab-previews",
            json!({"pullRequest": {"gitlab": {"project": "1", "api": gitlab_api}}}),
        ),
        (
            "other-previews",
            json!({"pullRequest": {"github": {"owner": "octo-org", "repo": "other"}}}),
        ),
        (
            "other-gitlab-previews",
            json!({"pullRequest": {"gitlab": {"project": "2", "api": gitlab_api}}}),
        ),
        // A Git generator of the same repository: pull requests do not move its branches.
        (
            "guestbook-dirs",
            json!({"git": {"repoURL": "https://github.com/octo-org/guestbook.git",
                           "revision": "HEAD", "directories": [{"path": "*"}]}}),
        ),
    ] {
        let appset: ApplicationSet = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "ApplicationSet",
            "metadata": {"name": name},
            "spec": {
                "generators": [generator],
                "template": {"metadata": {"name": "{{number}}"}, "spec": {}},
            },
        }))?;
        ctx.api::<ApplicationSet>()
            .create(&PostParams::default(), &appset)
            .await?;
    }
    let server = Server::start(&ctx).await?;
    let opened = fixture("github-pull-request.json");
    let all = [
        "guestbook-previews",
        "gitlab-previews",
        "other-previews",
        "other-gitlab-previews",
        "guestbook-dirs",
    ];
    let refreshed = |names: &'static [&'static str]| {
        let ctx = &ctx;
        async move {
            let mut out = Vec::new();
            for name in all {
                if appset_refresh(ctx, name).await?.is_some() {
                    out.push(name);
                }
            }
            assert!(out.iter().all(|name| names.contains(name)), "{out:?}");
            anyhow::Ok(out)
        }
    };

    let forged = github(
        &server,
        "pull_request",
        &opened,
        &github_signature("guess", &opened),
    )
    .await?;
    assert_eq!(forged.status, 401, "{:?}", forged.body);
    assert_eq!(
        forged.body["message"],
        "GitHub webhook refused: the X-Hub-Signature-256 header does not match the configured \
         secret"
    );
    let unsigned = server
        .post_raw(
            "/api/webhook",
            &[("X-GitHub-Event", "pull_request")],
            &opened,
        )
        .await?;
    assert_eq!(unsigned.status, 401, "{:?}", unsigned.body);
    let merge_request = fixture("gitlab-merge-request.json");
    let bad_token = server
        .post_raw(
            "/api/webhook",
            &[
                ("X-Gitlab-Event", "Merge Request Hook"),
                ("X-Gitlab-Token", "guess"),
            ],
            &merge_request,
        )
        .await?;
    assert_eq!(bad_token.status, 401, "{:?}", bad_token.body);
    // A genuine edit of the title changes no pull request list.
    let edited = String::from_utf8(opened.clone())?.replacen("\"opened\"", "\"edited\"", 1);
    let ignored = github(
        &server,
        "pull_request",
        edited.as_bytes(),
        &github_signature(SECRET, edited.as_bytes()),
    )
    .await?;
    assert_eq!(ignored.status, 200, "{:?}", ignored.body);
    assert_eq!(refreshed(&[]).await?, Vec::<&str>::new());

    let signature = github_signature(SECRET, &opened);
    let genuine = github(&server, "pull_request", &opened, &signature).await?;
    assert_eq!(genuine.status, 200, "{:?}", genuine.body);
    assert_eq!(genuine.body, json!({"refreshed": []}));
    assert_eq!(
        refreshed(&["guestbook-previews"]).await?,
        ["guestbook-previews"]
    );
    assert_eq!(
        appset_refresh(&ctx, "guestbook-previews").await?.as_deref(),
        Some("true")
    );

    let merged = server
        .post_raw(
            "/api/webhook",
            &[
                ("X-Gitlab-Event", "Merge Request Hook"),
                ("X-Gitlab-Token", SECRET),
            ],
            &merge_request,
        )
        .await?;
    assert_eq!(merged.status, 200, "{:?}", merged.body);
    assert_eq!(
        refreshed(&["guestbook-previews", "gitlab-previews"]).await?,
        ["guestbook-previews", "gitlab-previews"]
    );

    let log = server.stop().await?;
    assert!(
        log.lines().any(
            |line| line.contains("webhook pull request refreshes ApplicationSets")
                && line.contains("gitlab-previews")
        ),
        "{log}"
    );
    harness::assert_no_secrets(&log, &[SECRET, &signature[7..]]);
    Ok(())
}
