//! Credentials across projects and caches that never outlive access (issue 10, items 4, 5, 9
//! and 10), against real Git servers on loopback: a commit one credential fetched is never
//! served to a caller whose credential or project would not fetch it, credential templates
//! match on the parsed URL, and checkout directories are private and unpredictable.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{cache, history};
use ferry_git::{CheckoutOptions, Credentials, GitError, RepoCredential};
use ferry_testkit::git::{GitRepo, HttpServer, SshServer};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret";

fn good() -> RepoCredential {
    RepoCredential::basic(USER, PASSWORD)
}

fn is_auth_failure(err: &GitError) -> bool {
    matches!(err, GitError::AuthFailed { .. })
}

/// Before: mirrors were keyed by the URL without userinfo, so a commit fetched through
/// `http://alice:s3cret@host/repo.git` was served by SHA to `http://host/repo.git` with no
/// credential at all.
#[tokio::test]
async fn a_commit_fetched_with_credentials_in_the_url_is_not_served_without_them()
-> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let http = HttpServer::start(&repo, Some((USER, PASSWORD)))?;
    let url = http.url();
    let with_password = url.replace("http://", &format!("http://{USER}:{PASSWORD}@"));
    let (cache, _root) = cache(Credentials::new());
    assert_eq!(cache.resolve(&with_password, "main").await?.sha, h.third);

    for anonymous in [url.clone(), url.replace("http://", "http://alice:wrong@")] {
        let err = cache.resolve(&anonymous, &h.third).await.unwrap_err();
        assert!(is_auth_failure(&err), "{err}");
        let err = cache
            .checkout(&anonymous, &h.third, &CheckoutOptions::default())
            .await
            .unwrap_err();
        assert!(is_auth_failure(&err), "{err}");
    }
    // The URL with the password is still served from its mirror, without a request.
    let requests = http.requests();
    cache
        .checkout(&with_password, &h.third, &CheckoutOptions::default())
        .await?;
    assert_eq!(http.requests(), requests);
    Ok(())
}

/// Before: removing (or changing) a repository Secret left the mirror it filled serving every
/// commit by SHA.
#[tokio::test]
async fn cached_commits_are_not_served_once_the_credential_is_gone() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let http = HttpServer::start(&repo, Some((USER, PASSWORD)))?;
    let url = http.url();
    let (cache, _root) = cache(Credentials::new().with_repo(&url, good()));
    assert_eq!(cache.resolve(&url, "main").await?.sha, h.third);

    cache.set_credentials(Credentials::new());
    let err = cache.resolve(&url, &h.third).await.unwrap_err();
    assert!(is_auth_failure(&err), "{err}");
    let err = cache
        .checkout(&url, &h.second, &CheckoutOptions::default())
        .await
        .unwrap_err();
    assert!(is_auth_failure(&err), "{err}");

    cache.set_credentials(Credentials::new().with_repo(&url, RepoCredential::basic(USER, "old")));
    let err = cache.resolve(&url, &h.third).await.unwrap_err();
    assert!(is_auth_failure(&err), "{err}");

    // The credential back: its mirror is still there, nothing is fetched again.
    cache.set_credentials(Credentials::new().with_repo(&url, good()));
    let requests = http.requests();
    assert_eq!(cache.resolve(&url, &h.third).await?.sha, h.third);
    assert_eq!(http.requests(), requests);
    Ok(())
}

/// Item 5: a repository Secret with `project: team-a` serves team-a's apps only, and what it
/// fetched is not served to other projects by SHA.
#[tokio::test]
async fn project_scoped_credentials_and_their_mirrors_serve_their_project_only()
-> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let http = HttpServer::start(&repo, Some((USER, PASSWORD)))?;
    let url = http.url();
    let creds = Credentials::new()
        .with_project_repo("team-a", &url, good())
        .with_repo(&url, RepoCredential::basic(USER, "global-but-wrong"));
    let (cache, _root) = cache(creds);
    let team_a = cache.for_project("team-a");
    assert_eq!(team_a.resolve(&url, "main").await?.sha, h.third);
    assert_eq!(team_a.credential(&url), Some(good()));
    team_a
        .checkout(&url, &h.dev, &CheckoutOptions::default())
        .await?;

    for other in [
        cache.for_project("team-b"),
        cache.clone(),
        cache.for_project(""),
    ] {
        assert_ne!(other.credential(&url), Some(good()));
        let err = other.resolve(&url, &h.third).await.unwrap_err();
        assert!(is_auth_failure(&err), "{err}");
        let err = other
            .checkout(&url, &h.dev, &CheckoutOptions::default())
            .await
            .unwrap_err();
        assert!(is_auth_failure(&err), "{err}");
        let err = other.ls_remote(&url).await.unwrap_err();
        assert!(is_auth_failure(&err), "{err}");
    }
    Ok(())
}

