//! Jsonnet evaluation with jrsonnet, with imports confined to the repository, in a worker
//! process the renderer can stop.
//!
//! An evaluation is arbitrary computation from the repository: it may loop without end or
//! build values until memory runs out, and jrsonnet cannot be interrupted. So the renderer never
//! evaluates in its own process: it starts the Jsonnet worker (the `ferry-jsonnet` binary, or a
//! ferry binary run with [`JSONNET_WORKER_ARG`]) through the tool runner, which bounds its time,
//! memory and output like any tool's and kills it when it passes a bound. The worker reads one
//! [`Request`] on stdin and writes one [`Reply`] on stdout.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ferry_types::source::ApplicationSourceJsonnet;
use jrsonnet_evaluator::{
    AsPathLike, IStr, ImportResolver, ResolvePath, SourcePath, State, apply_tla,
    error::ErrorKind as JrError, tla::TlaArg, trace::PathResolver,
};
use jrsonnet_gcmodule::Acyclic;
use jrsonnet_ir::{SourceFifo, SourceFile};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::confine;
use crate::env::BuildEnv;
use crate::error::ErrorKind;
use crate::tool::{Invocation, ToolRunner};

/// The first argument that makes a ferry binary act as the Jsonnet worker (see
/// [`run_jsonnet_worker_if_asked`]).
pub const JSONNET_WORKER_ARG: &str = "__ferry-jsonnet-worker";

/// The native stack of the evaluating thread: deep (but bounded, jrsonnet stops at 200 Jsonnet
/// frames) recursion needs more than a default thread has.
const WORKER_STACK: usize = 64 << 20;

/// The environment variable that tells the worker the pid of the process that started it.
const PARENT_ENV: &str = "FERRY_JSONNET_PARENT";

/// How the renderer starts its Jsonnet worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonnetWorker {
    /// The binary; a bare name is looked for next to the running executable, then in `PATH`.
    pub program: PathBuf,
    /// Arguments before the request (none for `ferry-jsonnet`).
    pub args: Vec<String>,
}

impl Default for JsonnetWorker {
    /// The `ferry-jsonnet` binary of this crate.
    fn default() -> Self {
        Self {
            program: "ferry-jsonnet".into(),
            args: Vec::new(),
        }
    }
}

impl JsonnetWorker {
    /// The running executable with [`JSONNET_WORKER_ARG`]: for binaries whose `main` calls
    /// [`run_jsonnet_worker_if_asked`] first, so they need no second binary next to them. It is
    /// started as `/proc/self/exe`, the very image that runs, even after its file was replaced
    /// (an upgrade in place) or removed, so the worker always speaks the renderer's protocol.
    pub fn this_executable() -> Self {
        let proc_exe = PathBuf::from("/proc/self/exe");
        Self {
            program: if proc_exe.exists() {
                proc_exe
            } else {
                std::env::current_exe().unwrap_or(proc_exe)
            },
            args: vec![JSONNET_WORKER_ARG.into()],
        }
    }

    /// The program to run: a bare name next to the running executable when there, else as
    /// found in `PATH`.
    pub(crate) fn locate(&self) -> Self {
        let mut located = self.clone();
        if self.program.components().count() == 1 {
            let sibling = std::env::current_exe()
                .ok()
                .and_then(|exe| Some(exe.parent()?.join(&self.program)))
                .filter(|p| p.is_file());
            located.program = sibling.unwrap_or_else(|| crate::tool::locate(&self.program));
        }
        located
    }
}

/// One evaluation, as the renderer sends it to the worker. Values are already substituted.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Request {
    /// Canonical checkout root; nothing outside it can be imported.
    pub root: PathBuf,
    pub app_dir: PathBuf,
    pub file: PathBuf,
    pub jsonnet: ApplicationSourceJsonnet,
    /// Largest file the evaluation may read (the file and its imports).
    pub max_file_size: u64,
}

/// The worker's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Reply {
    Value(Value),
    /// The evaluation failed: the error as [`evaluate`] returned it.
    Error(WireError),
}

/// The errors [`evaluate`] returns, as they cross the pipe.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum WireError {
    Jsonnet { file: String, message: String },
    Unsafe { path: String, reason: String },
    FileTooLarge { file: String, size: u64, limit: u64 },
    Other(String),
}

