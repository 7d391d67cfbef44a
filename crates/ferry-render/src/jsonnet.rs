//! Jsonnet evaluation in-process with jrsonnet, with imports confined to the repository.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ferry_types::source::ApplicationSourceJsonnet;
use jrsonnet_evaluator::{
    AsPathLike, IStr, ImportResolver, ResolvePath, SourcePath, State, apply_tla,
    error::ErrorKind as JrError, tla::TlaArg, trace::PathResolver,
};
use jrsonnet_gcmodule::Acyclic;
use jrsonnet_ir::{SourceFifo, SourceFile};
use serde_json::Value;

use crate::confine;
use crate::env::BuildEnv;
use crate::error::ErrorKind;

/// Evaluates `file` with the source's TLAs, external variables and library paths. As in
/// Argo CD, imports are looked up next to the importing file, then in the application directory,
/// then in `libs` (relative to the repository root); variable values get `$ARGOCD_APP_*`
/// substitution. Nothing outside the canonical `root` can be imported.
pub(crate) fn evaluate(
    root: &Path,
    app_dir: &Path,
    file: &Path,
    opts: &ApplicationSourceJsonnet,
    env: &BuildEnv,
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

    let context =
        jrsonnet_stdlib::ContextInitializer::new(PathResolver::Relative(root.to_path_buf()));
    for var in &opts.ext_vars {
        let value = env.subst(&var.value);
        if var.code {
            context
                .add_ext_code(&var.name, value)
                .map_err(|e| err(format!("extVar {}: {e}", var.name)))?;
        } else {
            context.add_ext_str(var.name.as_str().into(), value.into());
        }
    }
    let mut builder = State::builder();
    builder
        .context_initializer(context)
        .import_resolver(ConfinedImporter {
            root: root.to_path_buf(),
            app_dir: app_dir.to_path_buf(),
            jpaths,
        });
    let state = builder.build();
    let _entered = state.enter();

    // IStr is an interned string: its hash never changes (jrsonnet's own API takes this map).
    #[allow(clippy::mutable_key_type)]
    let tlas: HashMap<IStr, TlaArg> = opts
        .tlas
        .iter()
        .map(|t| {
            let value = env.subst(&t.value);
            let arg = if t.code {
                TlaArg::InlineCode(value)
            } else {
                TlaArg::String(value.into())
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

/// Resolves imports like jsonnet's file importer, but only to regular files inside `root`.
#[derive(Acyclic)]
struct ConfinedImporter {
    root: PathBuf,
    app_dir: PathBuf,
    jpaths: Vec<PathBuf>,
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
             extVars: [{name: region, value: eu}, {name: scale, value: '10', code: true}, {name: app, value: '$ARGOCD_APP_NAME'}]\n\
             libs: [vendor]\n",
        );
        let env = BuildEnv(vec![("ARGOCD_APP_NAME".into(), "web".into())]);
        let v = evaluate(&root, &root.join("app"), &file, &o, &env).unwrap();
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
            let err = evaluate(
                &root,
                &root.join("app"),
                &file,
                &opts("{}"),
                &BuildEnv::default(),
            )
            .unwrap_err();
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
            &BuildEnv::default(),
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
        let err = evaluate(
            &root,
            &root.join("app"),
            &file,
            &opts("{}"),
            &BuildEnv::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("app/bad.jsonnet: jsonnet: "),
            "{err}"
        );
        assert!(err.to_string().contains("boom"), "{err}");
    }
}
