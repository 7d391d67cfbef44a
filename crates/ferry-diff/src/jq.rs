//! A sandbox for jq programs written by users, evaluated with jaq: functions that reach
//! outside the program are refused, and a run that does not end in time is abandoned. Used
//! for `jqPathExpressions` here and by Argo Workflows' `valueFrom.jqFilter` in ferry-workflow.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jaq_core::data::JustLut;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::native::{bome, v};
use jaq_core::{Compiler, Ctx, Cv, RunPtr, ValXs, Vars, unwrap_valr};
use serde::Deserialize as _;
use serde_json::Value;

pub use crate::worker::Failure;
pub use jaq_json::Val;

type Filter = jaq_core::Filter<JustLut<Val>>;

/// One output of a program: a value, or the error it raised.
pub type Output = Result<Val, jaq_core::Error<Val>>;

/// Native functions a user's program has no business calling: they read the controller's
/// environment or input, stop it, or print values (possibly secret) to its stderr or log.
/// The last three back standard definitions (`debug`, `stderr`, `halt_error`) and are
/// replaced by [`silenced`] ones.
const DENIED: &[&str] = &[
    "env",
    "input",
    "inputs",
    "debug_empty",
    "stderr_empty",
    "halt",
];

/// Harmless stand-ins: printing prints nothing, halting is an error.
fn silenced() -> impl Iterator<Item = jaq_core::native::Fun<JustLut<Val>>> {
    fn print_nothing(_: Cv<'_, JustLut<Val>>) -> ValXs<'_, Val> {
        Box::new(std::iter::empty())
    }
    fn refuse(_: Cv<'_, JustLut<Val>>) -> ValXs<'_, Val> {
        bome(Err(jaq_core::Error::str("halt is not available")))
    }
    let stand_ins: [jaq_core::native::Filter<RunPtr<JustLut<Val>>>; 3] = [
        ("debug_empty", v(0), print_nothing),
        ("stderr_empty", v(0), print_nothing),
        ("halt", v(1), refuse),
    ];
    stand_ins
        .into_iter()
        .map(jaq_core::native::run::<JustLut<Val>>)
}

/// Why a program does not compile.
#[derive(Debug, PartialEq)]
pub enum CompileError {
    /// It does not parse: one description for each error.
    Syntax(Vec<String>),
    /// It calls what is not defined (or refused), e.g. "filter `env`".
    Undefined(Vec<String>),
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(errors) => {
                f.write_str("jq syntax error")?;
                errors.iter().try_for_each(|error| write!(f, ": {error}"))
            }
            Self::Undefined(names) => {
                f.write_str("jq error")?;
                names
                    .iter()
                    .try_for_each(|name| write!(f, ": undefined {name}"))
            }
        }
    }
}

impl std::error::Error for CompileError {}

/// A compiled program, cheap to clone.
#[derive(Clone)]
pub struct Program {
    filter: Arc<Filter>,
}

impl Program {
    pub fn compile(code: &str) -> Result<Self, CompileError> {
        let arena = Arena::default();
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let modules = Loader::new(defs)
            .load(&arena, File { code, path: () })
            .map_err(|errors| {
                CompileError::Syntax(errors.iter().map(|(_, error)| load_error(error)).collect())
            })?;
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs())
            .filter(|(name, _, _)| !DENIED.contains(name))
            .chain(silenced());
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| {
                CompileError::Undefined(
                    errors
                        .iter()
                        .flat_map(|(_, errs)| errs)
                        .map(|(name, undefined)| format!("{} `{name}`", undefined.as_str()))
                        .collect(),
                )
            })?;
        Ok(Self {
            filter: Arc::new(filter),
        })
    }

    /// Runs the program over `input` on a worker thread and hands its outputs to `read`.
    /// Waits `timeout` at most: a runaway program must not block the caller (its worker is
    /// abandoned).
    pub fn run<T: Send + 'static>(
        &self,
        input: Val,
        timeout: Duration,
        read: impl FnOnce(&mut dyn Iterator<Item = Output>) -> T + Send + 'static,
    ) -> Result<T, Failure> {
        let filter = Arc::clone(&self.filter);
        crate::worker::run(
            move || {
                let ctx = Ctx::<JustLut<Val>>::new(&filter.lut, Vars::new([]));
                read(&mut filter.id.run((ctx, input)).map(unwrap_valr))
            },
            timeout,
        )
    }
}

/// Converts a document into a program's input.
pub fn input(doc: &Value) -> Result<Val, serde_json::Error> {
    Val::deserialize(doc)
}

fn load_error(error: &jaq_core::load::Error<&str>) -> String {
    use jaq_core::load::Error;
    match error {
        Error::Io(errors) => errors
            .iter()
            .map(|(_, e)| e.clone())
            .collect::<Vec<_>>()
            .join(", "),
        Error::Lex(errors) => errors
            .iter()
            .map(|(expect, at)| format!("expected {} at `{}`", expect.as_str(), snippet(at)))
            .collect::<Vec<_>>()
            .join(", "),
        Error::Parse(errors) => errors
            .iter()
            .map(|(expect, at)| format!("expected {} at `{}`", expect.as_str(), snippet(at)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn snippet(at: &str) -> String {
    let snippet: String = at.chars().take(20).collect();
    if snippet.is_empty() {
        "end".into()
    } else {
        snippet
    }
}
