//! The repo service: Application sources in, Kubernetes objects out, answered from the cache
//! for a commit (and options) it has rendered before.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferry_git::{CheckoutOptions, RepoCache};
use ferry_types::source::{ApplicationSource, SourceType};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::cache::{CacheStats, Key, RenderCache};
use crate::confine;
use crate::env::BuildEnv;
use crate::error::{ErrorKind, RenderError};
use crate::jsonnet::{self, JsonnetWorker};
use crate::limits::{self, ManifestBudget};
use crate::oci_source;
use crate::plugin::{self, PluginConfig};
use crate::tool::{self, ToolRunner};
use crate::workspace::Workspace;
use crate::{AppContext, chart, directory, helm, kustomize, manifest, overrides};

/// What [`Renderer::inspect_checkout`] finds of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceDetails {
    pub kind: SourceType,
    /// The plugin that renders a plugin source.
    pub plugin: Option<PluginDetails>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PluginDetails {
    /// `<name>-<version>`, or `<name>` without a version.
    pub name: String,
    pub parameters: Vec<plugin::ParameterAnnouncement>,
}

/// What [`Renderer::locate`] finds.
struct Located<'s> {
    root: PathBuf,
    /// The source's directory, relative to `root`.
    rel_app: PathBuf,
    source: std::borrow::Cow<'s, ApplicationSource>,
    env: BuildEnv,
    kind: SourceType,
    plugin: Option<&'s PluginConfig>,
}

/// The checkout's canonical root and the source's directory in it, which may not leave it.
fn source_dir(
    source: &ApplicationSource,
    checkout: &Path,
) -> Result<(PathBuf, PathBuf), ErrorKind> {
    let root = checkout
        .canonicalize()
        .map_err(|e| ErrorKind::io(checkout.display(), e))?;
    let path = if source.path.is_empty() {
        "."
    } else {
        source.path.as_str()
    };
    let app_dir = confine::resolve(&root, &root, path, "source path")?;
    if !app_dir.is_dir() {
        return Err(ErrorKind::Invalid(format!(
            "source path {path:?} is not a directory in the repository"
        )));
    }
    Ok((root, app_dir))
}

/// How the renderer runs tools and caches results.
#[derive(Debug, Clone)]
pub struct RenderConfig {
    /// `helm` binary (looked up in `PATH` when a bare name).
    pub helm: PathBuf,
    /// `kustomize` binary (looked up in `PATH` when a bare name).
    pub kustomize: PathBuf,
    /// Longest any single tool process (the Jsonnet worker included) may run
    /// (`--tool-timeout`, 90 s as Argo CD's `ARGOCD_EXEC_TIMEOUT`).
    pub tool_timeout: Duration,
    /// Most bytes a tool may write to stdout, and to stderr; more kills it
    /// (`--max-tool-output`).
    pub max_tool_output: u64,
    /// Memory each tool process may map, as its data limit (`RLIMIT_DATA`; `--max-tool-memory`).
    /// Go tools need about 100 MiB to start.
    pub max_tool_memory: u64,
    /// Largest manifest file a directory source reads, Jsonnet files and their imports included
    /// (`--max-manifest-file-size`).
    pub max_manifest_file_size: u64,
    /// Most bytes of rendered manifests of one app, all sources together, counted as compact
    /// JSON (`--max-manifest-size`).
    pub max_manifest_size: u64,
    /// Most bytes of file contents one repository checkout may hold, submodules included
    /// (`--max-repo-size`).
    pub max_repo_size: u64,
    /// The process that evaluates Jsonnet (see [`JsonnetWorker`]).
    pub jsonnet_worker: JsonnetWorker,
    /// Budget of the render cache, in bytes of rendered JSON.
    pub cache_max_bytes: usize,
    /// How long a cached render is reused (Argo CD's `--repo-cache-expiration`, 24 h).
    pub cache_ttl: Duration,
    /// Where private working copies are made.
    pub work_dir: PathBuf,
    /// Config-management plugins.
    pub plugins: Vec<PluginConfig>,
    /// URL schemes allowed for Helm value files (Argo CD's `helm.valuesFileSchemes`); none by
    /// default, so value files come only from repositories.
    pub value_file_schemes: Vec<String>,
    /// Let renders read local repositories and directories outside the checkout: kustomize
    /// remote resources, bases and components at `file://` URLs (and git's local transport for
    /// the tools), and Helm dependencies at `file://` paths outside the checkout. Only for
    /// `ferry render --allow-local-remotes` on one's own machine: the controller and the API
    /// server never set it, since other tenants' checkouts and the Git mirrors are local too.
    pub allow_local_remotes: bool,
}

