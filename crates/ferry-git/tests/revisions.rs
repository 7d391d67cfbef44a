//! Revision resolution over file:// against real repositories built with the git CLI.

mod common;

use common::{cache, history};
use ferry_git::{CheckoutOptions, Credentials, GitError, RepoCredential};
use ferry_testkit::git::{GitRepo, HttpServer};

#[tokio::test]
async fn every_revision_form_resolves() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let (cache, _root) = cache(Credentials::new());
    let url = repo.file_url();

    let cases: &[(&str, &str, Option<&str>)] = &[
        ("main", &h.third, Some("refs/heads/main")),
        ("dev", &h.dev, Some("refs/heads/dev")),
        ("refs/heads/dev", &h.dev, Some("refs/heads/dev")),
        ("HEAD", &h.third, Some("refs/heads/main")),
        ("", &h.third, Some("refs/heads/main")),
        ("v1.0.0", &h.first, Some("refs/tags/v1.0.0")),
        // Annotated: peeled to the commit, not the tag object.
        ("v1.2.0", &h.second, Some("refs/tags/v1.2.0")),
        ("refs/tags/v1.2.0", &h.second, Some("refs/tags/v1.2.0")),
        (&h.first, &h.first, None),
        (&h.dev[..7], &h.dev, None),
        (&h.second[..12], &h.second, None),
        ("1.*", &h.second, Some("refs/tags/v1.2.0")),
        (">=1.0.0 <1.2.0", &h.first, Some("refs/tags/v1.0.0")),
        ("~1.2", &h.second, Some("refs/tags/v1.2.0")),
        ("*", &h.third, Some("refs/tags/v2.0.0")),
        (
            ">=1.2.1-rc.0 <2.0.0",
            &h.second,
            Some("refs/tags/v1.2.1-rc.1"),
        ),
        ("1.0.0", &h.first, Some("refs/tags/v1.0.0")),
    ];
    for (revision, sha, reference) in cases {
        let resolved = cache.resolve(&url, revision).await?;
        assert_eq!(&resolved.sha, sha, "revision {revision:?}");
        assert_eq!(
            resolved.reference.as_deref(),
            *reference,
            "revision {revision:?}"
        );
    }

    // The full SHA of an annotated tag object peels to its commit.
    let tag_object = repo.git(&["rev-parse", "v1.2.0"])?;
    assert_ne!(tag_object, h.second);
    assert_eq!(cache.resolve(&url, &tag_object).await?.sha, h.second);
    Ok(())
}

#[tokio::test]
async fn default_branch_follows_the_remote_head() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    repo.set_default_branch("dev")?;
    let (cache, _root) = cache(Credentials::new());
    let resolved = cache.resolve(&repo.file_url(), "HEAD").await?;
    assert_eq!(resolved.sha, h.dev);
    assert_eq!(resolved.reference.as_deref(), Some("refs/heads/dev"));
    Ok(())
}

#[tokio::test]
async fn a_push_is_seen_by_the_next_resolve_and_checkout() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let (cache, _root) = cache(Credentials::new());
    let url = repo.file_url();
    let before = cache.resolve(&url, "main").await?;
    assert_eq!(before.sha, h.third);

    repo.write("app/cm.yaml", "version: 4\n")?;
    let fourth = repo.commit("fourth")?;
    let after = cache.resolve(&url, "main").await?;
    assert_eq!(after.sha, fourth);
    let checkout = cache
        .checkout(&url, &after.sha, &CheckoutOptions::default())
        .await?;
    assert_eq!(
        std::fs::read_to_string(checkout.path().join("app/cm.yaml"))?,
        "version: 4\n"
    );

    // A moved tag and a deleted branch are seen too.
    repo.delete_ref("refs/tags/v1.0.0")?;
    repo.git(&["tag", "v1.0.0", &h.second])?;
    repo.git(&["push", "-q", "--force", "origin", "refs/tags/v1.0.0"])?;
    assert_eq!(cache.resolve(&url, "v1.0.0").await?.sha, h.second);
    repo.delete_ref("refs/heads/dev")?;
    let err = cache.resolve(&url, "dev").await.unwrap_err();
    assert!(matches!(err, GitError::UnknownRevision { .. }), "{err}");
    Ok(())
}

