//! Custom health checks in Lua, with Argo CD's script contract: the object is the global `obj`,
//! the script returns a table `{status = "...", message = "..."}`. Any failure (a Lua error, a
//! limit, a bad return value) is reported as `Unknown` with a message naming the script.

mod patterns;
mod sandbox;

use std::sync::Arc;

use mlua::{Lua, LuaOptions, LuaSerdeExt, StdLib};
use serde_json::Value;

use crate::status::{HealthCode, HealthStatus};
pub use sandbox::LuaLimits;
use sandbox::{Abort, Sandbox};

/// JSON `null` becomes `nil`, so `obj.status.x ~= nil` tests work the way they do in Argo CD;
/// `[]` and `{}` both become empty tables (`ipairs` and `#` work on either).
const TO_LUA: mlua::serde::SerializeOptions = mlua::serde::SerializeOptions::new()
    .serialize_none_to_null(false)
    .serialize_unit_to_null(false)
    .set_array_metatable(false);

/// A health script and the name its errors are reported under (its customization key or file).
#[derive(Clone, Debug)]
pub struct LuaScript {
    name: Arc<str>,
    source: Arc<str>,
}

/// Why a script gave no usable health.
#[derive(Debug, thiserror::Error)]
enum ScriptError {
    #[error("failed: {0}")]
    Lua(String),
    #[error("exceeded its budget of {0} Lua instructions")]
    Instructions(u64),
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("exceeded its memory limit of {0} bytes")]
    Memory(usize),
    #[error("returned {0} instead of a table like {{status = \"Healthy\", message = \"...\"}}")]
    NotATable(&'static str),
    #[error(
        "returned no status (expected one of Healthy, Suspended, Progressing, Missing, Degraded, Unknown)"
    )]
    NoStatus,
    #[error("returned an invalid health status: {0}")]
    InvalidStatus(crate::status::UnknownHealthCode),
    #[error("returned a non-string {field} ({kind})")]
    NotAString {
        field: &'static str,
        kind: &'static str,
    },
}

impl LuaScript {
    /// Compiles the script once to reject syntax errors early; nothing runs. `name` is what
    /// its errors are reported under.
    pub fn new(name: impl Into<Arc<str>>, source: impl Into<Arc<str>>) -> Result<Self, String> {
        let script = LuaScript {
            name: name.into(),
            source: source.into(),
        };
        let lua = Lua::new_with(StdLib::NONE, LuaOptions::default()).map_err(|e| e.to_string())?;
        lua.load(&*script.source)
            .set_name(script.chunk_name())
            .into_function()
            .map_err(|err| lua_message(&err))?;
        Ok(script)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the script on `obj` in a fresh sandbox.
    pub fn assess(&self, obj: &Value, limits: &LuaLimits) -> HealthStatus {
        self.run(obj, limits).unwrap_or_else(|err| {
            HealthStatus::unknown(format!("Lua health script {:?} {err}", &*self.name))
        })
    }

    fn chunk_name(&self) -> String {
        format!("={}", self.name)
    }

    fn run(&self, obj: &Value, limits: &LuaLimits) -> Result<HealthStatus, ScriptError> {
        let sandbox = Sandbox::new(limits).map_err(|err| ScriptError::Lua(lua_message(&err)))?;
        let outcome = self.call(&sandbox.lua, obj);
        match (sandbox.meter.aborted(), outcome) {
            (Some(Abort::Instructions(n)), _) => Err(ScriptError::Instructions(n)),
            (Some(Abort::Timeout(t)), _) => Err(ScriptError::Timeout(t)),
            (None, Ok(result)) => result,
            (None, Err(err)) if is_out_of_memory(&err) => {
                Err(ScriptError::Memory(limits.memory_bytes))
            }
            (None, Err(err)) => Err(ScriptError::Lua(lua_message(&err))),
        }
    }

    fn call(&self, lua: &Lua, obj: &Value) -> mlua::Result<Result<HealthStatus, ScriptError>> {
        lua.globals()
            .raw_set("obj", lua.to_value_with(obj, TO_LUA)?)?;
        let returned: mlua::Value = lua
            .load(&*self.source)
            .set_name(self.chunk_name())
            .call(())?;
        let mlua::Value::Table(table) = returned else {
            return Ok(Err(ScriptError::NotATable(returned.type_name())));
        };
        let status = match table.raw_get::<mlua::Value>("status")? {
            mlua::Value::Nil => return Ok(Err(ScriptError::NoStatus)),
            mlua::Value::String(s) => s.to_string_lossy(),
            other => {
                return Ok(Err(ScriptError::NotAString {
                    field: "status",
                    kind: other.type_name(),
                }));
            }
        };
        let message = match table.raw_get::<mlua::Value>("message")? {
            mlua::Value::Nil => String::new(),
            mlua::Value::String(s) => s.to_string_lossy(),
            other => {
                return Ok(Err(ScriptError::NotAString {
                    field: "message",
                    kind: other.type_name(),
                }));
            }
        };
        Ok(match status.parse::<HealthCode>() {
            Ok(code) => Ok(HealthStatus::new(code, message)),
            Err(err) => Err(ScriptError::InvalidStatus(err)),
        })
    }
}

/// Allocation failures can also surface inside a Rust callback the script called.
fn is_out_of_memory(err: &mlua::Error) -> bool {
    match err {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } => is_out_of_memory(cause),
        _ => false,
    }
}