/// The common case stays cheap: apps of any project using the same (global) credential share
/// one mirror, and a commit one fetched is served to the others without a request.
#[tokio::test]
async fn one_credential_means_one_mirror_for_every_project() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let http = HttpServer::start(&repo, Some((USER, PASSWORD)))?;
    let url = http.url();
    let (cache, root) = cache(Credentials::new().with_repo(&url, good()));
    assert_eq!(
        cache.for_project("team-a").resolve(&url, "main").await?.sha,
        h.third
    );
    let requests = http.requests();
    let team_b = cache.for_project("team-b");
    assert_eq!(team_b.resolve(&url, &h.third).await?.sha, h.third);
    team_b
        .checkout(&url, &h.dev, &CheckoutOptions::default())
        .await?;
    assert_eq!(http.requests(), requests);
    let mirrors: Vec<_> = std::fs::read_dir(root.path().join("mirrors"))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    assert_eq!(mirrors.len(), 1, "{mirrors:?}");
    assert!(!mirrors[0].contains(PASSWORD) && !mirrors[0].contains(USER));
    assert_eq!(
        cache.access_fingerprint(&url)?,
        cache.for_project("team-b").access_fingerprint(&url)?
    );
    Ok(())
}

/// Item 9, against a real server: a template applies on path-segment boundaries and to its
/// own host and port only; a mere string prefix (which Argo CD would accept) does not.
#[tokio::test]
async fn templates_apply_on_segment_boundaries_of_the_parsed_url() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let http = HttpServer::start(&repo, Some((USER, PASSWORD)))?;
    let url = http.url();
    let host = url.trim_end_matches("/repo.git");
    assert_ne!(host, url);

    for not_covering in [
        format!("{host}/re"),
        format!("{host}/repo.git/sub"),
        "http://127.0.0.1".to_string(),
        host.replace("http://", "https://"),
    ] {
        let (cache, _root) = cache(Credentials::new().with_template(&not_covering, good()));
        let err = cache.resolve(&url, "main").await.unwrap_err();
        assert!(
            is_auth_failure(&err) && err.to_string().contains("none are configured"),
            "{not_covering}: {err}"
        );
    }
    for covering in [host.to_string(), format!("{host}/"), format!("{host}/repo")] {
        let (cache, _root) = cache(Credentials::new().with_template(&covering, good()));
        assert_eq!(
            cache.resolve(&url, "main").await?.sha,
            h.third,
            "{covering}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn ssh_templates_match_the_server_they_name() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let ssh = SshServer::start(&repo)?;
    let url = ssh.url();
    let server = url[..url.find(&format!(":{}", ssh.port())).unwrap()].to_string();
    let template = |prefix: &str| -> anyhow::Result<_> {
        Ok(Credentials::new()
            .with_template(prefix, RepoCredential::ssh_key(ssh.client_private_key()))
            .with_known_hosts(&ssh.known_hosts_line())?)
    };
    let (cache, _root) = cache(template(&format!("{server}:{}", ssh.port()))?);
    assert_eq!(cache.resolve(&url, "main").await?.sha, h.third);
    // Port 22 is another server.
    let (cache, _root) = common::cache(template(&server)?);
    let err = cache.resolve(&url, "main").await.unwrap_err();
    assert!(is_auth_failure(&err), "{err}");
    Ok(())
}

/// Item 4 of the issue: a checkout's directory has a random name and is private (0700), so a
/// render cannot guess (or, as another user, enter) another render's checkout.
#[tokio::test]
async fn checkout_directories_are_private_and_unpredictable() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let (cache, root) = cache(Credentials::new());
    let url = repo.file_url();
    let one = cache
        .checkout(&url, &h.third, &CheckoutOptions::default())
        .await?;
    let two = cache
        .checkout(&url, &h.third, &CheckoutOptions::default())
        .await?;
    assert_ne!(one.path(), two.path());
    for checkout in [&one, &two] {
        let name = checkout.path().file_name().unwrap().to_string_lossy();
        assert!(!name.contains(&h.third[..7]), "{name} names the commit");
        let random = name.trim_start_matches("checkout-");
        assert!(random.len() >= 16, "{name}");
        let mode = std::fs::metadata(checkout.path())?.permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{name}: {mode:o}");
    }
    for private in ["checkouts", "mirrors"] {
        let mode = std::fs::metadata(root.path().join(private))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{private}: {mode:o}");
    }
    Ok(())
}
