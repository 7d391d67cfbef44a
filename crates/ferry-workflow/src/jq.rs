//! `valueFrom.jqFilter` of a resource template's output, evaluated with jaq as upstream's gojq:
//! every output on a line of its own (strings bare, other values as JSON), trimmed.

use std::fmt::Write as _;
use std::time::Duration;

use jaq_core::data::JustLut;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::native::{bome, v};
use jaq_core::{Compiler, Ctx, Cv, RunPtr, ValXs, Vars, unwrap_valr};
use jaq_json::Val;
use serde::Deserialize as _;
use serde_json::Value;

/// Native functions a filter in a workflow has no business calling: they read the
/// controller's environment or input, stop it, or print to its stderr.
const DENIED: &[&str] = &[
    "env",
    "input",
    "inputs",
    "debug_empty",
    "stderr_empty",
    "halt",
];

/// Harmless stand-ins for the last three (the standard `debug`, `stderr` and `halt_error`
/// need them): printing prints nothing, halting is an error.
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

/// How long a filter may run: it runs in the controller, so a runaway one must not hold a
/// reconcile forever (its thread is abandoned).
const TIMEOUT: Duration = Duration::from_secs(5);

/// The filter's outputs over `input`, as upstream writes them.
pub fn render(filter: &str, input: &Value) -> Result<String, String> {
    let arena = Arena::default();
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let modules = Loader::new(defs)
        .load(
            &arena,
            File {
                code: filter,
                path: (),
            },
        )
        .map_err(|errors| format!("jq syntax error in {filter:?} ({} errors)", errors.len()))?;
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs())
        .filter(|(name, _, _)| !DENIED.contains(name))
        .chain(silenced());
    let compiled = Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errors| {
            let mut message = String::from("jq error");
            for (name, undefined) in errors.iter().flat_map(|(_, errs)| errs) {
                let _ = write!(message, ": undefined {} `{name}`", undefined.as_str());
            }
            message
        })?;
    let input = Val::deserialize(input).map_err(|err| err.to_string())?;
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let ctx = Ctx::<JustLut<Val>>::new(&compiled.lut, Vars::new([]));
        let mut out = String::new();
        for value in compiled.id.run((ctx, input)).map(unwrap_valr) {
            match value {
                Ok(Val::TStr(bytes) | Val::BStr(bytes)) => {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
                Ok(other) => {
                    let _ = write!(out, "{other}");
                }
                Err(err) => {
                    let _ = send.send(Err(format!("jq error: {err}")));
                    return;
                }
            }
            out.push('\n');
        }
        let _ = send.send(Ok(out.trim().to_string()));
    });
    receive
        .recv_timeout(TIMEOUT)
        .map_err(|_| format!("jq filter {filter:?} did not finish in {TIMEOUT:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_as_upstream() {
        let object = json!({"metadata": {"name": "cm", "labels": {"a": "1"}},
                            "data": {"x": "1", "y": "2"}});
        assert_eq!(render(".metadata.name", &object).unwrap(), "cm");
        assert_eq!(render(".metadata.labels", &object).unwrap(), r#"{"a":"1"}"#);
        assert_eq!(render(".data | keys[]", &object).unwrap(), "x\ny");
        assert_eq!(render(".data | length", &object).unwrap(), "2");
    }

    #[test]
    fn errors_and_denied_functions() {
        assert!(render(".metadata | select(", &json!({})).is_err());
        let err = render("env", &json!({})).unwrap_err();
        assert!(err.contains("`env`"), "{err}");
        assert!(render(".a[]", &json!({"a": 1})).is_err());
        let err = render("def f: f; f", &json!({})).unwrap_err();
        assert!(err.contains("did not finish"), "{err}");
    }
}
