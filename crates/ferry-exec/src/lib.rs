//! The executor of a workflow pod and its contract with the controller.
//!
//! An init container copies this binary into an emptyDir ([`DIR`]); the main container's
//! command is wrapped as `ferry-exec run [flags] -- <command>`. It runs the command (a script
//! template's source written to a file and appended to it), passes its output through, and
//! after it exits writes a [`Report`] as JSON to the container's termination message file.
//! The kubelet copies that file into the pod's status (`state.terminated.message`), next to the
//! exit code, so the controller reads outputs from the pod alone: no API access, no RBAC and no
//! sidecar in the pod. The price is the kubelet's limit of [`REPORT_LIMIT`] bytes.
//!
//! Artifacts ([`artifacts`]) move in the same two places: the init container fetches inputs,
//! the main container's executor uploads outputs once the command succeeded.

pub mod archive;
pub mod artifacts;
pub mod git;
pub mod s3;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use artifacts::Plan;

/// Where the init container puts the executor, in every container of the pod.
pub const DIR: &str = "/var/run/ferry";
/// The executor's path in the pod.
pub const BINARY: &str = "/var/run/ferry/ferry-exec";
/// The script file of a script template.
pub const SCRIPT: &str = "/var/run/ferry/script";
/// The environment variable holding a script template's source.
pub const SCRIPT_ENV: &str = "FERRY_SCRIPT";
/// The kubelet's default termination message file.
pub const TERMINATION_LOG: &str = "/dev/termination-log";
/// Most bytes the kubelet keeps of a termination message.
pub const REPORT_LIMIT: usize = 4096;

/// What the main container's run produced, as the controller reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Standard output, without trailing whitespace (asked for by scripts' `result`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Output parameters by name, read from their `valueFrom.path`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    /// Output artifacts uploaded, by name: the key each went to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub artifacts: BTreeMap<String, String>,
    /// Why outputs could not be collected; the node is then an Error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    /// The JSON written to the termination message: the report, or an error when it would
    /// not fit (the kubelet would cut it, and half a value is worse than none).
    pub fn to_message(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        if json.len() <= REPORT_LIMIT {
            return json;
        }
        let error = format!(
            "outputs are {} bytes, more than the {REPORT_LIMIT} a pod's termination message holds",
            json.len()
        );
        serde_json::to_string(&Report {
            error: Some(error),
            ..Report::default()
        })
        .unwrap_or_default()
    }
}

/// The arguments of `ferry-exec run`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    /// Capture standard output as the result.
    pub result: bool,
    /// Write the source in [`SCRIPT_ENV`] to this file and append it to the command.
    pub script: Option<PathBuf>,
    /// Output parameters: name and the file holding the value.
    pub outputs: Vec<(String, String)>,
    /// Where the report goes.
    pub report: PathBuf,
    pub command: Vec<OsString>,
    /// Output artifacts to upload after a success (from [`artifacts::PLAN_ENV`]).
    pub plan: Option<Plan>,
    /// Where output archives are packed before their upload.
    pub scratch: PathBuf,
}

impl Run {
    /// The command line that runs `command` this way, for the pod's main container.
    pub fn command_line(&self) -> Vec<String> {
        let mut line = vec![BINARY.to_string(), "run".into()];
        if self.result {
            line.push("--result".into());
        }
        if let Some(script) = &self.script {
            line.extend(["--script".into(), script.display().to_string()]);
        }
        for (name, path) in &self.outputs {
            line.extend(["--output".into(), format!("{name}={path}")]);
        }
        line.push("--".into());
        line.extend(
            self.command
                .iter()
                .map(|c| c.to_string_lossy().into_owned()),
        );
        line
    }

