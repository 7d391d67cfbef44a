//! A pod's artifacts: the inputs the init container fetches into the `input-artifacts`
//! emptyDir (the main container mounts each at its path, as upstream's), and the outputs the
//! main container's executor packs and uploads after the command succeeded. The controller
//! hands over a [`Plan`] as JSON in [`PLAN_ENV`].

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::archive;
use crate::git::GitSource;
use crate::s3::{self, Location};

/// The environment variable holding the container's [`Plan`].
pub const PLAN_ENV: &str = "FERRY_ARTIFACTS";
/// Where the init container puts input artifacts, one entry per artifact name.
pub const INPUTS_DIR: &str = "/var/run/ferry/inputs";

/// What to fetch before the command, or upload after it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Input>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<Output>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub name: String,
    pub source: Source,
    /// Kept as downloaded even if it is a tar.gz (`archive: none`).
    #[serde(default)]
    pub archive_none: bool,
    /// A missing object is skipped.
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    S3(Location),
    /// Inline content.
    Raw(String),
    /// A clone of a Git repository.
    Git(GitSource),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    pub name: String,
    /// The file or directory in the main container.
    pub path: String,
    /// Where it goes (its key included).
    pub location: Location,
    /// Uploaded as is (a file) instead of as a tar.gz.
    #[serde(default)]
    pub archive_none: bool,
    #[serde(default)]
    pub optional: bool,
}

impl Plan {
    /// The plan in [`PLAN_ENV`], if any.
    pub fn from_env() -> Result<Option<Plan>, String> {
        match std::env::var(PLAN_ENV) {
            Err(_) => Ok(None),
            Ok(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|err| format!("{PLAN_ENV}: {err}")),
        }
    }

    /// The environment variables the plan names (credentials), to keep from the command.
    pub fn secret_variables(&self) -> Vec<String> {
        let locations = self
            .inputs
            .iter()
            .filter_map(|i| match &i.source {
                Source::S3(location) => Some(location),
                Source::Raw(_) | Source::Git(_) => None,
            })
            .chain(self.outputs.iter().map(|o| &o.location));
        let git = self.inputs.iter().filter_map(|i| match &i.source {
            Source::Git(git) => Some(git),
            _ => None,
        });
        locations
            .flat_map(|l| [&l.access_key_env, &l.secret_key_env])
            .flatten()
            .chain(git.flat_map(GitSource::secret_variables))
            .cloned()
            .collect()
    }

    /// Fetches every input into `dir`/<name>, unpacking tar.gz archives.
    pub fn load_inputs(&self, dir: &Path) -> Result<(), String> {
        for input in &self.inputs {
            let dest = dir.join(&input.name);
            let failed = |err: String| format!("input artifact {}: {err}", input.name);
            match &input.source {
                Source::Raw(data) => fs::write(&dest, data).map_err(|e| failed(e.to_string()))?,
                Source::Git(git) => {
                    if let Some(commit) = git.clone_into(&dest).map_err(failed)? {
                        eprintln!("input artifact {}: checked out {commit}", input.name);
                    }
                }
                Source::S3(location) => {
                    let download = dir.join(format!(".{}.download", input.name));
                    match location.get(&download) {
                        Ok(()) => {}
                        Err(s3::Error::NotFound(_)) if input.optional => continue,
                        Err(err) => return Err(failed(err.to_string())),
                    }
                    if !input.archive_none && archive::is_gzip(&download).map_err(failed)? {
                        archive::unpack(&download, &dest).map_err(failed)?;
                        fs::remove_file(&download).map_err(|e| failed(e.to_string()))?;
                    } else {
                        fs::rename(&download, &dest).map_err(|e| failed(e.to_string()))?;
                    }
                }
            }
            // The main container may run as another user than the init container.
            make_readable(&dest).map_err(failed)?;
        }
        Ok(())
    }

    /// Packs and uploads every output; returns the key each one went to. `scratch` holds the
    /// archives meanwhile.
    pub fn save_outputs(&self, scratch: &Path) -> Result<BTreeMap<String, String>, String> {
        let mut saved = BTreeMap::new();
        for output in &self.outputs {
            let failed = |err: String| format!("output artifact {}: {err}", output.name);
            let path = PathBuf::from(&output.path);
            if !path.exists() {
                if output.optional {
                    continue;
                }
                return Err(failed(format!("{} does not exist", output.path)));
            }
            if output.archive_none {
                if path.is_dir() {
                    return Err(failed(format!(
                        "{} is a directory: archive none uploads files only yet",
                        output.path
                    )));
                }
                output
                    .location
                    .put(&path)
                    .map_err(|e| failed(e.to_string()))?;
            } else {
                let packed = scratch.join(format!("{}.tgz", output.name));
                archive::tar_gz(&path, &packed).map_err(failed)?;
                let put = output.location.put(&packed);
                let _ = fs::remove_file(&packed);
                put.map_err(|e| failed(e.to_string()))?;
            }
            saved.insert(output.name.clone(), output.location.key.clone());
        }
        Ok(saved)
    }
}

fn make_readable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if metadata.is_symlink() {
        return Ok(());
    }
    let mode = metadata.permissions().mode() | if metadata.is_dir() { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if metadata.is_dir() {
        for entry in fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))? {
            let entry = entry.map_err(|e| format!("{}: {e}", path.display()))?;
            make_readable(&entry.path())?;
        }
    }
    Ok(())
}