impl Default for RenderConfig {
    fn default() -> Self {
        Self {
            helm: "helm".into(),
            kustomize: "kustomize".into(),
            tool_timeout: Duration::from_secs(90),
            max_tool_output: limits::DEFAULT_MAX_TOOL_OUTPUT,
            max_tool_memory: limits::DEFAULT_MAX_TOOL_MEMORY,
            max_manifest_file_size: limits::DEFAULT_MAX_MANIFEST_FILE_SIZE,
            max_manifest_size: limits::DEFAULT_MAX_MANIFEST_SIZE,
            max_repo_size: limits::DEFAULT_MAX_REPO_SIZE,
            jsonnet_worker: JsonnetWorker::default(),
            cache_max_bytes: 256 << 20,
            cache_ttl: Duration::from_secs(24 * 60 * 60),
            work_dir: std::env::temp_dir().join("ferry-render"),
            plugins: Vec::new(),
            value_file_schemes: Vec::new(),
            allow_local_remotes: false,
        }
    }
}

/// The result of rendering an Application's sources.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// All objects, in source order, `List`s flattened.
    pub objects: Vec<Value>,
    /// One entry per source, in the order of the Application's sources.
    pub sources: Vec<SourceRevision>,
}

/// What one source resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRevision {
    pub repo_url: String,
    /// The commit SHA for Git sources, the chart version asked for for chart sources.
    pub revision: String,
    /// How it was rendered; `None` for a source used only through its `ref`.
    pub source_type: Option<SourceType>,
    /// Number of objects it produced.
    pub objects: usize,
}

/// A checked-out source another source can read value files from (`$name/...`).
#[derive(Debug, Clone)]
pub struct RefSource {
    /// Checkout root.
    pub root: PathBuf,
    /// Commit SHA of the checkout (part of the cache key of sources that use it).
    pub revision: String,
}

/// Counters for observing the renderer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderStats {
    pub cache: CacheStats,
    /// Tool processes started (helm, kustomize, plugins, Jsonnet workers), including version
    /// probes.
    pub tool_runs: u64,
}

pub struct Renderer {
    git: Arc<RepoCache>,
    config: RenderConfig,
    helm: PathBuf,
    kustomize: PathBuf,
    jsonnet_worker: JsonnetWorker,
    runner: ToolRunner,
    cache: RenderCache,
    helm_version: OnceCell<String>,
    kustomize_version: OnceCell<String>,
}

impl Renderer {
    pub fn new(git: Arc<RepoCache>, config: RenderConfig) -> Self {
        Self {
            git,
            helm: tool::locate(&config.helm),
            kustomize: tool::locate(&config.kustomize),
            jsonnet_worker: config.jsonnet_worker.locate(),
            runner: ToolRunner::new(config.tool_timeout, config.allow_local_remotes)
                .with_limits(config.max_tool_output, config.max_tool_memory),
            cache: RenderCache::new(config.cache_max_bytes, config.cache_ttl),
            helm_version: OnceCell::new(),
            kustomize_version: OnceCell::new(),
            config,
        }
    }

    pub fn stats(&self) -> RenderStats {
        RenderStats {
            cache: self.cache.stats(),
            tool_runs: self.runner.runs(),
        }
    }

