//! What every edit returns ([`Edited`], [`Change`]) and its error type, plus the one way edits
//! reach files ([`edit_file`]: read, edit, write back only when something changed).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::reference::ReferenceError;

/// One value an edit changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Where, readable: `images[nginx].newTag`, `image.tag`, `Deployment/web: containers[app].image`.
    pub location: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_owned());
        write!(
            f,
            "{}: {} -> {}",
            self.location,
            show(&self.old),
            show(&self.new)
        )
    }
}

/// The text after an edit and what changed in it; no changes means the text is the input's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edited {
    pub text: String,
    pub changes: Vec<Change>,
}

impl Edited {
    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("not valid YAML: {0}")]
    InvalidYaml(String),
    #[error("{path}: {reason}")]
    Shape { path: String, reason: String },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("{0}")]
    Invalid(String),
}

impl EditError {
    pub(crate) fn shape(path: impl Into<String>, reason: impl Into<String>) -> Self {
        EditError::Shape {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// An edit of one file that failed, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{}: {source}", path.display())]
    Edit { path: PathBuf, source: EditError },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Run `edit` over the text of `path` (a missing file reads as empty when `create` is true) and
/// write the result back only when it changed something. The file is replaced atomically (a
/// sibling temporary file renamed over it), keeping its permissions.
pub fn edit_file(
    path: &Path,
    create: bool,
    edit: impl FnOnce(&str) -> Result<Edited, EditError>,
) -> Result<Edited, FileError> {
    let io = |source| FileError::Io {
        path: path.to_owned(),
        source,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(e)),
    };
    let edited = edit(&text).map_err(|source| FileError::Edit {
        path: path.to_owned(),
        source,
    })?;
    if edited.changed() && edited.text != text {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        let mut scratch = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        std::io::Write::write_all(&mut scratch, edited.text.as_bytes()).map_err(io)?;
        if let Ok(meta) = std::fs::metadata(path) {
            scratch
                .as_file()
                .set_permissions(meta.permissions())
                .map_err(io)?;
        }
        scratch.persist(path).map_err(|e| io(e.error))?;
    }
    Ok(edited)
}