#[tokio::test]
async fn ls_remote_lists_heads_tags_and_peeled_tags() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let (cache, root) = cache(Credentials::new());
    let refs = cache.ls_remote(&repo.file_url()).await?;
    let sha_of = |name: &str| refs.iter().find(|r| r.name == name).map(|r| r.sha.as_str());
    assert_eq!(sha_of("HEAD"), Some(h.third.as_str()));
    assert_eq!(sha_of("refs/heads/main"), Some(h.third.as_str()));
    assert_eq!(sha_of("refs/heads/dev"), Some(h.dev.as_str()));
    assert_eq!(sha_of("refs/tags/v1.0.0"), Some(h.first.as_str()));
    assert_eq!(sha_of("refs/tags/v1.2.0^{}"), Some(h.second.as_str()));
    let head = refs.iter().find(|r| r.name == "HEAD").unwrap();
    assert_eq!(head.symref_target.as_deref(), Some("refs/heads/main"));
    // ls-remote does not fetch: no mirror was created.
    assert!(!root.path().join("mirrors").exists());
    Ok(())
}

#[tokio::test]
async fn commits_outside_branches_and_tags_are_fetched_by_ref() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    history(&repo)?;
    // Like a pull request head: only reachable from a custom ref.
    repo.switch("scratch")?;
    repo.write("pr.txt", "pr\n")?;
    let pr = repo.commit("pull request")?;
    repo.git(&["push", "-q", "origin", "HEAD:refs/pull/1/head"])?;
    repo.switch("main")?;
    repo.git(&["branch", "-D", "scratch"])?;
    repo.git(&["push", "-q", "origin", ":refs/heads/scratch"])?;

    // Over file:// and over authenticated smart HTTP (two fetches, each authenticating).
    let http = HttpServer::start(&repo, Some(("alice", "s3cret")))?;
    let creds = Credentials::new().with_repo(&http.url(), RepoCredential::basic("alice", "s3cret"));
    for url in [repo.file_url(), http.url()] {
        let (cache, _root) = cache(creds.clone());
        let resolved = cache.resolve(&url, "pull/1/head").await?;
        assert_eq!(resolved.sha, pr);
        assert_eq!(resolved.reference.as_deref(), Some("refs/pull/1/head"));
        let checkout = cache
            .checkout(&url, &pr, &CheckoutOptions::default())
            .await?;
        assert_eq!(
            std::fs::read_to_string(checkout.path().join("pr.txt"))?,
            "pr\n"
        );
    }

    // Checking out such a commit without resolving it first asks for the object itself, which
    // servers give only when they allow it.
    let checkout_pr = |url: String| {
        let (cache, root) = cache(creds.clone());
        let pr = pr.clone();
        async move {
            let _root = root;
            cache
                .checkout(&url, &pr, &CheckoutOptions::default())
                .await
                .map(drop)
        }
    };
    checkout_pr(repo.file_url()).await?;
    let err = checkout_pr(http.url()).await.unwrap_err();
    assert!(matches!(err, GitError::UnknownRevision { .. }), "{err}");
    git_in(
        &repo.bare_path(),
        &["config", "uploadpack.allowTipSHA1InWant", "true"],
    )?;
    checkout_pr(http.url()).await?;
    Ok(())
}

fn git_in(dir: &std::path::Path, args: &[&str]) -> anyhow::Result<()> {
    let status = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .status()?;
    anyhow::ensure!(status.success(), "git {args:?} failed");
    Ok(())
}