    /// Renders an Application's sources (`spec.source` as a one-element slice, or
    /// `spec.sources`). Any failing source fails the whole render: a partial object list would
    /// look like deleted resources to a sync. Sources whose commit (and options) were rendered
    /// before are answered from the cache without a checkout or any tool run. The objects of
    /// all sources together may take at most [`RenderConfig::max_manifest_size`].
    ///
    /// Repositories and chart registries are reached with the credentials of the app's project
    /// (`app.project`, see [`ferry_git::Credentials::lookup`]). Cached renders never outlive
    /// access: each is keyed by the access fingerprint of every repository it read (see
    /// [`ferry_git::RepoCache::access_fingerprint`]), so a render is served from the cache only
    /// to an app whose credentials are the ones that produced it; any other app resolves,
    /// fetches or pulls with its own. Git sources also resolve their commit with the app's
    /// credential (into the mirror of that credential) before the cache is asked.
    pub async fn render(
        &self,
        app: &AppContext,
        sources: &[ApplicationSource],
    ) -> Result<Rendered, RenderError> {
        let git = self.git.for_project(&app.project);
        let multi = sources.len() > 1;
        // Every Git source's commit first: referenced commits are part of the cache keys.
        let mut shas = Vec::with_capacity(sources.len());
        for source in sources {
            shas.push(
                if source.is_chart() || oci_source::is_oci(&source.repo_url) {
                    None
                } else {
                    Some(resolve(&git, source).await?)
                },
            );
        }
        let mut ref_revisions = BTreeMap::new();
        for (source, sha) in sources.iter().zip(&shas) {
            if source.ref_name.is_empty() {
                continue;
            }
            let Some(sha) = sha else {
                return Err(RenderError::new(
                    source.describe(),
                    ErrorKind::Invalid(format!(
                        "ref {:?}: only Git sources can be referenced",
                        source.ref_name
                    )),
                ));
            };
            ref_revisions.insert(
                source.ref_name.clone(),
                json!({"revision": sha, "access": access(&git, source)?}),
            );
        }
        // Checkouts of referenced sources, made at the first cache miss.
        let mut ref_checkouts: Option<(Vec<ferry_git::Checkout>, BTreeMap<String, RefSource>)> =
            None;

        let mut objects = Vec::new();
        let mut budget = ManifestBudget::new(self.config.max_manifest_size);
        let mut revisions = Vec::with_capacity(sources.len());
        for (source, sha) in sources.iter().zip(&shas) {
            // A chart's version constraint becomes the version it resolved to once pulled.
            let mut revision = sha
                .clone()
                .unwrap_or_else(|| source.target_revision.clone());
            // In multi-source Applications a source without path and chart only serves `$ref`.
            if multi && source.path.is_empty() && !source.is_chart() {
                revisions.push(SourceRevision {
                    repo_url: source.repo_url.clone(),
                    revision,
                    source_type: None,
                    objects: 0,
                });
                continue;
            }
            let key = self
                .key(
                    app,
                    source,
                    &revision,
                    &access(&git, source)?,
                    &json!(ref_revisions),
                )
                .await;
            let cacheable = sha.is_some() || chart::is_exact_version(&source.target_revision);
            let hit = if cacheable && !app.hard_refresh {
                self.cache.get(&key)
            } else {
                None
            };
            let (kind, rendered) = match hit {
                Some(hit) => hit,
                None => {
                    if ref_checkouts.is_none() {
                        ref_checkouts = Some(self.checkouts_of_refs(&git, sources, &shas).await?);
                    }
                    let refs = &ref_checkouts.as_ref().expect("just set").1;
                    let result = match sha {
                        Some(sha) => {
                            let checkout = self.checkout(&git, source, sha).await?;
                            self.render_uncached(app, source, checkout.path(), sha, refs, budget)
                                .await?
                        }
                        None if !source.is_chart() => {
                            let (digest, result) =
                                self.render_oci(&git, app, source, refs, budget).await?;
                            revision = digest;
                            result
                        }
                        None => {
                            let (version, result) =
                                self.render_chart(&git, app, source, refs).await?;
                            revision = version;
                            result
                        }
                    };
                    if cacheable {
                        self.cache.put(key, result.clone());
                    }
                    result
                }
            };
            budget
                .spend(&rendered)
                .map_err(|kind| RenderError::new(source.describe(), kind))?;
            revisions.push(SourceRevision {
                repo_url: source.repo_url.clone(),
                revision,
                source_type: Some(kind),
                objects: rendered.len(),
            });
            objects.extend(rendered.iter().cloned());
        }
        Ok(Rendered {
            objects,
            sources: revisions,
        })
    }

    /// Renders one Git source from an existing checkout of commit `revision`, through the cache,
    /// within [`RenderConfig::max_manifest_size`].
    /// `refs` maps `ref` names to the checkouts `$name/...` value files are read from. The
    /// caller made the checkouts, so it had access; the render is cached under the access
    /// fingerprint of the source's repository for `app.project`, as [`Renderer::render`]'s.
    pub async fn render_checkout(
        &self,
        app: &AppContext,
        source: &ApplicationSource,
        checkout: &Path,
        revision: &str,
        refs: &BTreeMap<String, RefSource>,
    ) -> Result<(SourceType, Arc<Vec<Value>>), RenderError> {
        let ref_revisions: BTreeMap<_, _> = refs
            .iter()
            .map(|(k, r)| (k.clone(), json!({"revision": r.revision})))
            .collect();
        let access = access(&self.git.for_project(&app.project), source)?;
        let key = self
            .key(app, source, revision, &access, &json!(ref_revisions))
            .await;
        let mut budget = ManifestBudget::new(self.config.max_manifest_size);
        let hit = if app.hard_refresh {
            None
        } else {
            self.cache.get(&key)
        };
        let result = match hit {
            Some(hit) => hit,
            None => {
                let result = self
                    .render_uncached(app, source, checkout, revision, refs, budget)
                    .await?;
                self.cache.put(key, result.clone());
                result
            }
        };
        budget
            .spend(&result.1)
            .map_err(|kind| RenderError::new(source.describe(), kind))?;
        Ok(result)
    }