    /// Parses the arguments after `run`.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self, String> {
        let mut run = Run {
            report: PathBuf::from(TERMINATION_LOG),
            scratch: PathBuf::from(DIR),
            ..Run::default()
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |flag: &str| {
                args.next()
                    .map(|v| v.to_string_lossy().into_owned())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match arg.to_str() {
                Some("--result") => run.result = true,
                Some("--script") => run.script = Some(value("--script")?.into()),
                Some("--report") => run.report = value("--report")?.into(),
                Some("--scratch") => run.scratch = value("--scratch")?.into(),
                Some("--output") => {
                    let output = value("--output")?;
                    let (name, path) = output
                        .split_once('=')
                        .ok_or_else(|| format!("--output {output}: expected NAME=PATH"))?;
                    run.outputs.push((name.into(), path.into()));
                }
                Some("--") => {
                    run.command = args.collect();
                    break;
                }
                _ => return Err(format!("unknown argument {}", arg.to_string_lossy())),
            }
        }
        if run.command.is_empty() {
            return Err("no command after --".into());
        }
        Ok(run)
    }

    /// Runs the command, writes the report, and returns the exit code to exit with: the
    /// command's (128 + the signal if one killed it), 1 if it succeeded but its outputs could
    /// not be collected, 127 if it could not be started.
    pub fn execute(&self) -> i32 {
        let (code, report) = match self.run_command() {
            Ok((code, result)) => {
                let mut report = Report {
                    result,
                    ..Report::default()
                };
                match self.read_outputs() {
                    Ok(parameters) => report.parameters = parameters,
                    Err(error) => report.error = Some(error),
                }
                if let Some(plan) = self.plan.as_ref().filter(|_| code == 0)
                    && report.error.is_none()
                {
                    match plan.save_outputs(&self.scratch) {
                        Ok(saved) => report.artifacts = saved,
                        Err(error) => report.error = Some(error),
                    }
                }
                let code = if code == 0 && report.error.is_some() {
                    1
                } else {
                    code
                };
                (code, report)
            }
            Err(error) => (
                127,
                Report {
                    error: Some(error),
                    ..Report::default()
                },
            ),
        };
        if let Some(error) = &report.error {
            eprintln!("ferry-exec: {error}");
        }
        if let Err(err) = fs::write(&self.report, report.to_message()) {
            eprintln!("ferry-exec: writing {}: {err}", self.report.display());
        }
        code
    }

    fn run_command(&self) -> Result<(i32, Option<String>), String> {
        let mut command = Command::new(&self.command[0]);
        command.args(&self.command[1..]);
        if let Some(script) = &self.script {
            let source = std::env::var(SCRIPT_ENV)
                .map_err(|_| format!("{SCRIPT_ENV} holds no script source"))?;
            fs::write(script, source)
                .and_then(|()| fs::set_permissions(script, fs::Permissions::from_mode(0o755)))
                .map_err(|err| format!("writing the script to {}: {err}", script.display()))?;
            command.arg(script);
        }
        command.env_remove(SCRIPT_ENV);
        // The artifact repository's credentials are the executor's, not the command's.
        command.env_remove(artifacts::PLAN_ENV);
        for name in self.plan.iter().flat_map(Plan::secret_variables) {
            command.env_remove(name);
        }
        if self.result {
            command.stdout(Stdio::piped());
        }
        let shown = self.command[0].to_string_lossy().into_owned();
        let mut child = command
            .spawn()
            .map_err(|err| format!("starting {shown}: {err}"))?;
        // The output goes on to the container's log as it comes, and is kept for the result.
        let captured = child.stdout.take().map(|mut stdout| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                let mut chunk = [0u8; 8192];
                let mut out = std::io::stdout();
                while let Ok(n) = stdout.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    let _ = out.write_all(&chunk[..n]);
                    let _ = out.flush();
                    if kept.len() <= REPORT_LIMIT {
                        kept.extend_from_slice(&chunk[..n]);
                    }
                }
                kept
            })
        });
        let status = child
            .wait()
            .map_err(|err| format!("waiting for {shown}: {err}"))?;
        let result = captured
            .map(|reader| reader.join().unwrap_or_default())
            .map(|bytes| String::from_utf8_lossy(&bytes).trim_end().to_string());
        let code = status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(1);
        Ok((code, result))
    }

    fn read_outputs(&self) -> Result<BTreeMap<String, String>, String> {
        self.outputs
            .iter()
            .map(|(name, path)| {
                fs::read_to_string(Path::new(path))
                    .map(|value| (name.clone(), value.trim_end().to_string()))
                    .map_err(|err| format!("output parameter {name}: reading {path}: {err}"))
            })
            .collect()
    }
}

