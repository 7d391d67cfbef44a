//! [`RepoCache`]: the async face of the crate. libgit2 blocks, so all git work runs on
//! `spawn_blocking`; network work is bounded by the configured timeout.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use git2::Oid;
use tokio::sync::OwnedMutexGuard;

use crate::access;
use crate::checkout::{Budget, Checkout, CheckoutOptions, Gitlink, Source, materialize};
use crate::mirror::{self, REFSPECS};
use crate::remote::Session;
use crate::repo_url::{RepoUrl, resolve_submodule_url};
use crate::revision::{self, Lookup, RemoteRef, Resolved};
use crate::{Credentials, GitError, RepoCredential};

/// Default bound of one network operation (ls-remote or fetch, including waiting for the lock).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Nested submodules deeper than this are refused (protects against cycles).
const MAX_SUBMODULE_DEPTH: usize = 8;

/// Mirrors of remote repositories under one root directory (`mirrors/`, one bare repository per
/// URL and credential; `checkouts/`, one private directory per [`Checkout`]). Cheap to clone;
/// clones share the mirrors and locks, so keep one per root directory.
///
/// Credentials are looked up for an AppProject: [`RepoCache::for_project`] gives a handle whose
/// operations use the entries of that project and the global ones (see
/// [`Credentials::lookup`]); a handle without a project uses the global entries only.
///
/// Cached content never outlives access: a mirror (and its lock) is keyed by the URL and the
/// fingerprint of the credential that fills it ([`RepoCache::access_fingerprint`]: an
/// HMAC-SHA256 of its secrets, flags and the URL's userinfo under a random key kept in the
/// cache directory, so it never reveals the secret and survives restarts). An operation is
/// only ever served commits its own credential fetched: a full commit SHA an app names is
/// looked up in its credential's mirror, fetched with that credential if missing. The design
/// keeps the common case cheap: with one credential per repository there is one mirror per
/// repository, as before, shared by every project using that credential; only apps with
/// different credentials pay for a mirror of their own.
#[derive(Clone)]
pub struct RepoCache {
    inner: Arc<Inner>,
    timeout: Duration,
    observer: Option<RequestObserver>,
    /// The AppProject whose credentials apply; `None`: only global ones.
    project: Option<Arc<str>>,
}

/// One network operation, as told to a [`RequestObserver`].
#[derive(Debug)]
pub struct GitRequest<'a> {
    /// The repository URL, any password scrubbed.
    pub repo: &'a str,
    /// `ls-remote` or `fetch`.
    pub operation: &'static str,
    /// Including the wait for the repository's lock, as the timeout counts it.
    pub duration: Duration,
    pub succeeded: bool,
}

