//! The SCM provider and pull request generators against a real Gitea (ferry-testkit starts it),
//! with their token read from a Secret of the sandbox: an organization's repositories and
//! branches through each kind of filter, with the parameters Argo CD emits; one parameter set
//! per open pull request carrying the wanted labels, gone once the pull request is closed; the
//! allowed-providers list; and a missing Secret named in the error.

use anyhow::Result;
use ferry_appset::generators::{GitSource, Kube, ScmSettings, Sources};
use ferry_git::{Credentials, RepoCache};
use ferry_testkit::gitea::Gitea;
use ferry_testkit::kube::TestContext;
use ferry_types::ApplicationSet;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use serde_json::{Map, Value, json};

/// The parameter sets of an ApplicationSet with the one generator `generator`.
async fn params(
    ctx: &TestContext,
    go_template: bool,
    generator: Value,
    scm: &ScmSettings,
) -> Result<Vec<Map<String, Value>>, String> {
    let appset: ApplicationSet = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": "story", "namespace": ctx.namespace()},
        "spec": {"goTemplate": go_template, "generators": [generator], "template": {}},
    }))
    .map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let git = GitSource {
        cache: RepoCache::new(dir.path(), Credentials::new()),
        max_checkout_bytes: None,
    };
    let kube = Kube {
        client: ctx.client(),
        namespace: ctx.namespace().to_string(),
    };
    let sources = Sources {
        git: &git,
        cluster_secrets: &[],
        kube: Some(&kube),
        scm,
    };
    let entry = &appset.spec.generators[0];
    ferry_appset::generators::transform(
        entry,
        &appset.spec.template,
        &appset,
        &Map::new(),
        &sources,
        0,
    )
    .await
    .map(|g| g.params)
    .map_err(|e| e.to_string())
}

async fn token_secret(ctx: &TestContext, gitea: &Gitea) -> Result<()> {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "gitea-token"},
        "stringData": {"token": gitea.token()},
    }))?;
    ctx.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    Ok(())
}

