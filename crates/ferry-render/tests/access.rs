//! Credentials across projects and a render cache that never outlives access (issue 10,
//! items 5 and 10): renders of private Git repositories (smart HTTP with basic auth) and of
//! charts from a private Helm repository are served from the cache only to apps whose project
//! and credential would fetch them, and apps sharing a credential share cached renders.

mod common;

use std::sync::Arc;

use common::charts::*;
use common::*;
use ferry_git::{Credentials, RepoCache, RepoCredential};
use ferry_render::{AppContext, RenderConfig, Renderer};
use ferry_testkit::chart_repo::{ChartRepo, ChartRepoOptions};
use ferry_testkit::git::{GitRepo, HttpServer};
use ferry_types::source::ApplicationSource;

/// A renderer and the Git cache it reaches repositories through (to change the credentials
/// as a changed repository Secret would).
struct Setup {
    git: Arc<RepoCache>,
    renderer: Renderer,
    _dirs: [tempfile::TempDir; 2],
}

fn setup(credentials: Credentials) -> Setup {
    let (git_dir, work_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let git = Arc::new(RepoCache::new(git_dir.path().join("cache"), credentials));
    let renderer = Renderer::new(
        git.clone(),
        RenderConfig {
            helm: tool("helm"),
            kustomize: tool("kustomize"),
            work_dir: work_dir.path().to_path_buf(),
            ..RenderConfig::default()
        },
    );
    Setup {
        git,
        renderer,
        _dirs: [git_dir, work_dir],
    }
}

fn good() -> RepoCredential {
    RepoCredential::basic(USER, PASSWORD)
}

/// A private repository (smart HTTP with basic auth) holding `app/cm.yaml`; its commit.
fn private_repo() -> (GitRepo, HttpServer, String) {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: private\ndata:\n  secret: plans\n",
    )
    .unwrap();
    let sha = repo.commit("private").unwrap();
    let http = HttpServer::start(&repo, Some((USER, PASSWORD))).unwrap();
    (repo, http, sha)
}

fn git_source(url: &str, revision: &str) -> Vec<ApplicationSource> {
    sources(&format!(
        "- repoURL: {url}\n  path: app\n  targetRevision: \"{revision}\"\n"
    ))
}

fn private_chart_repo() -> ChartRepo {
    let repo = ChartRepo::start(ChartRepoOptions {
        auth: Some((USER, PASSWORD)),
        ..Default::default()
    })
    .unwrap();
    let dir = chart_dir("1.0.0", "private");
    repo.add_chart(&dir.path().join("web")).unwrap();
    repo
}

fn in_project(project: &str) -> AppContext {
    AppContext {
        project: project.into(),
        ..app("shop", "prod")
    }
}

/// Before: a render cached while the credential was configured was served (by commit SHA)
/// after the Secret was deleted or its password changed.
#[tokio::test]
async fn a_cached_git_render_is_not_served_once_the_credential_is_gone() {
    let (_repo, http, sha) = private_repo();
    let url = http.url();
    let s = setup(Credentials::new().with_repo(&url, good()));
    let app = app("shop", "prod");
    let rendered = s
        .renderer
        .render(&app, &git_source(&url, "main"))
        .await
        .unwrap();
    assert_eq!(rendered.sources[0].revision, sha);
    // Cached: rendering the commit again is a hit.
    s.renderer
        .render(&app, &git_source(&url, &sha))
        .await
        .unwrap();
    let hits = s.renderer.stats().cache.hits;
    assert!(hits >= 1);

    for credentials in [
        Credentials::new(),
        Credentials::new().with_repo(&url, RepoCredential::basic(USER, "wrong")),
    ] {
        s.git.set_credentials(credentials);
        let err = s
            .renderer
            .render(&app, &git_source(&url, &sha))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("authentication"), "{err}");
    }
    assert_eq!(s.renderer.stats().cache.hits, hits);
}

/// Before: a chart pulled with the repository Secret's credentials was served from the render
/// cache to anyone naming the same chart and version, with any credential or none.
#[tokio::test]
async fn a_cached_chart_render_is_not_served_once_the_credential_is_gone() {
    let repo = private_chart_repo();
    let url = repo.url();
    let s = setup(Credentials::new().with_repo(&url, good()));
    let source = sources(&chart_source(&url, "web", "1.0.0"));
    let app = app("shop", "prod");
    let rendered = s.renderer.render(&app, &source).await.unwrap();
    assert_eq!(config_data(&rendered)["greeting"], "private");
    s.renderer.render(&app, &source).await.unwrap();
    let hits = s.renderer.stats().cache.hits;
    assert_eq!(hits, 1);

    for credentials in [
        Credentials::new(),
        Credentials::new().with_repo(&url, RepoCredential::basic(USER, "wrong")),
    ] {
        s.git.set_credentials(credentials);
        let err = s
            .renderer
            .render(&app, &source)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("authentication"), "{err}");
    }
    assert_eq!(s.renderer.stats().cache.hits, hits);
}

/// Item 5 through the renderer: a repository Secret scoped to team-a serves team-a's apps;
/// other projects neither reach the repository nor get team-a's cached render.
#[tokio::test]
async fn project_scoped_credentials_and_cached_renders_stay_in_their_project() {
    let (_repo, http, sha) = private_repo();
    let url = http.url();
    let charts = private_chart_repo();
    let chart = sources(&chart_source(&charts.url(), "web", "1.0.0"));
    let s = setup(
        Credentials::new()
            .with_project_repo("team-a", &url, good())
            .with_project_repo("team-a", &charts.url(), good()),
    );
    let team_a = in_project("team-a");
    s.renderer
        .render(&team_a, &git_source(&url, "main"))
        .await
        .unwrap();
    s.renderer.render(&team_a, &chart).await.unwrap();
    s.renderer
        .render(&team_a, &git_source(&url, &sha))
        .await
        .unwrap();
    s.renderer.render(&team_a, &chart).await.unwrap();
    let hits = s.renderer.stats().cache.hits;
    assert_eq!(hits, 2);

    for other in [in_project("team-b"), in_project(""), app("shop", "prod")] {
        for source in [git_source(&url, &sha), chart.clone()] {
            let err = s
                .renderer
                .render(&other, &source)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("authentication"), "{:?}: {err}", other.project);
        }
    }
    assert_eq!(s.renderer.stats().cache.hits, hits);
}

/// The common case stays cheap: apps of different projects using the same (global)
/// credential are served one cached render.
#[tokio::test]
async fn projects_sharing_a_credential_share_cached_renders() {
    let (_repo, http, sha) = private_repo();
    let url = http.url();
    let charts = private_chart_repo();
    let chart = sources(&chart_source(&charts.url(), "web", "1.0.0"));
    let s = setup(
        Credentials::new()
            .with_repo(&url, good())
            .with_template(&charts.url(), good()),
    );
    s.renderer
        .render(&in_project("team-a"), &git_source(&url, &sha))
        .await
        .unwrap();
    s.renderer
        .render(&in_project("team-a"), &chart)
        .await
        .unwrap();
    let (requests, tool_runs) = (http.requests(), s.renderer.stats().tool_runs);
    for project in ["team-b", "team-c"] {
        s.renderer
            .render(&in_project(project), &git_source(&url, &sha))
            .await
            .unwrap();
        s.renderer
            .render(&in_project(project), &chart)
            .await
            .unwrap();
    }
    assert_eq!(s.renderer.stats().cache.hits, 4);
    assert_eq!(http.requests(), requests);
    assert_eq!(s.renderer.stats().tool_runs, tool_runs);
}
