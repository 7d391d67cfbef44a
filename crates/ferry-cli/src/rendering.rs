//! What every command that renders sources or reads Git shares: ferry's cache directory, the
//! tool binaries, the Git mirror cache and the renderer built on it, and the flag syntax for
//! repositories and `key=value` pairs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use ferry_git::{Credentials, RepoCache};
use ferry_render::{JsonnetWorker, PluginConfig, RenderConfig, Renderer, parse_size};

/// The bounds of a render, as `ferry render` takes them (the controller has the same flags):
/// each render error over a bound names the flag that raises it.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Seconds any single tool (helm, kustomize, a plugin, a Jsonnet evaluation) may run.
    #[arg(long, default_value_t = 90)]
    pub tool_timeout: u64,
    /// Most a tool may write to stdout, and to stderr, before it is killed (bytes, or with a
    /// unit: Ki, Mi, Gi, k, M, G).
    #[arg(long, value_parser = parse_size, default_value = "128Mi", value_name = "SIZE")]
    pub max_tool_output: u64,
    /// Memory each tool process may map (its data limit, RLIMIT_DATA).
    #[arg(long, value_parser = parse_size, default_value = "2Gi", value_name = "SIZE")]
    pub max_tool_memory: u64,
    /// Largest manifest file (or Jsonnet file or import) a directory source reads.
    #[arg(long, value_parser = parse_size, default_value = "10Mi", value_name = "SIZE")]
    pub max_manifest_file_size: u64,
    /// Most rendered manifests of one app, all sources together, as compact JSON.
    #[arg(long, value_parser = parse_size, default_value = "64Mi", value_name = "SIZE")]
    pub max_manifest_size: u64,
    /// Most file contents a repository checkout may hold, submodules included.
    #[arg(long, value_parser = parse_size, default_value = "1Gi", value_name = "SIZE")]
    pub max_repo_size: u64,
}

impl Default for Limits {
    /// The renderer's defaults (what the flags default to).
    fn default() -> Self {
        Self {
            tool_timeout: RenderConfig::default().tool_timeout.as_secs(),
            max_tool_output: ferry_render::DEFAULT_MAX_TOOL_OUTPUT,
            max_tool_memory: ferry_render::DEFAULT_MAX_TOOL_MEMORY,
            max_manifest_file_size: ferry_render::DEFAULT_MAX_MANIFEST_FILE_SIZE,
            max_manifest_size: ferry_render::DEFAULT_MAX_MANIFEST_SIZE,
            max_repo_size: ferry_render::DEFAULT_MAX_REPO_SIZE,
        }
    }
}

impl Limits {
    fn apply(&self, config: &mut RenderConfig) {
        config.tool_timeout = Duration::from_secs(self.tool_timeout);
        config.max_tool_output = self.max_tool_output;
        config.max_tool_memory = self.max_tool_memory;
        config.max_manifest_file_size = self.max_manifest_file_size;
        config.max_manifest_size = self.max_manifest_size;
        config.max_repo_size = self.max_repo_size;
    }
}

/// ferry's cache directory: `$FERRY_CACHE_DIR`, else `$XDG_CACHE_HOME/ferry`, else `~/.cache/ferry`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FERRY_CACHE_DIR") {
        return dir.into();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("ferry")
}

/// The Git mirror cache under ferry's cache directory, shared by every command.
pub fn repo_cache(credentials: Credentials) -> Arc<RepoCache> {
    Arc::new(RepoCache::new(cache_dir().join("repos"), credentials))
}

/// A renderer using the tool binaries found by [`find_tool`], within `limits`, evaluating
/// Jsonnet in this binary run as the worker (`main` hands such runs to it).
/// `allow_local_remotes` lets kustomize remote targets and Helm dependencies read local
/// repositories and directories (`ferry render --allow-local-remotes`); nothing else sets it.
pub fn renderer(
    git: Arc<RepoCache>,
    plugins: Vec<PluginConfig>,
    limits: &Limits,
    allow_local_remotes: bool,
) -> Renderer {
    let cache_dir = cache_dir();
    let mut config = RenderConfig {
        helm: find_tool("helm", "FERRY_HELM", &cache_dir),
        kustomize: find_tool("kustomize", "FERRY_KUSTOMIZE", &cache_dir),
        jsonnet_worker: JsonnetWorker::this_executable(),
        plugins,
        allow_local_remotes,
        ..RenderConfig::default()
    };
    limits.apply(&mut config);
    Renderer::new(git, config)
}