impl From<ErrorKind> for WireError {
    fn from(error: ErrorKind) -> Self {
        match error {
            ErrorKind::Jsonnet { file, message } => WireError::Jsonnet { file, message },
            ErrorKind::Unsafe { path, reason } => WireError::Unsafe { path, reason },
            ErrorKind::ManifestFileTooLarge { file, size, limit } => {
                WireError::FileTooLarge { file, size, limit }
            }
            other => WireError::Other(other.to_string()),
        }
    }
}

impl From<WireError> for ErrorKind {
    fn from(error: WireError) -> Self {
        match error {
            WireError::Jsonnet { file, message } => ErrorKind::Jsonnet { file, message },
            WireError::Unsafe { path, reason } => ErrorKind::Unsafe { path, reason },
            WireError::FileTooLarge { file, size, limit } => {
                ErrorKind::ManifestFileTooLarge { file, size, limit }
            }
            WireError::Other(message) => ErrorKind::Invalid(message),
        }
    }
}

/// Evaluates `file` in a Jsonnet worker started by `runner` (so with its timeout, output and
/// memory limits), with the source's TLAs, external variables (both after `$ARGOCD_APP_*`
/// substitution) and library paths; see [`evaluate`]. `home` is a private directory for the
/// worker.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn evaluate_in_worker(
    runner: &ToolRunner,
    worker: &JsonnetWorker,
    home: &Path,
    root: &Path,
    app_dir: &Path,
    file: &Path,
    opts: &ApplicationSourceJsonnet,
    env: &BuildEnv,
    max_file_size: u64,
) -> Result<Value, ErrorKind> {
    let shown = confine::display_rel(root, file);
    let mut jsonnet = opts.clone();
    for var in jsonnet.tlas.iter_mut().chain(jsonnet.ext_vars.iter_mut()) {
        var.value = env.subst(&var.value);
    }
    let request = Request {
        root: root.to_path_buf(),
        app_dir: app_dir.to_path_buf(),
        file: file.to_path_buf(),
        jsonnet,
        max_file_size,
    };
    let input = serde_json::to_vec(&request).map_err(|e| ErrorKind::Invalid(e.to_string()))?;
    let out = runner
        .run_with_input(
            Invocation {
                tool: format!("jsonnet {shown}"),
                program: &worker.program,
                args: worker.args.iter().map(OsString::from).collect(),
                cwd: home,
                home,
                env: vec![(PARENT_ENV.into(), std::process::id().to_string())],
            },
            Some(&input),
        )
        .await?;
    match serde_json::from_str(&out) {
        Ok(Reply::Value(value)) => Ok(value),
        Ok(Reply::Error(error)) => Err(error.into()),
        Err(e) => Err(ErrorKind::ToolFailed {
            tool: format!("jsonnet {shown}"),
            status: "ok".into(),
            stderr: format!("unreadable reply from the Jsonnet worker: {e}"),
        }),
    }
}

/// The Jsonnet worker: reads a [`Request`] on stdin, evaluates it and writes the [`Reply`] on
/// stdout; exits 0 when it could answer, 2 when the request was unreadable. Run by the
/// `ferry-jsonnet` binary, and by ferry binaries through [`run_jsonnet_worker_if_asked`].
pub fn jsonnet_worker_main() -> ! {
    exit_when_orphaned();
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("ferry jsonnet worker: unreadable request: {e}");
        std::process::exit(2);
    }
    let evaluation = std::thread::Builder::new()
        .name("jsonnet".into())
        .stack_size(WORKER_STACK)
        .spawn(move || jsonnet_worker_answer(&input));
    let reply = match evaluation.map(|thread| thread.join()) {
        Ok(Ok(Ok(reply))) => reply,
        Ok(Ok(Err(e))) => {
            eprintln!("ferry jsonnet worker: unreadable request: {e}");
            std::process::exit(2);
        }
        Ok(Err(_)) => {
            eprintln!("ferry jsonnet worker: the evaluation panicked");
            std::process::exit(3);
        }
        Err(e) => {
            eprintln!("ferry jsonnet worker: cannot start the evaluation: {e}");
            std::process::exit(3);
        }
    };
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(&reply)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(3);
    }
    std::process::exit(0);
}

