//! Argo CD's parameter override files: `.argocd-source.yaml`, then `.argocd-source-<app>.yaml`,
//! in the source's directory (the latter is Argo CD Image Updater's default git write-back
//! target) are merged into the Application's source as JSON merge patches (RFC 7386), as
//! Argo CD's repo server does; the repository, path, chart and revision stay the Application's.
//! The files are read from the checkout, never through a symlink leading out of it.

use std::borrow::Cow;
use std::path::Path;

use ferry_types::source::ApplicationSource;

use crate::confine;
use crate::error::ErrorKind;

/// `source` with the override files of `app_dir` (inside the canonical `root`) merged in.
pub(crate) fn apply<'a>(
    source: &'a ApplicationSource,
    root: &Path,
    app_dir: &Path,
    app_name: &str,
) -> Result<Cow<'a, ApplicationSource>, ErrorKind> {
    let mut names = vec![".argocd-source.yaml".to_owned()];
    if !app_name.is_empty() {
        names.push(format!(".argocd-source-{app_name}.yaml"));
    }
    let mut merged: Option<serde_json::Value> = None;
    for name in names {
        let path = confine::resolve(root, app_dir, &name, "parameter override file")?;
        if !path.is_file() {
            continue;
        }
        let invalid = |e: String| ErrorKind::Invalid(format!("{name}: {e}"));
        let text = std::fs::read_to_string(&path).map_err(|e| ErrorKind::io(&name, e))?;
        let patch: serde_json::Value =
            serde_yaml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let doc = match &mut merged {
            Some(doc) => doc,
            None => {
                merged.insert(serde_json::to_value(source).map_err(|e| invalid(e.to_string()))?)
            }
        };
        json_patch::merge(doc, &patch);
    }
    let Some(merged) = merged else {
        return Ok(Cow::Borrowed(source));
    };
    let mut merged: ApplicationSource = serde_json::from_value(merged)
        .map_err(|e| ErrorKind::Invalid(format!("parameter override files: {e}")))?;
    // Only the tools' options may be overridden.
    merged.repo_url.clone_from(&source.repo_url);
    merged.path.clone_from(&source.path);
    merged.chart.clone_from(&source.chart);
    merged.target_revision.clone_from(&source.target_revision);
    Ok(Cow::Owned(merged))
}