/// A tool binary: `$<env>`, else on `PATH`, else in ferry's toolchain cache.
fn find_tool(name: &str, env: &str, cache_dir: &Path) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return p.into();
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .any(|c| c.is_file())
        })
        .unwrap_or(false);
    let cached = cache_dir.join("toolchain/bin").join(name);
    if !on_path && cached.is_file() {
        cached
    } else {
        name.into()
    }
}

/// A URL as given, or a local Git repository path turned into a `file://` URL.
pub fn repo_url(repo: &str) -> anyhow::Result<String> {
    if is_url(repo) {
        return Ok(repo.to_string());
    }
    let path = Path::new(repo);
    if !path.exists() {
        bail!("--repo {repo}: not a URL and no such local path");
    }
    local_repo_url(path).with_context(|| format!("--repo {repo}"))
}

/// Whether a repository argument is a URL (`scheme://` or scp-style `user@host:path`) rather
/// than a local path.
pub fn is_url(repo: &str) -> bool {
    repo.contains("://") || repo.starts_with("git@")
}

/// The `file://` URL of a local Git repository (work tree or bare).
pub fn local_repo_url(path: &Path) -> anyhow::Result<String> {
    let path = path.canonicalize()?;
    let is_worktree = path.join(".git").exists();
    let is_bare = path.join("HEAD").is_file() && path.join("objects").is_dir();
    if !is_worktree && !is_bare {
        bail!("{} is not a Git repository", path.display());
    }
    Ok(format!("file://{}", path.display()))
}

/// `KEY=VALUE` split at the first `=`; the key must not be empty.
pub fn split_kv(kv: &str, what: &str) -> anyhow::Result<(String, String)> {
    match kv.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("{what}: expected NAME=VALUE, got {kv:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct WithLimits {
        #[command(flatten)]
        limits: Limits,
    }

    #[test]
    fn limit_flags_default_to_the_renderers_limits_and_take_units() {
        use clap::Parser;
        assert_eq!(
            WithLimits::try_parse_from(["x"]).unwrap().limits,
            Limits::default()
        );
        let parsed = WithLimits::try_parse_from([
            "x",
            "--max-manifest-size",
            "10M",
            "--max-repo-size",
            "512Mi",
            "--max-tool-memory",
            "1073741824",
        ])
        .unwrap()
        .limits;
        assert_eq!(parsed.max_manifest_size, 10_000_000);
        assert_eq!(parsed.max_repo_size, 512 << 20);
        assert_eq!(parsed.max_tool_memory, 1 << 30);
        let err = WithLimits::try_parse_from(["x", "--max-manifest-size", "lots"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not a size"), "{err}");
    }

    #[test]
    fn key_value_pairs_split_at_the_first_equals_sign() {
        assert_eq!(
            split_kv("a=b=c", "--label").unwrap(),
            ("a".to_string(), "b=c".to_string())
        );
        assert_eq!(
            split_kv("a=", "--label").unwrap(),
            ("a".to_string(), String::new())
        );
        let err = split_kv("=b", "--label").unwrap_err().to_string();
        assert_eq!(err, "--label: expected NAME=VALUE, got \"=b\"");
    }

    #[test]
    fn urls_stay_and_missing_paths_are_refused() {
        assert_eq!(
            repo_url("https://example.com/r.git").unwrap(),
            "https://example.com/r.git"
        );
        assert_eq!(
            repo_url("git@github.com:org/r.git").unwrap(),
            "git@github.com:org/r.git"
        );
        let err = repo_url("./no/such/dir").unwrap_err().to_string();
        assert!(err.contains("not a URL and no such local path"), "{err}");
    }
}