/// Ends the worker once the process that started it is gone: only that process bounds an
/// evaluation's time, and an endless one left behind (its renderer killed) would spin forever.
fn exit_when_orphaned() {
    // Told by the starter, as it may be gone before the worker looks (then the worker's parent
    // is already the reaper, and a watch of that would never end).
    let parent = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(std::os::unix::process::parent_id);
    let watch = move || {
        while std::os::unix::process::parent_id() == parent {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        // Not `eprintln!`: its stderr was the gone starter's pipe, and a failed print panics
        // this thread, leaving the evaluation running.
        let _ = writeln!(
            std::io::stderr(),
            "ferry jsonnet worker: the process that started it is gone"
        );
        std::process::exit(4);
    };
    // Without the watch, the renderer's own bounds still apply.
    let _ = std::thread::Builder::new()
        .name("orphan-watch".into())
        .spawn(watch);
}

/// What the worker answers to one request (JSON in, JSON out), evaluated in the calling
/// thread, unbounded: the worker's own logic, public for the benchmark that compares it with a
/// worker round trip. Renders never call it.
#[doc(hidden)]
pub fn jsonnet_worker_answer(request: &[u8]) -> Result<Vec<u8>, String> {
    let request: Request = serde_json::from_slice(request).map_err(|e| e.to_string())?;
    let reply = match evaluate(
        &request.root,
        &request.app_dir,
        &request.file,
        &request.jsonnet,
        request.max_file_size,
    ) {
        Ok(value) => Reply::Value(value),
        Err(error) => Reply::Error(error.into()),
    };
    Ok(serde_json::to_vec(&reply).expect("replies serialize"))
}

/// Runs the Jsonnet worker instead of the program when the first argument is
/// [`JSONNET_WORKER_ARG`] (never returns then); call it first thing in `main` of a binary whose
/// renderer uses [`JsonnetWorker::this_executable`].
pub fn run_jsonnet_worker_if_asked() {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == JSONNET_WORKER_ARG)
    {
        jsonnet_worker_main();
    }
}

/// Evaluates `file` with the source's TLAs, external variables and library paths, in this
/// process: only the worker calls it. As in Argo CD, imports are looked up next to the
/// importing file, then in the application directory, then in `libs` (relative to the
/// repository root). Values are used as given (substituted by the caller). Nothing outside the
/// canonical `root` can be imported, and no file larger than `max_file_size` is read.
pub(crate) fn evaluate(
    root: &Path,
    app_dir: &Path,
    file: &Path,
    opts: &ApplicationSourceJsonnet,
    max_file_size: u64,
) -> Result<Value, ErrorKind> {
    let shown = confine::display_rel(root, file);
    let mut jpaths = vec![app_dir.to_path_buf()];
    for lib in &opts.libs {
        jpaths.push(confine::resolve(root, root, lib, "jsonnet library")?);
    }
    let err = |message: String| ErrorKind::Jsonnet {
        file: shown.clone(),
        message: message.trim_end().to_string(),
    };
    // The file itself first, so that its size is the error rather than a Jsonnet message.
    check_file_size(root, file, max_file_size)?;

    let context =
        jrsonnet_stdlib::ContextInitializer::new(PathResolver::Relative(root.to_path_buf()));
    for var in &opts.ext_vars {
        if var.code {
            context
                .add_ext_code(&var.name, var.value.clone())
                .map_err(|e| err(format!("extVar {}: {e}", var.name)))?;
        } else {
            context.add_ext_str(var.name.as_str().into(), var.value.as_str().into());
        }
    }
    let mut builder = State::builder();
    builder
        .context_initializer(context)
        .import_resolver(ConfinedImporter {
            root: root.to_path_buf(),
            app_dir: app_dir.to_path_buf(),
            jpaths,
            max_file_size,
        });
    let state = builder.build();
    let _entered = state.enter();

    // IStr is an interned string: its hash never changes (jrsonnet's own API takes this map).
    #[allow(clippy::mutable_key_type)]
    let tlas: HashMap<IStr, TlaArg> = opts
        .tlas
        .iter()
        .map(|t| {
            let arg = if t.code {
                TlaArg::InlineCode(t.value.clone())
            } else {
                TlaArg::String(t.value.as_str().into())
            };
            (t.name.as_str().into(), arg)
        })
        .collect();
    let value = state
        .import_resolved(SourcePath::new(SourceFile::new(file.to_path_buf())))
        .and_then(|v| apply_tla(&tlas, v))
        .map_err(|e| err(e.to_string()))?;
    serde_json::to_value(&value).map_err(|e| err(e.to_string()))
}