/// The Lua error text without mlua's stack traceback, which only repeats the chunk name.
fn lua_message(err: &mlua::Error) -> String {
    let text = match err {
        mlua::Error::CallbackError { cause, .. } => return lua_message(cause),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(message) => message.clone(),
        other => other.to_string(),
    };
    match text.split_once("\nstack traceback:") {
        Some((message, _)) => message.to_owned(),
        None => text,
    }
}

/// Runs a resource action (or action discovery) script, Argo CD's contract: the object is the
/// global `obj`, the parameters the table `actionParams` (name → string), `require("os")` gives
/// the clock-only `os`; the script returns a table, given back as JSON. Errors name the script.
pub(crate) fn run_action_script(
    name: &str,
    source: &str,
    obj: &Value,
    params: &[(String, String)],
    limits: &LuaLimits,
) -> Result<Value, String> {
    let failed = |err: String| format!("Lua action script {name:?} {err}");
    let sandbox = Sandbox::new(limits).map_err(|err| failed(lua_message(&err)))?;
    let outcome = (|| -> mlua::Result<mlua::Value> {
        let lua = &sandbox.lua;
        let globals = lua.globals();
        globals.raw_set("obj", lua.to_value_with(obj, TO_LUA)?)?;
        let action_params = lua.create_table()?;
        for (key, value) in params {
            action_params.raw_set(key.as_str(), value.as_str())?;
        }
        globals.raw_set("actionParams", action_params)?;
        let os: mlua::Table = globals.get("os")?;
        globals.raw_set(
            "require",
            lua.create_function(move |_, module: String| match module.as_str() {
                "os" => Ok(os.clone()),
                other => Err(mlua::Error::runtime(format!(
                    "module {other:?} is not available to action scripts"
                ))),
            })?,
        )?;
        lua.load(source).set_name(format!("={name}")).call(())
    })();
    let returned = match (sandbox.meter.aborted(), outcome) {
        (Some(Abort::Instructions(n)), _) => {
            return Err(failed(ScriptError::Instructions(n).to_string()));
        }
        (Some(Abort::Timeout(t)), _) => return Err(failed(ScriptError::Timeout(t).to_string())),
        (None, Err(err)) if is_out_of_memory(&err) => {
            return Err(failed(ScriptError::Memory(limits.memory_bytes).to_string()));
        }
        // The script's own error() message, as Argo CD passes it on.
        (None, Err(err)) => return Err(lua_message(&err)),
        (None, Ok(value)) => value,
    };
    if !returned.is_table() {
        return Err(failed(format!(
            "returned {} instead of a table",
            returned.type_name()
        )));
    }
    sandbox
        .lua
        .from_value(returned)
        .map_err(|err| failed(lua_message(&err)))
}