    /// Renders `source` from uploaded files instead of its repository (Argo CD's
    /// `GenerateManifestWithFiles`, behind `argocd app diff --local --server-side-generate`): a
    /// gzip'd tar of a directory, unpacked into a workspace of its own by the archive rules (no
    /// absolute paths, `..` or links leading out; at most [`RenderConfig::max_repo_size`] bytes),
    /// rendered with the source's settings — `path` inside it, a chart source's chart being the
    /// files — as revision `streamed`, as Argo CD's. Not cached: an upload is rendered once.
    pub async fn render_archive(
        &self,
        app: &AppContext,
        source: &ApplicationSource,
        archive: Vec<u8>,
    ) -> Result<(SourceType, Arc<Vec<Value>>), RenderError> {
        let fail = |kind| RenderError::new(source.describe(), kind);
        let ws = Workspace::empty(&self.config.work_dir).map_err(fail)?;
        let (dest, max_size) = (ws.repo.clone(), self.config.max_repo_size);
        tokio::task::spawn_blocking(move || {
            let data = flate2::read::GzDecoder::new(archive.as_slice());
            crate::archive::unpack(data, &dest, max_size, true)
        })
        .await
        .unwrap_or_else(|err| Err(err.to_string()))
        .map_err(|err| fail(ErrorKind::Invalid(format!("the uploaded files: {err}"))))?;
        let mut local = source.clone();
        local.chart.clear();
        let mut budget = ManifestBudget::new(self.config.max_manifest_size);
        let result = self
            .render_uncached(app, &local, &ws.repo, "streamed", &BTreeMap::new(), budget)
            .await?;
        budget
            .spend(&result.1)
            .map_err(|kind| RenderError::new(source.describe(), kind))?;
        Ok(result)
    }

    /// Everything that decides a source's output, and who may be served it: the commit (or
    /// chart version), the access fingerprint of its repository, the options, the Application
    /// facts, referenced commits (with their access), tool versions and renderer configuration.
    async fn key(
        &self,
        app: &AppContext,
        source: &ApplicationSource,
        revision: &str,
        access: &str,
        refs: &Value,
    ) -> Key {
        Key::of(&json!({
            "renderer": env!("CARGO_PKG_VERSION"),
            "revision": revision,
            "access": access,
            "source": cache_view(source),
            "app": app,
            "refs": refs,
            "helm": self.tool_version(SourceType::Helm).await,
            "kustomize": self.tool_version(SourceType::Kustomize).await,
            "plugins": self.config.plugins,
            "valueFileSchemes": self.config.value_file_schemes,
            "allowLocalRemotes": self.config.allow_local_remotes,
        }))
    }

    /// What the source in `checkout` is, found as a render would find it but without rendering
    /// it: its type and, for a plugin, the plugin and the parameters it announces (Argo CD's
    /// `GetAppDetails`).
    pub async fn inspect_checkout(
        &self,
        app: &AppContext,
        source: &ApplicationSource,
        checkout: &Path,
        revision: &str,
    ) -> Result<SourceDetails, RenderError> {
        let fail = |kind| RenderError::new(source.describe(), kind);
        let found = self
            .locate(app, source, checkout, revision)
            .await
            .map_err(fail)?;
        let Some(plugin) = found.plugin else {
            return Ok(SourceDetails {
                kind: found.kind,
                plugin: None,
            });
        };
        // The dynamic command may write files, as `generate` may: it gets a private copy.
        let ws = Workspace::copy_of(&self.config.work_dir, &found.root).map_err(fail)?;
        let vars =
            plugin::plugin_env(&found.env, app, found.source.plugin.as_ref()).map_err(fail)?;
        let app_dir = ws.repo.join(&found.rel_app);
        let parameters = plugin::announcements(&self.runner, plugin, &ws, &app_dir, vars)
            .await
            .map_err(fail)?;
        Ok(SourceDetails {
            kind: found.kind,
            plugin: Some(PluginDetails {
                name: plugin.full_name(),
                parameters,
            }),
        })
    }

