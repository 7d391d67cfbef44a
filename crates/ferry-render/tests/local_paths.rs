//! No cross-tenant reads through local paths: a render of team A's repository cannot read team
//! B's repository (or a Git mirror, or any directory) from this machine's disk, neither through
//! a kustomization's `file://` remote targets, nor through a remote base that names one, nor
//! through a Helm dependency at a `file://` path, nor by lifting kustomize's load restrictor.
//! Real kustomize, helm and git, real repositories.

mod common;

use common::*;
use ferry_git::Credentials;
use ferry_testkit::git::{GitRepo, HttpServer};

/// Team B's repository: a kustomization and a chart holding a secret.
fn team_b() -> GitRepo {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "app/secret.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: team-b-secret}\ndata: {token: b-only}\n",
    )
    .unwrap();
    repo.write("app/kustomization.yaml", "resources: [secret.yaml]\n")
        .unwrap();
    repo.write(
        "charts/db/Chart.yaml",
        "apiVersion: v2\nname: db\nversion: 1.0.0\n",
    )
    .unwrap();
    repo.write(
        "charts/db/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: team-b-db}\ndata: {password: b-only}\n",
    )
    .unwrap();
    repo.commit("team b").unwrap();
    repo
}

/// Team A's repository with one kustomization `overlay` listing `resources`.
fn team_a_overlay(resources: &str) -> GitRepo {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "overlay/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: team-a}\n",
    )
    .unwrap();
    repo.write(
        "overlay/kustomization.yaml",
        format!("resources: [cm.yaml, '{resources}']\n"),
    )
    .unwrap();
    repo.commit("team a").unwrap();
    repo
}

async fn render(h: &Harness, repo: &GitRepo, path: &str) -> Result<Vec<String>, String> {
    let srcs = sources(&format!("- repoURL: {}\n  path: {path}\n", repo.file_url()));
    h.renderer
        .render(&app("team-a", "team-a"), &srcs)
        .await
        .map(|r| names(&r.objects))
        .map_err(|e| e.to_string())
}

fn allowing_local_remotes() -> Harness {
    harness_configured(Credentials::default(), |c| c.allow_local_remotes = true)
}

#[tokio::test]
async fn kustomize_file_remote_to_another_repository_is_refused() {
    let b = team_b();
    for target in [
        format!("{}//app?ref=main", b.file_url()),
        format!("git::{}//app", b.file_url()),
    ] {
        let a = team_a_overlay(&target);
        let err = render(&harness(vec![]), &a, "overlay").await.unwrap_err();
        assert_eq!(
            err,
            format!(
                "{} path overlay: {target}: overlay/kustomization.yaml: resources entry is a \
                 repository on this machine's disk (file://); a render may only read the \
                 application's own repository",
                a.file_url()
            )
        );
    }

    // What `ferry render --allow-local-remotes` does with the same kustomization: kustomize
    // clones it (so the refusal above is what stands between team A and team B's secret).
    let a = team_a_overlay(&format!("{}//app?ref=main", b.file_url()));
    let objects = render(&allowing_local_remotes(), &a, "overlay")
        .await
        .unwrap();
    assert_eq!(objects, ["ConfigMap/team-a", "ConfigMap/team-b-secret"]);
}

#[tokio::test]
async fn a_fetched_base_cannot_reach_local_repositories_either() {
    let b = team_b();
    // A base served over HTTP (allowed: a network remote) that itself names team B's repository
    // on disk: only kustomize sees it, after cloning; git's local transport stops it.
    let relay = GitRepo::new().unwrap();
    relay
        .write(
            "fine/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\n",
        )
        .unwrap();
    relay
        .write("fine/kustomization.yaml", "resources: [cm.yaml]\n")
        .unwrap();
    relay
        .write(
            "evil/kustomization.yaml",
            format!("resources: ['{}//app?ref=main']\n", b.file_url()),
        )
        .unwrap();
    relay.commit("relay").unwrap();
    let http = HttpServer::start(&relay, None).unwrap();

    let h = harness(vec![]);
    let fine = team_a_overlay(&format!("{}//fine?ref=main", http.url()));
    assert_eq!(
        render(&h, &fine, "overlay").await.unwrap(),
        ["ConfigMap/shared", "ConfigMap/team-a"],
        "remote bases over the network still build"
    );
    let evil = team_a_overlay(&format!("{}//evil?ref=main", http.url()));
    let err = render(&h, &evil, "overlay").await.unwrap_err();
    assert!(
        err.starts_with(&format!(
            "{} path overlay: kustomize build failed",
            evil.file_url()
        )),
        "{err}"
    );
    assert!(err.contains("transport 'file' not allowed"), "{err}");
    assert!(!err.contains("b-only"), "{err}");
}

/// Team A's chart `web` depending on chart `db` at `repository`.
fn team_a_chart(repository: &str) -> GitRepo {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "charts/web/Chart.yaml",
        format!(
            "apiVersion: v2\nname: web\nversion: 1.0.0\ndependencies:\n  - name: db\n    \
             version: 1.0.0\n    repository: '{repository}'\n"
        ),
    )
    .unwrap();
    repo.write(
        "charts/web/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
    )
    .unwrap();
    repo.commit("team a chart").unwrap();
    repo
}