/// Fails with [`ErrorKind::ManifestFileTooLarge`] when `path` is larger than `limit`.
fn check_file_size(root: &Path, path: &Path, limit: u64) -> Result<(), ErrorKind> {
    let shown = confine::display_rel(root, path);
    let size = std::fs::metadata(path)
        .map_err(|e| ErrorKind::io(&shown, e))?
        .len();
    if size > limit {
        return Err(ErrorKind::ManifestFileTooLarge {
            file: shown,
            size,
            limit,
        });
    }
    Ok(())
}

/// Resolves imports like jsonnet's file importer, but only to regular files inside `root`.
#[derive(Acyclic)]
struct ConfinedImporter {
    root: PathBuf,
    app_dir: PathBuf,
    jpaths: Vec<PathBuf>,
    max_file_size: u64,
}

impl ConfinedImporter {
    fn candidate(&self, dir: &Path, rel: &Path) -> jrsonnet_evaluator::Result<Option<SourcePath>> {
        let joined = confine::normalize(&dir.join(rel));
        let escape = || {
            JrError::RuntimeError(
                format!("import {} resolves outside the repository", rel.display()).into(),
            )
        };
        if !joined.starts_with(&self.root) {
            return Err(escape().into());
        }
        match joined.canonicalize() {
            Ok(real) if !real.starts_with(&self.root) => Err(escape().into()),
            Ok(real) if real.is_file() => Ok(Some(SourcePath::new(SourceFile::new(real)))),
            Ok(_) => Err(JrError::RuntimeError(
                format!("import {} is not a file", rel.display()).into(),
            )
            .into()),
            Err(_) => Ok(None),
        }
    }
}

impl ImportResolver for ConfinedImporter {
    fn resolve_from(
        &self,
        from: &SourcePath,
        path: &dyn AsPathLike,
    ) -> jrsonnet_evaluator::Result<SourcePath> {
        let rel: &Path = match path.as_path() {
            ResolvePath::Str(s) => Path::new(s),
            ResolvePath::Path(p) => p,
        };
        if rel.is_absolute() {
            return Err(JrError::RuntimeError(
                format!(
                    "import {}: absolute import paths are not allowed",
                    rel.display()
                )
                .into(),
            )
            .into());
        }
        // Imports from a file are relative to it; from inline code (TLA/extVar code), to the app.
        let here = from
            .downcast_ref::<SourceFile>()
            .and_then(|f| f.path().parent())
            .unwrap_or(&self.app_dir);
        for dir in std::iter::once(here).chain(self.jpaths.iter().map(PathBuf::as_path)) {
            if let Some(found) = self.candidate(dir, rel)? {
                return Ok(found);
            }
        }
        Err(JrError::ImportFileNotFound(from.clone(), path.as_path().to_owned()).into())
    }