    /// The source in `checkout` as a render finds it: its directory (which may not leave the
    /// checkout), its `.argocd-source` overrides applied, its build environment, its type and
    /// plugin.
    async fn locate<'s>(
        &'s self,
        app: &AppContext,
        source: &'s ApplicationSource,
        checkout: &Path,
        revision: &str,
    ) -> Result<Located<'s>, ErrorKind> {
        let (root, app_dir) = source_dir(source, checkout)?;
        let source = overrides::apply(source, &root, &app_dir, &app.name)?;
        let env = BuildEnv::new(app, &source, revision);
        let (kind, plugin) = self.detect(app, &source, &root, &app_dir, &env).await?;
        let rel_app = app_dir
            .strip_prefix(&root)
            .expect("resolved inside root")
            .to_path_buf();
        Ok(Located {
            root,
            rel_app,
            source,
            env,
            kind,
            plugin,
        })
    }

    async fn render_uncached(
        &self,
        app: &AppContext,
        source: &ApplicationSource,
        checkout: &Path,
        revision: &str,
        refs: &BTreeMap<String, RefSource>,
        budget: ManifestBudget,
    ) -> Result<(SourceType, Arc<Vec<Value>>), RenderError> {
        let fail = |kind| RenderError::new(source.describe(), kind);
        let found = self
            .locate(app, source, checkout, revision)
            .await
            .map_err(fail)?;
        let objects = self
            .render_tree(
                app,
                &found.source,
                &found.root,
                &found.rel_app,
                found.kind,
                found.plugin,
                &found.env,
                refs,
                budget,
            )
            .await
            .map_err(fail)?;
        Ok((found.kind, Arc::new(objects)))
    }

    #[allow(clippy::too_many_arguments)]
    async fn render_tree(
        &self,
        app: &AppContext,
        source: &ApplicationSource,
        root: &Path,
        rel_app: &Path,
        kind: SourceType,
        plugin: Option<&PluginConfig>,
        env: &BuildEnv,
        refs: &BTreeMap<String, RefSource>,
        budget: ManifestBudget,
    ) -> Result<Vec<Value>, ErrorKind> {
        confine::check_symlinks(root)?;
        if kind == SourceType::Directory {
            return self
                .render_directory(root, &root.join(rel_app), source, env, budget)
                .await;
        }
        // Tools get a private copy: kustomize edits and helm dependency builds write files.
        let ws = Workspace::copy_of(&self.config.work_dir, root)?;
        let app_dir = ws.repo.join(rel_app);
        let objects = match kind {
            SourceType::Helm => {
                let refs = ref_roots(refs)?;
                helm::Template {
                    runner: &self.runner,
                    helm: &self.helm,
                    ws: &ws,
                    chart_dir: &app_dir,
                    root: &ws.repo,
                    refs: &refs,
                    opts: &source.helm.clone().unwrap_or_default(),
                    app,
                    env,
                    value_file_schemes: &self.config.value_file_schemes,
                    allow_local_dependencies: self.config.allow_local_remotes,
                }
                .run()
                .await?
            }
            SourceType::Kustomize => {
                let opts = source.kustomize.clone().unwrap_or_default();
                let (binary, build_options) = app.kustomize.select(&opts.version)?;
                let binary = binary.map(tool::locate);
                kustomize::Build {
                    runner: &self.runner,
                    kustomize: binary.as_deref().unwrap_or(&self.kustomize),
                    ws: &ws,
                    app_dir: &app_dir,
                    opts: &opts,
                    app,
                    env,
                    build_options,
                    allow_local_remotes: self.config.allow_local_remotes,
                }
                .run()
                .await?
            }
            SourceType::Plugin => {
                let plugin = plugin.expect("detect returns the plugin for Plugin sources");
                let vars = plugin::plugin_env(env, app, source.plugin.as_ref())?;
                plugin::run(&self.runner, plugin, &ws, &app_dir, vars).await?
            }
            SourceType::Directory => unreachable!("handled above"),
        };
        manifest::flatten_lists(objects, "rendered output")
    }

    /// A directory source: its YAML and JSON files read on a blocking thread, its Jsonnet files
    /// evaluated by Jsonnet workers, objects in path order; reading stops once `budget` (what
    /// earlier sources left) is spent.
    async fn render_directory(
        &self,
        root: &Path,
        app_dir: &Path,
        source: &ApplicationSource,
        env: &BuildEnv,
        mut budget: ManifestBudget,
    ) -> Result<Vec<Value>, ErrorKind> {
        let opts = source.directory.clone().unwrap_or_default();
        let max_file = self.config.max_manifest_file_size;
        let parts = {
            let (root, app_dir, opts) = (root.to_path_buf(), app_dir.to_path_buf(), opts.clone());
            tokio::task::spawn_blocking(move || {
                directory::read(&root, &app_dir, &opts, max_file, budget)
            })
            .await
            .map_err(|e| ErrorKind::Invalid(format!("directory render panicked: {e}")))??
        };
        let mut objects = Vec::new();
        // A private home for the workers, made at the first Jsonnet file.
        let mut home: Option<Workspace> = None;
        for part in parts {
            let found = match part {
                directory::Part::Objects(found) => found,
                directory::Part::Jsonnet(file) => {
                    let ws = match &mut home {
                        Some(ws) => ws,
                        None => home.insert(Workspace::empty(&self.config.work_dir)?),
                    };
                    let value = jsonnet::evaluate_in_worker(
                        &self.runner,
                        &self.jsonnet_worker,
                        &ws.home,
                        root,
                        app_dir,
                        &file,
                        &opts.jsonnet,
                        env,
                        max_file,
                    )
                    .await?;
                    directory::jsonnet_objects(value, &confine::display_rel(root, &file))?
                }
            };
            budget.spend(&found)?;
            objects.extend(found);
        }
        Ok(objects)
    }

    /// Renders a chart from a Helm repository or OCI registry, with the credential of its
    /// repository Secret; returns the chart version too.
    /// Pulls an OCI plain-manifest source's artifact and renders it as a checkout; its
    /// revision is the manifest's digest.
    async fn render_oci(
        &self,
        git: &RepoCache,
        app: &AppContext,
        source: &ApplicationSource,
        refs: &BTreeMap<String, RefSource>,
        budget: ManifestBudget,
    ) -> Result<(String, (SourceType, Arc<Vec<Value>>)), RenderError> {
        let fail = |kind| RenderError::new(source.describe(), kind);
        let ws = Workspace::empty(&self.config.work_dir).map_err(fail)?;
        let digest = oci_source::pull(
            &source.repo_url,
            &source.target_revision,
            &git.credential(&source.repo_url).unwrap_or_default(),
            git.tls_ca(&source.repo_url).as_deref(),
            &ws.repo,
            self.config.max_repo_size,
        )
        .await
        .map_err(fail)?;
        let result = self
            .render_uncached(app, source, &ws.repo, &digest, refs, budget)
            .await?;
        Ok((digest, result))
    }

    async fn render_chart(
        &self,
        git: &RepoCache,
        app: &AppContext,
        source: &ApplicationSource,
        refs: &BTreeMap<String, RefSource>,
    ) -> Result<(String, (SourceType, Arc<Vec<Value>>)), RenderError> {
        let fail = |kind| RenderError::new(source.describe(), kind);
        if source.plugin.is_some() || source.kustomize.is_some() || source.directory.is_some() {
            return Err(fail(ErrorKind::Invalid(
                "a chart source can only have helm options".into(),
            )));
        }
        let opts = source.helm.clone().unwrap_or_default();
        let ws = Workspace::empty(&self.config.work_dir).map_err(fail)?;
        let (pulled, chart_root) = self
            .pull_chart(git, source, &source.target_revision, &ws)
            .await
            .map_err(fail)?;
        let env = BuildEnv::new(app, source, &pulled.version);
        let objects = helm::Template {
            runner: &self.runner,
            helm: &self.helm,
            ws: &ws,
            chart_dir: &chart_root,
            root: &chart_root,
            refs: &ref_roots(refs).map_err(fail)?,
            opts: &opts,
            app,
            env: &env,
            value_file_schemes: &self.config.value_file_schemes,
            allow_local_dependencies: self.config.allow_local_remotes,
        }
        .run()
        .await
        .and_then(|o| manifest::flatten_lists(o, "rendered output"))
        .map_err(fail)?;
        Ok((pulled.version, (SourceType::Helm, Arc::new(objects))))
    }

    /// Pulls a chart source's chart at `version` (exact or a constraint) into `ws`, with the
    /// credential of its repository Secret; the chart and its canonical directory, whose links
    /// stay inside it.
    async fn pull_chart(
        &self,
        git: &RepoCache,
        source: &ApplicationSource,
        version: &str,
        ws: &Workspace,
    ) -> Result<(chart::Pulled, PathBuf), ErrorKind> {
        let pulled = chart::Pull {
            runner: &self.runner,
            helm: &self.helm,
            ws,
            repo_url: &source.repo_url,
            chart: &source.chart,
            version,
            pass_credentials: source.helm.as_ref().is_some_and(|h| h.pass_credentials),
            credential: git.credential(&source.repo_url).unwrap_or_default(),
            ca_pem: git.tls_ca(&source.repo_url),
        }
        .run()
        .await?;
        let chart_root = pulled
            .dir
            .canonicalize()
            .map_err(|e| ErrorKind::io(pulled.dir.display(), e))?;
        confine::check_symlinks(&chart_root)?;
        Ok((pulled, chart_root))
    }

    /// The `Chart.yaml` (as JSON) of a chart source's chart at `version` (exact or a
    /// constraint; the latest when empty), pulled as a render pulls it, with the credentials
    /// of project `project` (Argo CD's `GetRevisionChartDetails`).
    pub async fn chart_metadata(
        &self,
        project: &str,
        source: &ApplicationSource,
        version: &str,
    ) -> Result<Value, RenderError> {
        let fail = |kind| RenderError::new(source.describe(), kind);
        if !source.is_chart() {
            return Err(fail(ErrorKind::Invalid("the source names no chart".into())));
        }
        let git = self.git.for_project(project);
        let ws = Workspace::empty(&self.config.work_dir).map_err(fail)?;
        let (_, chart_root) = self
            .pull_chart(&git, source, version, &ws)
            .await
            .map_err(fail)?;
        let path = chart_root.join("Chart.yaml");
        let text =
            std::fs::read_to_string(&path).map_err(|e| fail(ErrorKind::io("Chart.yaml", e)))?;
        serde_yaml::from_str(&text)
            .map_err(|e| fail(ErrorKind::Invalid(format!("Chart.yaml: {e}"))))
    }

    /// The annotations of the OCI manifest `revision` (a tag or a digest) of the OCI repository
    /// `repo_url`, read from the registry with the credentials of project `project` (Argo CD's
    /// `GetOCIMetadata`).
    pub async fn oci_annotations(
        &self,
        project: &str,
        source: &ApplicationSource,
        repo_url: &str,
        revision: &str,
    ) -> Result<BTreeMap<String, String>, RenderError> {
        let git = self.git.for_project(project);
        oci_source::annotations(
            repo_url,
            revision,
            &git.credential(&source.repo_url).unwrap_or_default(),
            git.tls_ca(&source.repo_url).as_deref(),
        )
        .await
        .map_err(|kind| RenderError::new(source.describe(), kind))
    }

    /// The source type, as Argo CD picks it: the option block that is set; else a plugin whose
    /// discover rule matches; else `kustomization.yaml`; else `Chart.yaml`; else a directory.
    /// A named plugin (`<name>-<version>`, or `<name>` without a version) must also discover
    /// the source when it has a discover rule, as Argo CD's repo server requires.
    async fn detect<'a>(
        &'a self,
        app: &AppContext,
        source: &ApplicationSource,
        root: &Path,
        app_dir: &Path,
        env: &BuildEnv,
    ) -> Result<(SourceType, Option<&'a PluginConfig>), ErrorKind> {
        let discover = |candidates: Vec<&'a PluginConfig>| {
            self.discover_plugin(candidates, app, source, root, app_dir, env)
        };
        match source.explicit_type().map_err(ErrorKind::Invalid)? {
            Some(SourceType::Plugin) => {
                let name = source
                    .plugin
                    .as_ref()
                    .map(|p| p.name.as_str())
                    .unwrap_or_default();
                if name.is_empty() {
                    let found = discover(self.config.plugins.iter().collect()).await?;
                    let plugin = found.ok_or_else(|| {
                        ErrorKind::Invalid("no configured plugin discovers this source".into())
                    })?;
                    return Ok((SourceType::Plugin, Some(plugin)));
                }
                let plugin = self
                    .config
                    .plugins
                    .iter()
                    .find(|p| p.full_name() == name)
                    .ok_or_else(|| {
                        ErrorKind::Invalid(format!(
                            "plugin {name:?} is not configured (configured: {})",
                            self.plugin_names()
                        ))
                    })?;
                let has_rule = !matches!(plugin.discovery()?, plugin::Discovery::None);
                if has_rule && discover(vec![plugin]).await?.is_none() {
                    return Err(ErrorKind::Invalid(format!(
                        "plugin {name:?} does not discover this source (its discover rule \
                         matches nothing here)"
                    )));
                }
                Ok((SourceType::Plugin, Some(plugin)))
            }
            Some(kind) => Ok((kind, None)),
            None => {
                if let Some(plugin) = discover(self.config.plugins.iter().collect()).await? {
                    Ok((SourceType::Plugin, Some(plugin)))
                } else if kustomize::find_kustomization(app_dir).is_some() {
                    Ok((SourceType::Kustomize, None))
                } else if app_dir.join("Chart.yaml").is_file() {
                    Ok((SourceType::Helm, None))
                } else {
                    Ok((SourceType::Directory, None))
                }
            }
        }
    }

    fn plugin_names(&self) -> String {
        let names: Vec<String> = self.config.plugins.iter().map(|p| p.full_name()).collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    /// The first of `candidates` (in configuration order) whose discover rule matches. A
    /// `find.command` runs in a private copy of the repository with the plugin's environment.
    async fn discover_plugin<'p>(
        &self,
        candidates: Vec<&'p PluginConfig>,
        app: &AppContext,
        source: &ApplicationSource,
        root: &Path,
        app_dir: &Path,
        env: &BuildEnv,
    ) -> Result<Option<&'p PluginConfig>, ErrorKind> {
        let mut copy: Option<Workspace> = None;
        for plugin in candidates {
            let found = match plugin.discovery()? {
                plugin::Discovery::None => false,
                plugin::Discovery::Glob(glob) => plugin::glob_matches(&glob, app_dir),
                plugin::Discovery::Command(find) => {
                    let ws = match &mut copy {
                        Some(ws) => ws,
                        None => copy.insert(Workspace::copy_of(&self.config.work_dir, root)?),
                    };
                    let rel = app_dir.strip_prefix(root).expect("resolved inside root");
                    let vars = plugin::plugin_env(env, app, source.plugin.as_ref())?;
                    let dir = ws.repo.join(rel);
                    plugin::discovered_by_command(&self.runner, plugin, &find, ws, &dir, vars).await
                }
            };
            if found {
                return Ok(Some(plugin));
            }
        }
        Ok(None)
    }

    /// The version of the tool that renders `kind`, probed once; a failed probe is keyed as
    /// such (a render needing the tool then fails on its own).
    async fn tool_version(&self, kind: SourceType) -> String {
        let (cell, program) = match kind {
            SourceType::Helm => (&self.helm_version, &self.helm),
            SourceType::Kustomize => (&self.kustomize_version, &self.kustomize),
            // Directories are read in-process and Jsonnet is evaluated by this crate's own
            // worker (keyed by the renderer's version); plugins are keyed by their config.
            SourceType::Directory | SourceType::Plugin => return String::new(),
        };
        cell.get_or_init(|| async {
            let probe = async {
                let ws = Workspace::empty(&self.config.work_dir)?;
                match kind {
                    SourceType::Helm => helm::version(&self.runner, program, &ws).await,
                    _ => kustomize::version(&self.runner, program, &ws).await,
                }
            };
            probe.await.unwrap_or_else(|e| format!("unavailable: {e}"))
        })
        .await
        .clone()
    }
}