/// Told about every network operation when it ends (for metrics).
pub type RequestObserver = Arc<dyn Fn(&GitRequest<'_>) + Send + Sync>;

struct Inner {
    root: PathBuf,
    /// Swapped whole when the configured repositories change; operations take a snapshot.
    credentials: RwLock<Arc<Credentials>>,
    /// One lock per mirror (URL and credential): fetches into the same mirror take turns.
    locks: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
    /// The key of the access fingerprints, read (or made) at first use.
    access_key: Mutex<Option<[u8; 32]>>,
    /// The latest listing of each mirror's remote refs (see [`RepoCache::ls_remote_parsed`]).
    listings: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<Option<Listing>>>>>,
}

/// One ls-remote of a remote, kept for the lookups that asked while it ran.
struct Listing {
    /// When it began: it shows the remote as it was then or later.
    began: Instant,
    outcome: Result<Arc<Vec<RemoteRef>>, GitError>,
}

impl Inner {
    fn credentials(&self) -> Arc<Credentials> {
        self.credentials
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn access_key(&self) -> Result<[u8; 32], GitError> {
        let mut key = self
            .access_key
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(key) = *key {
            return Ok(key);
        }
        let loaded = access::load_or_create_key(&self.root)?;
        *key = Some(loaded);
        Ok(loaded)
    }
}

/// How one operation reaches one repository: the credential it found in its snapshot of the
/// configured credentials, and the mirror that credential's fetches go to.
#[derive(Clone)]
struct Remote {
    url: RepoUrl,
    credential: Option<RepoCredential>,
    mirror: PathBuf,
}

/// One queued piece of a checkout: a repository's commit to write into a directory.
struct Job {
    url: RepoUrl,
    revision: String,
    dest: PathBuf,
    /// Path of this (sub)repository inside the top checkout, for error messages.
    rel: PathBuf,
    depth: usize,
}

impl RepoCache {
    pub fn new(root: impl Into<PathBuf>, creds: Credentials) -> Self {
        crate::libgit2_settings::apply();
        RepoCache {
            inner: Arc::new(Inner {
                root: root.into(),
                credentials: RwLock::new(Arc::new(creds)),
                locks: Mutex::default(),
                access_key: Mutex::default(),
                listings: Mutex::default(),
            }),
            timeout: DEFAULT_TIMEOUT,
            observer: None,
            project: None,
        }
    }

    /// This cache as the apps of AppProject `project` see it: their credentials are the entries
    /// scoped to `project` and the global ones; entries of other projects are never used. An
    /// empty `project` means no project (global entries only).
    pub fn for_project(&self, project: &str) -> Self {
        RepoCache {
            project: (!project.is_empty()).then(|| Arc::from(project)),
            ..self.clone()
        }
    }

    /// The AppProject this handle looks credentials up for.
    pub fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }

    /// Bound each network operation by `timeout` instead of [`DEFAULT_TIMEOUT`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Tell `observer` about every ls-remote and fetch of this handle and its clones.
    pub fn with_observer(mut self, observer: RequestObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Replaces the credentials (for example after repository Secrets changed). Operations
    /// already running keep the credentials they started with.
    pub fn set_credentials(&self, creds: Credentials) {
        *self
            .inner
            .credentials
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(creds);
    }

    /// The credential of the repository Secrets for `url` and this handle's project (for tools
    /// other than git, such as helm pulling a chart).
    pub fn credential(&self, url: &str) -> Option<RepoCredential> {
        self.inner.credentials().lookup(url, self.project())
    }

    /// The PEM certificates trusted for the host of `url` (argocd-tls-certs-cm), if any.
    pub fn tls_ca(&self, url: &str) -> Option<String> {
        self.inner.credentials().tls_ca(url).map(str::to_owned)
    }

    /// The access fingerprint of `url` for this handle's project: a keyed digest of the
    /// credential [`RepoCache::credential`] finds (and of any userinfo in the URL) that never
    /// reveals it. Whatever is cached from content fetched for `url` must be keyed by it, so
    /// that only callers with the same credential are served it (the mirrors are; the render
    /// cache does it for rendered objects and pulled charts).
    pub fn access_fingerprint(&self, url: &str) -> Result<String, GitError> {
        let credential = self.credential(url);
        Ok(access::fingerprint(
            &self.inner.access_key()?,
            url.trim(),
            credential.as_ref(),
        ))
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Resolve targetRevision (branch, tag, "HEAD"/"", full or short SHA, semver constraint like
    /// "1.2.*" / ">=1.0.0 <2.0.0" against tags) to a commit SHA, fetching as needed.
    ///
    /// Order as in Argo CD: a full SHA is looked up directly; otherwise the remote's refs are
    /// listed and a semver constraint matching some tag wins, then HEAD, then a ref name, then
    /// an abbreviated SHA (7+ hex digits). The commit is fetched into the mirror if missing, so
    /// a following [`RepoCache::checkout`] needs no network.
    pub async fn resolve(&self, url: &str, revision: &str) -> Result<Resolved, GitError> {
        let credentials = self.inner.credentials();
        let remote = self.remote(&credentials, RepoUrl::parse(url)?)?;
        let revision = revision.trim();
        if revision::is_full_sha(revision) {
            let sha = self
                .ensure_commit(&remote, &credentials, revision, None)
                .await?;
            return Ok(Resolved {
                sha,
                reference: None,
            });
        }
        let refs = self.ls_remote_parsed(&remote, &credentials).await?;
        match revision::lookup(&refs, revision) {
            Lookup::Ref { sha, reference } => {
                let sha = self
                    .ensure_commit(&remote, &credentials, &sha, Some(&reference))
                    .await?;
                Ok(Resolved {
                    sha,
                    reference: Some(reference),
                })
            }
            Lookup::ShortSha => {
                let sha = self
                    .ensure_commit(&remote, &credentials, revision, None)
                    .await?;
                Ok(Resolved {
                    sha,
                    reference: None,
                })
            }
            Lookup::NotFound(message) => Err(unknown_revision(&remote.url, revision, message)),
        }
    }

    /// Remote refs without fetching (ls-remote), to tell cheaply whether anything changed.
    pub async fn ls_remote(&self, url: &str) -> Result<Vec<RemoteRef>, GitError> {
        let credentials = self.inner.credentials();
        let remote = self.remote(&credentials, RepoUrl::parse(url)?)?;
        Ok(self.ls_remote_parsed(&remote, &credentials).await?.to_vec())
    }

    /// Materialize the tree of `sha` (a full commit SHA, e.g. from [`RepoCache::resolve`]) into
    /// a fresh directory, fetching it if needed, optionally with submodules. Concurrent checkouts
    /// only read the mirror. The directory is removed when the [`Checkout`] is dropped; its
    /// name has 16 random characters and it is created with mode 0700, so no other checkout
    /// can guess (or, as another user, enter) it. Symlinks are recreated verbatim and never
    /// followed (see [`Checkout`]). With [`CheckoutOptions::max_bytes`], a commit (with its
    /// submodules) holding more is refused ([`GitError::CheckoutTooLarge`]) while it is written,
    /// and the partial directory removed.
    pub async fn checkout(
        &self,
        url: &str,
        sha: &str,
        opts: &CheckoutOptions,
    ) -> Result<Checkout, GitError> {
        let repo_url = RepoUrl::parse(url)?;
        if !revision::is_full_sha(sha) {
            return Err(unknown_revision(
                &repo_url,
                sha,
                "checkout needs a full commit SHA".to_owned(),
            ));
        }
        let credentials = self.inner.credentials();
        let checkouts = self.inner.root.join("checkouts");
        access::ensure_private_dir(&checkouts)?;
        let dir = tempfile::Builder::new()
            .prefix("checkout-")
            .rand_bytes(16)
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&checkouts)
            .map_err(|e| {
                GitError::io(
                    format!("creating a checkout directory in {}", checkouts.display()),
                    e,
                )
            })?;
        let top = Job {
            url: repo_url,
            revision: sha.to_owned(),
            dest: dir.path().to_path_buf(),
            rel: PathBuf::new(),
            depth: 0,
        };
        let budget = Budget::new(opts.max_bytes);
        let (commit, gitlinks) = self.write_commit(&top, &credentials, &budget, None).await?;
        if opts.submodules {
            let mut jobs = submodule_jobs(&top, gitlinks)?;
            while let Some(job) = jobs.pop() {
                let (_, gitlinks) = self
                    .write_commit(&job, &credentials, &budget, Some(&top))
                    .await?;
                jobs.extend(submodule_jobs(&job, gitlinks)?);
            }
        }
        Ok(Checkout::new(dir, commit))
    }

    /// Write the job's commit; returns its SHA (tags peeled) and the submodules met. Its files
    /// count against `budget`, whose overrun names `top` (the superproject's job), or this job.
    async fn write_commit(
        &self,
        job: &Job,
        credentials: &Arc<Credentials>,
        budget: &Budget,
        top: Option<&Job>,
    ) -> Result<(String, Vec<Gitlink>), GitError> {
        let budget = budget.clone();
        let top = top.map(|t| (t.url.display(), t.revision.clone()));
        let result = async {
            let remote = self.remote(credentials, job.url.clone())?;
            let commit = self
                .ensure_commit(&remote, credentials, &job.revision, None)
                .await?;
            let path = remote.mirror.clone();
            let (url, dest) = (job.url.display(), job.dest.clone());
            run_blocking(&url.clone(), move || {
                let repo = mirror::open(&path).ok_or_else(|| GitError::Git {
                    url: url.clone(),
                    message: "mirror disappeared".to_owned(),
                })?;
                let oid = Oid::from_str(&commit).map_err(|e| GitError::Git {
                    url: url.clone(),
                    message: e.message().to_owned(),
                })?;
                let source = Source {
                    url: &url,
                    sha: &commit,
                };
                let top = match &top {
                    Some((url, sha)) => Source { url, sha },
                    None => Source {
                        url: &url,
                        sha: &commit,
                    },
                };
                let gitlinks = materialize(&repo, oid, &dest, &source, &budget, &top)?;
                Ok((commit, gitlinks))
            })
            .await
        }
        .await;
        // An overrun names the whole checkout's limit, not a submodule failure.
        if job.depth == 0 || matches!(result, Err(GitError::CheckoutTooLarge { .. })) {
            return result;
        }
        result.map_err(|e| GitError::Submodule {
            url: job.url.display(),
            path: job.rel.clone(),
            message: e.to_string(),
        })
    }

    /// How this handle reaches `url` with `credentials` (one snapshot per operation, so the
    /// credential that fetches is the one the mirror is named after).
    fn remote(&self, credentials: &Credentials, url: RepoUrl) -> Result<Remote, GitError> {
        let credential = credentials.lookup(&url.raw, self.project());
        let fingerprint =
            access::fingerprint(&self.inner.access_key()?, &url.raw, credential.as_ref());
        let mirror = access::mirror_path(
            &self.inner.root.join("mirrors"),
            &url.mirror_key(),
            &fingerprint,
        );
        Ok(Remote {
            url,
            credential,
            mirror,
        })
    }

    /// The remote's refs as of now or later: a lookup that finds a listing of the same remote
    /// (URL and credential) running waits for it, and takes its outcome when it began after
    /// the lookup asked; so the lookups of many apps at once cost one ls-remote, and none is
    /// answered from before it asked.
    async fn ls_remote_parsed(
        &self,
        remote: &Remote,
        credentials: &Arc<Credentials>,
    ) -> Result<Arc<Vec<RemoteRef>>, GitError> {
        let asked = Instant::now();
        let slot = self
            .inner
            .listings
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(remote.mirror.clone())
            .or_default()
            .clone();
        let mut latest = tokio::time::timeout(self.timeout, slot.lock())
            .await
            .map_err(|_| GitError::Timeout {
                url: remote.url.display(),
                operation: "ls-remote",
                after: self.timeout,
            })?;
        if let Some(listing) = latest.as_ref().filter(|l| l.began >= asked) {
            return listing.outcome.clone();
        }
        let began = Instant::now();
        let outcome = self.list_refs(remote, credentials).await.map(Arc::new);
        *latest = Some(Listing {
            began,
            outcome: outcome.clone(),
        });
        outcome
    }

    async fn list_refs(
        &self,
        remote: &Remote,
        credentials: &Arc<Credentials>,
    ) -> Result<Vec<RemoteRef>, GitError> {
        let (remote_owned, credentials, timeout) =
            (remote.clone(), credentials.clone(), self.timeout);
        let work = move || {
            Session::new(
                &remote_owned.url,
                remote_owned.credential.clone(),
                &credentials,
                timeout,
            )
            .ls_remote()
        };
        self.bounded(
            &remote.url,
            "ls-remote",
            run_blocking(&remote.url.display(), work),
        )
        .await
    }

    /// The commit `id` (a full or abbreviated object id, possibly of an annotated tag) names,
    /// fetching the mirror if it does not hold it yet (with `reference` too, when the remote
    /// advertised `id` under that name).
    async fn ensure_commit(
        &self,
        remote: &Remote,
        credentials: &Arc<Credentials>,
        id: &str,
        reference: Option<&str>,
    ) -> Result<String, GitError> {
        let url = &remote.url;
        let path = remote.mirror.clone();
        let id_owned = id.to_owned();
        let local = run_blocking(&url.display(), move || {
            Ok(match mirror::open(&path) {
                Some(repo) => mirror::find_commit(&repo, &id_owned).ok(),
                None => None,
            })
        })
        .await?;
        let found = match local {
            Some(mirror::Lookup::Commit(oid)) => mirror::Lookup::Commit(oid),
            _ => {
                let guard = self.lock(&remote.mirror);
                let fetch = async {
                    let guard = guard.lock_owned().await;
                    self.fetch_and_find(remote, credentials, id, reference, guard)
                        .await
                };
                self.bounded(url, "fetch", fetch).await?
            }
        };
        let unknown = |message: &str| unknown_revision(url, id, message.to_owned());
        match found {
            mirror::Lookup::Commit(oid) => Ok(oid.to_string()),
            mirror::Lookup::Missing => Err(unknown(
                "no such commit in the repository's branches and tags",
            )),
            mirror::Lookup::Ambiguous => Err(unknown("abbreviated SHA is ambiguous")),
            mirror::Lookup::NotACommit(kind) => {
                Err(unknown(&format!("names a {kind}, not a commit")))
            }
        }
    }

    /// Under the mirror's lock (held until the blocking fetch really ends, even if the caller
    /// timed out meanwhile): see [`fetch_into_mirror`].
    async fn fetch_and_find(
        &self,
        remote: &Remote,
        credentials: &Arc<Credentials>,
        id: &str,
        reference: Option<&str>,
        guard: OwnedMutexGuard<()>,
    ) -> Result<mirror::Lookup, GitError> {
        let (root, remote_owned, timeout) = (self.inner.root.clone(), remote.clone(), self.timeout);
        let (credentials, id) = (credentials.clone(), id.to_owned());
        let reference = reference.map(str::to_owned);
        run_blocking(&remote.url.display(), move || {
            let _guard = guard;
            fetch_into_mirror(
                &root,
                &remote_owned,
                &credentials,
                &id,
                reference.as_deref(),
                timeout,
            )
        })
        .await
    }

    fn lock(&self, mirror: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .inner
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(mirror.to_path_buf()).or_default().clone()
    }

    /// Bound network work (and the wait for the lock before it) by the configured timeout, and
    /// tell the observer.
    async fn bounded<T>(
        &self,
        url: &RepoUrl,
        operation: &'static str,
        work: impl Future<Output = Result<T, GitError>>,
    ) -> Result<T, GitError> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(GitError::Timeout {
                    url: url.display(),
                    operation,
                    after: self.timeout,
                })
            });
        if let Some(observe) = &self.observer {
            observe(&GitRequest {
                repo: &url.display(),
                operation,
                duration: started.elapsed(),
                succeeded: result.is_ok(),
            });
        }
        result
    }
}