/// `(repository, branch)` of each set, sorted.
fn repos_and_branches(sets: &[Map<String, Value>]) -> Vec<(String, String)> {
    let mut out: Vec<_> = sets
        .iter()
        .map(|p| {
            (
                p["repository"].as_str().unwrap_or_default().to_string(),
                p["branch"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn pair(repo: &str, branch: &str) -> (String, String) {
    (repo.to_string(), branch.to_string())
}

#[tokio::test]
async fn scm_provider_lists_an_orgs_repositories_and_branches_through_filters() -> Result<()> {
    let ctx = TestContext::new().await?;
    let gitea = Gitea::start()?;
    token_secret(&ctx, &gitea).await?;
    gitea.create_org("acme").await?;
    for repo in ["app-one", "app-two", "tools"] {
        gitea.create_repo("acme", repo).await?;
    }
    let sha = gitea
        .put_file(
            "acme",
            "app-one",
            "main",
            "deploy/kustomization.yaml",
            "resources: []\n",
        )
        .await?;
    gitea
        .put_file(
            "acme",
            "app-two",
            "main",
            "deploy/kustomization.yaml",
            "resources: []\n",
        )
        .await?;
    gitea
        .put_file("acme", "app-two", "main", "disabled.txt", "off\n")
        .await?;
    gitea
        .create_branch("acme", "app-one", "Feature/Login_Page", "main")
        .await?;
    gitea.create_label("acme", "app-one", "deploy-ok").await?;
    let scm = ScmSettings::default();
    let provider = |filters: Value, all_branches: bool| {
        json!({"scmProvider": {
            "gitea": {
                "owner": "acme",
                "api": gitea.url(),
                "allBranches": all_branches,
                "tokenRef": {"secretName": "gitea-token", "key": "token"},
            },
            "cloneProtocol": "https",
            "filters": filters,
        }})
    };

    // No filter: every repository at its default branch, with upstream's parameters.
    let all = params(&ctx, false, provider(json!([]), false), &scm)
        .await
        .unwrap();
    assert_eq!(
        repos_and_branches(&all),
        [
            pair("app-one", "main"),
            pair("app-two", "main"),
            pair("tools", "main")
        ]
    );
    let one = all.iter().find(|p| p["repository"] == "app-one").unwrap();
    assert_eq!(one["organization"], "acme");
    assert_eq!(
        one["url"],
        gitea.clone_url("acme", "app-one").trim_end_matches(".git")
    );
    assert_eq!(one["sha"], sha.as_str());
    assert_eq!(one["short_sha"], &sha[..8]);
    assert_eq!(one["short_sha_7"], &sha[..7]);
    assert_eq!(one["labels"], "deploy-ok");
    assert_eq!(one["branchNormalized"], "main");
    assert!(one["repository_id"].is_number(), "{one:?}");

    // pathsExist and pathsDoNotExist look at each branch's files, directories too.
    let deployable = json!([{"pathsExist": ["deploy/"], "pathsDoNotExist": ["disabled.txt"]}]);
    let kept = params(&ctx, false, provider(deployable, false), &scm)
        .await
        .unwrap();
    assert_eq!(repos_and_branches(&kept), [pair("app-one", "main")]);

    // repositoryMatch and labelMatch choose repositories; any filter may match.
    let either = json!([{"repositoryMatch": "^tools$"}, {"labelMatch": "^deploy-"}]);
    let kept = params(&ctx, false, provider(either, false), &scm)
        .await
        .unwrap();
    assert_eq!(
        repos_and_branches(&kept),
        [pair("app-one", "main"), pair("tools", "main")]
    );

    // allBranches with branchMatch: every branch the regexp matches, normalized for names.
    let features = json!([{"branchMatch": "^Feature/"}]);
    let kept = params(&ctx, false, provider(features, true), &scm)
        .await
        .unwrap();
    assert_eq!(
        repos_and_branches(&kept),
        [pair("app-one", "Feature/Login_Page")]
    );
    assert_eq!(kept[0]["branchNormalized"], "feature-login-page");

    // A bad regexp is an error, not an empty list.
    let bad = json!([{"repositoryMatch": "("}]);
    let err = params(&ctx, false, provider(bad, false), &scm)
        .await
        .unwrap_err();
    assert!(
        err.contains("error compiling RepositoryMatch regexp"),
        "{err}"
    );

    // The allowed-providers list: Gitea's URL must be on it when there is one.
    let others_only = ScmSettings {
        allowed_providers: vec!["https://gitea.example.com".into()],
        ..ScmSettings::default()
    };
    let err = params(&ctx, false, provider(json!([]), false), &others_only)
        .await
        .unwrap_err();
    assert!(err.contains("not allowed"), "{err}");
    let listed = ScmSettings {
        allowed_providers: vec![gitea.url()],
        ..ScmSettings::default()
    };
    assert_eq!(
        params(&ctx, false, provider(json!([]), false), &listed)
            .await
            .unwrap()
            .len(),
        3
    );
    let disabled = ScmSettings {
        enabled: false,
        ..ScmSettings::default()
    };
    let err = params(&ctx, false, provider(json!([]), false), &disabled)
        .await
        .unwrap_err();
    assert_eq!(err, "scm providers are disabled");
    Ok(())
}

#[tokio::test]
async fn pull_request_generates_one_set_per_open_pull_request_with_the_labels() -> Result<()> {
    let ctx = TestContext::new().await?;
    let gitea = Gitea::start()?;
    token_secret(&ctx, &gitea).await?;
    gitea.create_org("acme").await?;
    gitea.create_repo("acme", "web").await?;
    let preview = gitea.create_label("acme", "web", "preview").await?;
    let mut heads = Vec::new();
    for branch in ["feature/Login_Page", "fix-typo", "wip"] {
        gitea.create_branch("acme", "web", branch, "main").await?;
        heads.push(
            gitea
                .put_file("acme", "web", branch, "change.txt", branch)
                .await?,
        );
    }
    let login = gitea
        .open_pull(
            "acme",
            "web",
            "feature/Login_Page",
            "main",
            "Add a login page",
            &[preview],
        )
        .await?;
    let typo = gitea
        .open_pull("acme", "web", "fix-typo", "main", "Fix a typo", &[preview])
        .await?;
    gitea
        .open_pull("acme", "web", "wip", "main", "Not ready", &[])
        .await?;
    let scm = ScmSettings::default();
    let generator = |filters: Value| {
        json!({"pullRequest": {
            "gitea": {
                "owner": "acme",
                "repo": "web",
                "api": gitea.url(),
                "tokenRef": {"secretName": "gitea-token", "key": "token"},
                "labels": ["preview"],
            },
            "filters": filters,
        }})
    };
    let numbers = |sets: &[Map<String, Value>]| {
        let mut n: Vec<_> = sets
            .iter()
            .map(|p| p["number"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };

    // The two labelled pull requests, with upstream's parameters (labels for Go templates only).
    let sets = params(&ctx, true, generator(json!([])), &scm)
        .await
        .unwrap();
    assert_eq!(numbers(&sets), [login.to_string(), typo.to_string()]);
    let first = sets
        .iter()
        .find(|p| p["number"].as_str() == Some(login.to_string().as_str()))
        .unwrap();
    assert_eq!(first["branch"], "feature/Login_Page");
    assert_eq!(first["branch_slug"], "feature-login-page");
    assert_eq!(first["target_branch"], "main");
    assert_eq!(first["target_branch_slug"], "main");
    assert_eq!(first["head_sha"], heads[0].as_str());
    assert_eq!(first["head_short_sha"], &heads[0][..8]);
    assert_eq!(first["head_short_sha_7"], &heads[0][..7]);
    assert_eq!(first["title"], "Add a login page");
    assert_eq!(first["author"], ferry_testkit::gitea::ADMIN);
    assert_eq!(first["labels"], json!(["preview"]));
    let fast = params(&ctx, false, generator(json!([])), &scm)
        .await
        .unwrap();
    assert!(fast.iter().all(|p| !p.contains_key("labels")), "{fast:?}");

    // Filters: any may match, each of its conditions must.
    let filters = json!([{"branchMatch": "^feature/", "targetBranchMatch": "^main$"}]);
    let sets = params(&ctx, true, generator(filters), &scm).await.unwrap();
    assert_eq!(numbers(&sets), [login.to_string()]);

    // A closed pull request generates nothing.
    gitea.close_pull("acme", "web", login).await?;
    let sets = params(&ctx, true, generator(json!([])), &scm)
        .await
        .unwrap();
    assert_eq!(numbers(&sets), [typo.to_string()]);

    // A repository that does not exist is an error, unless told to continue.
    let missing =
        json!({"pullRequest": {"gitea": {"owner": "acme", "repo": "gone", "api": gitea.url()}}});
    let err = params(&ctx, true, missing.clone(), &scm).await.unwrap_err();
    assert!(err.contains("404"), "{err}");
    let mut tolerant = missing;
    tolerant["pullRequest"]["continueOnRepoNotFoundError"] = json!(true);
    assert_eq!(params(&ctx, true, tolerant, &scm).await.unwrap().len(), 0);
    Ok(())
}

#[tokio::test]
async fn a_missing_token_secret_is_named_and_its_value_never_shown() -> Result<()> {
    let ctx = TestContext::new().await?;
    let gitea = Gitea::start()?;
    let scm = ScmSettings::default();
    let generator = |secret: &str| {
        json!({"pullRequest": {"gitea": {
            "owner": "acme", "repo": "web", "api": gitea.url(),
            "tokenRef": {"secretName": secret, "key": "token"},
        }}})
    };
    let err = params(&ctx, true, generator("no-such-secret"), &scm)
        .await
        .unwrap_err();
    let ns = ctx.namespace();
    assert!(
        err.contains(&format!("error fetching secret {ns}/no-such-secret")),
        "{err}"
    );

    // A wrong token: Gitea refuses it, and the error does not repeat it.
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "wrong-token"},
        "stringData": {"token": "0123456789abcdef-not-a-token"},
    }))?;
    ctx.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    let err = params(&ctx, true, generator("wrong-token"), &scm)
        .await
        .unwrap_err();
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("0123456789abcdef-not-a-token"), "{err}");

    // Strict mode reads only Secrets labelled as SCM credentials.
    let strict = ScmSettings {
        token_ref_strict_mode: true,
        ..ScmSettings::default()
    };
    let err = params(&ctx, true, generator("wrong-token"), &strict)
        .await
        .unwrap_err();
    assert!(err.contains("is not a valid SCM creds secret"), "{err}");
    Ok(())
}