impl Renderer {
    /// A checkout of `sha`, within [`RenderConfig::max_repo_size`].
    async fn checkout(
        &self,
        git: &RepoCache,
        source: &ApplicationSource,
        sha: &str,
    ) -> Result<ferry_git::Checkout, RenderError> {
        let opts = CheckoutOptions {
            max_bytes: Some(self.config.max_repo_size),
            ..CheckoutOptions::default()
        };
        git.checkout(&source.repo_url, sha, &opts)
            .await
            .map_err(|e| git_error(source, e))
    }

    async fn checkouts_of_refs(
        &self,
        git: &RepoCache,
        sources: &[ApplicationSource],
        shas: &[Option<String>],
    ) -> Result<(Vec<ferry_git::Checkout>, BTreeMap<String, RefSource>), RenderError> {
        let mut checkouts = Vec::new();
        let mut refs = BTreeMap::new();
        for (source, sha) in sources.iter().zip(shas) {
            if let (false, Some(sha)) = (source.ref_name.is_empty(), sha) {
                let checkout = self.checkout(git, source, sha).await?;
                refs.insert(
                    source.ref_name.clone(),
                    RefSource {
                        root: checkout.path().to_path_buf(),
                        revision: sha.clone(),
                    },
                );
                checkouts.push(checkout);
            }
        }
        Ok((checkouts, refs))
    }
}