/// Fetch all branches and tags, and `reference` when it is another ref (`refs/pull/1/head`),
/// unless the object arrived meanwhile. Failing that, ask for the object itself (only servers
/// advertising `allow-*-sha1-in-want`, like GitHub, give it).
fn fetch_into_mirror(
    root: &Path,
    remote: &Remote,
    credentials: &Credentials,
    id: &str,
    reference: Option<&str>,
    timeout: Duration,
) -> Result<mirror::Lookup, GitError> {
    let (url, path) = (&remote.url, &remote.mirror);
    let shown = url.display();
    let find = |repo: &git2::Repository| {
        mirror::find_commit(repo, id).map_err(|e| GitError::Git {
            url: shown.clone(),
            message: e.message().to_owned(),
        })
    };
    let repo = mirror::open_or_create(path, &root.join("mirrors"))?;
    let found = find(&repo)?;
    if matches!(found, mirror::Lookup::Commit(_)) {
        return Ok(found);
    }
    let session = Session::new(url, remote.credential.clone(), credentials, timeout);
    let mut refspecs = REFSPECS.map(str::to_owned).to_vec();
    if let Some(other) = reference.filter(|r| {
        r.starts_with("refs/") && !r.starts_with("refs/heads/") && !r.starts_with("refs/tags/")
    }) {
        refspecs.push(format!("+{other}:{other}"));
    }
    tracing::debug!(url = %shown, ?refspecs, "fetching");
    let refspecs: Vec<&str> = refspecs.iter().map(String::as_str).collect();
    session.fetch(&repo, &refspecs)?;
    let found = find(&repo)?;
    if found != mirror::Lookup::Missing || !revision::is_full_sha(id) {
        return Ok(found);
    }
    tracing::debug!(url = %shown, commit = id, "fetching a commit outside branches and tags");
    if let Err(e) = session.fetch(&repo, &[id]) {
        tracing::debug!(url = %shown, error = %e, "the server refused the commit");
    }
    find(&repo)
}