/// `ferry-exec init DEST`: copies this binary to `dest` (in the shared emptyDir), then
/// fetches the input artifacts of `plan` into `inputs`. A failure is also written to `report`
/// (the init container's termination message), for the controller to show.
#[derive(Debug, Clone)]
pub struct Init {
    pub dest: PathBuf,
    pub inputs: PathBuf,
    pub report: PathBuf,
    pub plan: Option<Plan>,
}

impl Init {
    pub fn execute(&self) -> Result<(), String> {
        let result = self.install().and_then(|()| match &self.plan {
            Some(plan) => plan.load_inputs(&self.inputs),
            None => Ok(()),
        });
        if let Err(error) = &result {
            let _ = fs::write(&self.report, error);
        }
        result
    }

    fn install(&self) -> Result<(), String> {
        let me = std::env::current_exe().map_err(|err| format!("finding myself: {err}"))?;
        let dest = &self.dest;
        fs::copy(&me, dest)
            .and_then(|_| fs::set_permissions(dest, fs::Permissions::from_mode(0o755)))
            .map_err(|err| format!("copying {} to {}: {err}", me.display(), dest.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, result: bool, outputs: &[(&str, &str)], command: &[&str]) -> Run {
        Run {
            result,
            script: None,
            outputs: outputs
                .iter()
                .map(|(n, p)| (n.to_string(), dir.join(p).display().to_string()))
                .collect(),
            report: dir.join("report"),
            command: command.iter().map(OsString::from).collect(),
            plan: None,
            scratch: dir.to_path_buf(),
        }
    }

    fn report(dir: &Path) -> Report {
        serde_json::from_str(&fs::read_to_string(dir.join("report")).unwrap()).unwrap()
    }

    #[test]
    fn result_and_output_parameters_reach_the_report() {
        let dir = tempfile::tempdir().unwrap();
        let script = format!("echo heads; echo -n 42 > {}/answer", dir.path().display());
        let code = run(
            dir.path(),
            true,
            &[("answer", "answer")],
            &["sh", "-c", &script],
        )
        .execute();
        assert_eq!(code, 0);
        let report = report(dir.path());
        assert_eq!(report.result.as_deref(), Some("heads"));
        assert_eq!(report.parameters["answer"], "42");
        assert_eq!(report.error, None);
    }

    #[test]
    fn the_commands_exit_code_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            run(dir.path(), false, &[], &["sh", "-c", "exit 3"]).execute(),
            3
        );
        assert_eq!(report(dir.path()), Report::default());
        let killed = run(dir.path(), false, &[], &["sh", "-c", "kill -9 $$"]).execute();
        assert_eq!(killed, 128 + 9);
    }

    #[test]
    fn a_missing_output_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let code = run(dir.path(), false, &[("x", "nowhere")], &["true"]).execute();
        assert_eq!(code, 1, "a success without its outputs is not a success");
        let error = report(dir.path()).error.unwrap();
        assert!(error.starts_with("output parameter x: reading "), "{error}");
    }

    #[test]
    fn a_command_that_cannot_start_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let code = run(dir.path(), false, &[], &["/no/such/binary"]).execute();
        assert_eq!(code, 127);
        let error = report(dir.path()).error.unwrap();
        assert!(error.starts_with("starting /no/such/binary: "), "{error}");
    }

    #[test]
    fn an_oversized_report_becomes_an_error() {
        let report = Report {
            result: Some("x".repeat(REPORT_LIMIT)),
            ..Report::default()
        };
        let message = report.to_message();
        assert!(message.len() <= REPORT_LIMIT);
        assert!(message.contains("more than the 4096"), "{message}");
    }

    #[test]
    fn command_line_parses_back() {
        let run = Run {
            result: true,
            script: Some(SCRIPT.into()),
            outputs: vec![("out".into(), "/tmp/out".into())],
            report: TERMINATION_LOG.into(),
            command: vec!["sh".into()],
            plan: None,
            scratch: DIR.into(),
        };
        let line = run.command_line();
        assert_eq!(line[..2], [BINARY, "run"]);
        let parsed = Run::parse(line[2..].iter().map(OsString::from)).unwrap();
        assert_eq!(parsed, run);
    }
}