/// The commit `source`'s target revision names, resolved with `git`'s credentials.
async fn resolve(git: &RepoCache, source: &ApplicationSource) -> Result<String, RenderError> {
    let revision = if source.target_revision.is_empty() {
        "HEAD"
    } else {
        &source.target_revision
    };
    git.resolve(&source.repo_url, revision)
        .await
        .map(|r| r.sha)
        .map_err(|e| git_error(source, e))
}

/// The access fingerprint of `source`'s repository (Git, Helm repository or OCI registry) for
/// `git`'s project: what the render cache keys renders by, so they are served only to callers
/// with the same credential.
fn access(git: &RepoCache, source: &ApplicationSource) -> Result<String, RenderError> {
    git.access_fingerprint(&source.repo_url)
        .map_err(|e| git_error(source, e))
}

fn git_error(source: &ApplicationSource, error: ferry_git::GitError) -> RenderError {
    let kind = match error {
        ferry_git::GitError::CheckoutTooLarge { url, sha, limit } => {
            ErrorKind::RepositoryTooLarge { url, sha, limit }
        }
        other => ErrorKind::Git(other.to_string()),
    };
    RenderError::new(source.describe(), kind)
}

/// The parts of a source that decide its output: everything but the unresolved revision and
/// the display name (the resolved commit is keyed separately).
fn cache_view(source: &ApplicationSource) -> Value {
    let mut s = source.clone();
    s.target_revision.clear();
    s.name.clear();
    serde_json::to_value(s).expect("sources serialize")
}

fn ref_roots(refs: &BTreeMap<String, RefSource>) -> Result<BTreeMap<String, PathBuf>, ErrorKind> {
    refs.iter()
        .map(|(name, r)| {
            let root = r
                .root
                .canonicalize()
                .map_err(|e| ErrorKind::io(r.root.display(), e))?;
            confine::check_symlinks(&root)?;
            Ok((name.clone(), root))
        })
        .collect()
}