/// Run blocking git work off the async threads.
async fn run_blocking<T: Send + 'static>(
    url: &str,
    work: impl FnOnce() -> Result<T, GitError> + Send + 'static,
) -> Result<T, GitError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(GitError::Git {
            url: url.to_owned(),
            message: format!("git worker failed: {e}"),
        })
    })
}

fn submodule_jobs(parent: &Job, gitlinks: Vec<Gitlink>) -> Result<Vec<Job>, GitError> {
    gitlinks
        .into_iter()
        .map(|link| submodule_job(parent, link))
        .collect()
}

fn submodule_job(parent: &Job, link: Gitlink) -> Result<Job, GitError> {
    let rel = parent.rel.join(&link.path);
    let error = |message: String| GitError::Submodule {
        url: parent.url.display(),
        path: rel.clone(),
        message,
    };
    if parent.depth + 1 > MAX_SUBMODULE_DEPTH {
        return Err(error(format!(
            "submodules nested deeper than {MAX_SUBMODULE_DEPTH}"
        )));
    }
    let listed = link
        .url
        .ok_or_else(|| error("not listed in .gitmodules".to_owned()))?;
    let resolved = resolve_submodule_url(&parent.url.raw, &listed).map_err(error)?;
    let url = RepoUrl::parse(&resolved).map_err(|e| error(e.to_string()))?;
    // Like git's protocol.file.allow=user: a remote repository may not make us read local ones.
    if url.is_local() && !parent.url.is_local() {
        return Err(error(format!(
            "local URL {} refused for a remote superproject",
            url.display()
        )));
    }
    Ok(Job {
        url,
        revision: link.commit.to_string(),
        dest: parent.dest.join(&link.path),
        rel,
        depth: parent.depth + 1,
    })
}

fn unknown_revision(url: &RepoUrl, revision: &str, message: String) -> GitError {
    GitError::UnknownRevision {
        url: url.display(),
        revision: revision.to_owned(),
        message,
    }
}