    fn load_file_contents(&self, resolved: &SourcePath) -> jrsonnet_evaluator::Result<Vec<u8>> {
        if let Some(f) = resolved.downcast_ref::<SourceFile>() {
            check_file_size(&self.root, f.path(), self.max_file_size)
                .map_err(|e| JrError::ImportIo(e.to_string()))?;
            std::fs::read(f.path())
                .map_err(|e| JrError::ImportIo(format!("{}: {e}", f.path().display())).into())
        } else if let Some(fifo) = resolved.downcast_ref::<SourceFifo>() {
            Ok(fifo.1.to_vec())
        } else {
            Err(JrError::RuntimeError(format!("cannot load {resolved}").into()).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMIT: u64 = 1 << 20;

    fn opts(yaml: &str) -> ApplicationSourceJsonnet {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn repo() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("repo");
        std::fs::create_dir_all(root.join("app")).unwrap();
        std::fs::create_dir_all(root.join("vendor/k")).unwrap();
        std::fs::write(
            root.join("vendor/k/k.libsonnet"),
            "{ cm(name):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name } } }",
        )
        .unwrap();
        std::fs::write(root.join("app/params.libsonnet"), "{ prefix: 'p-' }").unwrap();
        std::fs::write(d.path().join("outside.libsonnet"), "{ secret: 's' }").unwrap();
        let root = root.canonicalize().unwrap();
        (d, root)
    }

    #[test]
    fn tlas_ext_vars_libs_and_relative_imports() {
        let (_d, root) = repo();
        let file = root.join("app/main.jsonnet");
        std::fs::write(
            &file,
            "local k = import 'k/k.libsonnet'; local p = import 'params.libsonnet';\n\
             function(env, replicas) [k.cm(p.prefix + env + '-' + std.extVar('region')) + { data: { replicas: std.toString(replicas * std.extVar('scale')), app: std.extVar('app') } }]",
        )
        .unwrap();
        let o = opts(
            "tlas: [{name: env, value: prod}, {name: replicas, value: '1 + 2', code: true}]\n\
             extVars: [{name: region, value: eu}, {name: scale, value: '10', code: true}, {name: app, value: web}]\n\
             libs: [vendor]\n",
        );
        let v = evaluate(&root, &root.join("app"), &file, &o, LIMIT).unwrap();
        assert_eq!(
            v,
            json!([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p-prod-eu"},
                    "data": {"replicas": "30", "app": "web"}}])
        );
    }

    #[test]
    fn imports_cannot_leave_the_repository() {
        let (_d, root) = repo();
        let file = root.join("app/leak.jsonnet");
        for import in ["../../outside.libsonnet", "/etc/hostname"] {
            std::fs::write(&file, format!("import '{import}'")).unwrap();
            let err = evaluate(&root, &root.join("app"), &file, &opts("{}"), LIMIT).unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with("app/leak.jsonnet: jsonnet:"), "{msg}");
            assert!(
                msg.contains("outside the repository") || msg.contains("absolute import"),
                "{msg}"
            );
        }
        let err = evaluate(
            &root,
            &root.join("app"),
            &file,
            &opts("libs: ['../']"),
            LIMIT,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("jsonnet library resolves outside the repository"),
            "{err}"
        );
    }

    #[test]
    fn evaluation_errors_name_the_file() {
        let (_d, root) = repo();
        let file = root.join("app/bad.jsonnet");
        std::fs::write(&file, "{ a: error 'boom' }").unwrap();
        let err = evaluate(&root, &root.join("app"), &file, &opts("{}"), LIMIT).unwrap_err();
        assert!(
            err.to_string().starts_with("app/bad.jsonnet: jsonnet: "),
            "{err}"
        );
        assert!(err.to_string().contains("boom"), "{err}");
    }

    #[test]
    fn files_over_the_size_limit_are_not_read() {
        let (_d, root) = repo();
        let file = root.join("app/main.jsonnet");
        std::fs::write(&file, "{ data: importstr 'big.txt' }").unwrap();
        std::fs::write(root.join("app/big.txt"), "x".repeat(2048)).unwrap();
        let app = root.join("app");
        let err = evaluate(&root, &app, &file, &opts("{}"), 1024).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("app/main.jsonnet: jsonnet:"), "{msg}");
        assert!(
            msg.contains("app/big.txt: the file is 2 KiB, over the limit of 1 KiB for one manifest file (--max-manifest-file-size)"),
            "{msg}"
        );
        assert_eq!(
            evaluate(&root, &app, &file, &opts("{}"), 2048).unwrap(),
            json!({"data": "x".repeat(2048)})
        );
        // The file itself: the structured error.
        let err = evaluate(&root, &app, &file, &opts("{}"), 10).unwrap_err();
        assert!(
            matches!(&err, ErrorKind::ManifestFileTooLarge { file, size: 29, limit: 10 } if file == "app/main.jsonnet"),
            "{err}"
        );
    }

    #[test]
    fn errors_cross_the_pipe_unchanged() {
        for error in [
            ErrorKind::Jsonnet {
                file: "a.jsonnet".into(),
                message: "boom".into(),
            },
            ErrorKind::unsafe_path("../x", "jsonnet library resolves outside the repository"),
            ErrorKind::ManifestFileTooLarge {
                file: "a.jsonnet".into(),
                size: 20,
                limit: 10,
            },
        ] {
            let shown = error.to_string();
            let wire = serde_json::to_string(&Reply::Error(error.into())).unwrap();
            let Reply::Error(back) = serde_json::from_str(&wire).unwrap() else {
                panic!("{wire}")
            };
            assert_eq!(ErrorKind::from(back).to_string(), shown);
        }
    }
}