#[tokio::test]
async fn unknown_revisions_are_named_in_the_error() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let (cache, _root) = cache(Credentials::new());
    let url = repo.file_url();
    let missing_sha = "0123456789abcdef0123456789abcdef01234567";
    let tree = repo.git(&["rev-parse", "HEAD^{tree}"])?;
    for revision in ["no-such-branch", "9.*", "deadbeef00", missing_sha, &tree] {
        match cache.resolve(&url, revision).await {
            Err(GitError::UnknownRevision {
                url: u,
                revision: r,
                message,
            }) => {
                assert_eq!(u, url);
                assert_eq!(r, revision);
                assert!(!message.is_empty());
            }
            other => panic!("{revision}: expected UnknownRevision, got {other:?}"),
        }
    }
    let err = cache.resolve(&url, &tree).await.unwrap_err().to_string();
    assert!(err.contains("tree, not a commit"), "{err}");
    let err = cache
        .checkout(&url, missing_sha, &CheckoutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::UnknownRevision { .. }), "{err}");
    let err = cache
        .checkout(&url, &h.first[..10], &CheckoutOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("full commit SHA"), "{err}");
    Ok(())
}

#[tokio::test]
async fn invalid_urls_are_refused_before_any_io() {
    let (cache, _root) = cache(Credentials::new());
    for url in ["/etc", "ext::sh -c touch% /tmp/pwned", "ftp://h/r.git"] {
        let err = cache.resolve(url, "main").await.unwrap_err();
        assert!(matches!(err, GitError::InvalidUrl { .. }), "{url}: {err}");
    }
}

#[tokio::test]
async fn commit_metadata_names_author_date_message_and_tags() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let (cache, _root) = cache(Credentials::new());
    let url = repo.file_url();

    let second = cache.commit_metadata(&url, &h.second[..9]).await?;
    assert_eq!(second.sha, h.second);
    assert_eq!(second.message, "second");
    // Both the annotated tag (peeled) and the lightweight one on the same commit.
    assert_eq!(second.tags, ["v1.2.0", "v1.2.1-rc.1"]);
    let author = repo.git(&["show", "-s", "--format=%an <%ae>", &h.second])?;
    assert_eq!(second.author, author);
    let date: i64 = repo
        .git(&["show", "-s", "--format=%at", &h.second])?
        .parse()?;
    assert_eq!(second.date, date);
    assert!(cache.commit_metadata(&url, &h.dev).await?.tags.is_empty());

    // As in Argo CD, a branch name must be resolved first.
    let err = cache.commit_metadata(&url, "main").await.unwrap_err();
    assert!(matches!(err, GitError::UnknownRevision { .. }), "{err}");
    Ok(())
}

/// Lookups of one remote at once share a listing of its refs (a thousand apps on one repository
/// cost one ls-remote, not a thousand), and none is answered by a listing begun before it asked.
#[tokio::test]
async fn lookups_at_once_share_one_listing_begun_after_they_asked() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let http = HttpServer::start(&repo, None)?;
    let listings = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = listings.clone();
    let observer: ferry_git::RequestObserver = std::sync::Arc::new(move |request| {
        if request.operation == "ls-remote" {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let root = tempfile::tempdir()?;
    let cache = ferry_git::RepoCache::new(root.path(), Credentials::new()).with_observer(observer);
    let url = http.url();
    let count = || listings.load(std::sync::atomic::Ordering::SeqCst);

    let lookups = (0..20).map(|_| cache.resolve(&url, "main"));
    for resolved in futures::future::join_all(lookups).await {
        assert_eq!(resolved?.sha, h.third);
    }
    // The first lists alone; the others asked while it ran, so they share the next listing.
    assert!(count() <= 2, "{} listings for 20 lookups", count());

    // A lookup after a push lists again and sees it.
    repo.write("app/cm.yaml", "version: 4\n")?;
    let fourth = repo.commit("fourth")?;
    let before = count();
    assert_eq!(cache.resolve(&url, "main").await?.sha, fourth);
    assert_eq!(count(), before + 1);

    // A failed listing is not kept: the next lookup lists again.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let nowhere = format!("http://127.0.0.1:{port}/repo.git");
    assert!(cache.resolve(&nowhere, "main").await.is_err());
    let before = count();
    assert!(cache.resolve(&nowhere, "main").await.is_err());
    assert_eq!(count(), before + 1);
    Ok(())
}
