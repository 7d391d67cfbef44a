use std::ffi::OsString;
use std::path::PathBuf;

use ferry_exec::artifacts::{INPUTS_DIR, Plan};
use ferry_exec::{Init, Run, TERMINATION_LOG};

/// `ferry-exec init DEST [--inputs DIR] [--report FILE]` (the init container) or
/// `ferry-exec run [flags] -- COMMAND...` (the main container); see the library's
/// documentation. Both read the artifact plan from the environment.
fn main() {
    let mut args = std::env::args_os().skip(1);
    let code = match args.next().as_deref().and_then(|a| a.to_str()) {
        Some("init") => match parse_init(args) {
            Ok(init) => match init.execute() {
                Ok(()) => 0,
                Err(err) => {
                    eprintln!("ferry-exec: {err}");
                    1
                }
            },
            Err(err) => {
                eprintln!("ferry-exec init: {err}");
                usage()
            }
        },
        Some("run") => match Run::parse(args).and_then(|run| {
            Ok(Run {
                plan: Plan::from_env()?,
                ..run
            })
        }) {
            Ok(run) => run.execute(),
            Err(err) => {
                eprintln!("ferry-exec run: {err}");
                2
            }
        },
        _ => usage(),
    };
    std::process::exit(code);
}

fn parse_init(args: impl Iterator<Item = OsString>) -> Result<Init, String> {
    let mut args = args.into_iter();
    let dest = args.next().ok_or("no destination")?;
    let mut init = Init {
        dest: dest.into(),
        inputs: INPUTS_DIR.into(),
        report: TERMINATION_LOG.into(),
        plan: Plan::from_env()?,
    };
    while let Some(flag) = args.next() {
        let value: PathBuf = args
            .next()
            .ok_or_else(|| format!("{} needs a value", flag.to_string_lossy()))?
            .into();
        match flag.to_str() {
            Some("--inputs") => init.inputs = value,
            Some("--report") => init.report = value,
            _ => return Err(format!("unknown argument {}", flag.to_string_lossy())),
        }
    }
    Ok(init)
}

fn usage() -> i32 {
    eprintln!(
        "usage: ferry-exec init DEST [--inputs DIR] [--report FILE] | ferry-exec run [--result] [--script FILE] [--output NAME=PATH]... [--report FILE] [--scratch DIR] -- COMMAND..."
    );
    2
}