#[tokio::test]
async fn helm_dependencies_outside_the_checkout_are_refused() {
    let b = team_b();
    let db = b.work_path().join("charts/db");
    let absolute = format!("file://{}", db.display());
    // Enough `..` to reach `/` from wherever the render's copy is, then down to team B's chart.
    let climbing = format!(
        "file://{}{}",
        "../".repeat(40),
        db.display().to_string().trim_start_matches('/')
    );
    for (repository, reason) in [
        (
            &absolute,
            "is a directory on this machine's disk outside the repository; a render may only \
             read the application's own repository",
        ),
        (&climbing, "resolves outside the repository"),
    ] {
        let a = team_a_chart(repository);
        let err = render(&harness(vec![]), &a, "charts/web")
            .await
            .unwrap_err();
        assert_eq!(
            err,
            format!(
                "{} path charts/web: {repository}: charts/web/Chart.yaml: dependency \"db\" \
                 repository {reason}",
                a.file_url()
            )
        );
        // Without the check, helm copies team B's chart into the render.
        assert_eq!(
            render(&allowing_local_remotes(), &a, "charts/web")
                .await
                .unwrap(),
            ["ConfigMap/team-b-db", "ConfigMap/web"],
        );
    }
}

#[tokio::test]
async fn a_lock_file_cannot_swap_in_a_local_dependency() {
    use sha2::{Digest, Sha256};
    let b = team_b();
    let outside = format!("file://{}", b.work_path().join("charts/db").display());
    // An apiVersion v1 chart whose requirements.yaml names the sibling chart `db` in the
    // checkout, and whose requirements.lock names team B's instead. Helm 3 accepts a v1 lock
    // whose digest is the Helm 2 hash of requirements.yaml alone, and then fetches what the
    // lock lists.
    let repo = GitRepo::new().unwrap();
    repo.write(
        "charts/db/Chart.yaml",
        "apiVersion: v1\nname: db\nversion: 1.0.0\n",
    )
    .unwrap();
    repo.write(
        "charts/db/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: team-a-db}\n",
    )
    .unwrap();
    repo.write(
        "charts/web/Chart.yaml",
        "apiVersion: v1\nname: web\nversion: 1.0.0\n",
    )
    .unwrap();
    repo.write(
        "charts/web/requirements.yaml",
        "dependencies:\n- name: db\n  version: 1.0.0\n  repository: file://../db\n",
    )
    .unwrap();
    let requirements =
        r#"{"dependencies":[{"name":"db","version":"1.0.0","repository":"file://../db"}]}"#;
    let digest: String = Sha256::digest(requirements)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    repo.write(
        "charts/web/requirements.lock",
        format!(
            "dependencies:\n- name: db\n  version: 1.0.0\n  repository: {outside}\n\
             digest: sha256:{digest}\ngenerated: \"2024-01-01T00:00:00Z\"\n"
        ),
    )
    .unwrap();
    repo.commit("chart with a lock").unwrap();

    let err = render(&harness(vec![]), &repo, "charts/web")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        format!(
            "{} path charts/web: {outside}: charts/web/requirements.lock: dependency \"db\" \
             repository is a directory on this machine's disk outside the repository; a render \
             may only read the application's own repository",
            repo.file_url()
        )
    );
    // Unchecked, helm builds team B's chart in.
    assert_eq!(
        render(&allowing_local_remotes(), &repo, "charts/web")
            .await
            .unwrap(),
        ["ConfigMap/team-b-db"],
    );
}

#[tokio::test]
async fn kustomize_keeps_its_root_only_load_restrictor() {
    let repo = GitRepo::new().unwrap();
    repo.write("shared/settings.env", "color=blue\n").unwrap();
    repo.write(
        "app/kustomization.yaml",
        "configMapGenerator:\n- name: settings\n  envs: [../shared/settings.env]\n",
    )
    .unwrap();
    repo.commit("app").unwrap();

    // By default kustomize refuses files outside a kustomization's own directory.
    let err = render(&harness(vec![]), &repo, "app").await.unwrap_err();
    assert!(err.contains("kustomize build failed"), "{err}");
    assert!(err.contains("is not in or below"), "{err}");

    // A configuration that would lift the restriction is refused before kustomize runs.
    for options in [
        vec!["--load-restrictor", "LoadRestrictionsNone"],
        vec!["--load-restrictor=LoadRestrictionsNone"],
    ] {
        let mut context = app("team-a", "team-a");
        context.kustomize.build_options = options.iter().map(|o| o.to_string()).collect();
        let srcs = sources(&format!("- repoURL: {}\n  path: app\n", repo.file_url()));
        let err = harness(vec![])
            .renderer
            .render(&context, &srcs)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{} path app: --load-restrictor LoadRestrictionsNone: kustomize build option \
                 not allowed: kustomize keeps its root-only load restrictor, so a \
                 kustomization reads files only under its own directory",
                repo.file_url()
            ),
            "{options:?}"
        );
    }
}
