//! A fresh, closed Lua 5.1 state for one script run, with CPU and memory limits.
//!
//! Scripts get the base library without its code loaders, `table`, `string` (without `dump`),
//! `math`, and an `os` reduced to `time`, `date`, `clock` and `difftime`: what health scripts in
//! the wild use. No `io`, `package`/`require`, `debug`, `load*`/`dofile`, or process access.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mlua::debug::DebugEvent;
use mlua::{HookTriggers, Lua, LuaOptions, StdLib, VmState};

/// How often (in VM instructions) the limits are checked.
const HOOK_INTERVAL: u32 = 1_000;

/// Base-library functions that load code: Lua 5.1 accepts precompiled bytecode, which can
/// break out of the VM, and files are off limits anyway.
const REMOVED_GLOBALS: [&str; 4] = ["dofile", "load", "loadfile", "loadstring"];

/// The parts of `os` that only read the clock.
const SAFE_OS: [&str; 4] = ["clock", "date", "difftime", "time"];

/// Lua-side hardening. Once a limit is hit, errors caught by `pcall`, `xpcall` or
/// `coroutine.resume` are raised again, so a script cannot swallow its own abort and loop on.
/// `string.rep` of an empty string would spin in C for up to 2^31 rounds, out of the hook's reach.
const HARDEN: &str = r#"
local aborted, raw_pcall, raw_xpcall, raw_resume, raw_rep, error =
  ..., pcall, xpcall, coroutine.resume, string.rep, error
local function settle(ok, ...)
  if not ok and aborted() then error((...), 0) end
  return ok, ...
end
pcall = function(...) return settle(raw_pcall(...)) end
xpcall = function(...) return settle(raw_xpcall(...)) end
coroutine.resume = function(...) return settle(raw_resume(...)) end
string.rep = function(s, n)
  if s == "" then return raw_rep(s, 0) end
  return raw_rep(s, n)
end
"#;

/// The limit a script ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Abort {
    Instructions(u64),
    Timeout(Duration),
}

/// CPU and memory limits for one run of a health script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LuaLimits {
    /// VM instructions a script may execute (checked every thousand instructions).
    pub instructions: u64,
    /// Wall-clock time a script may run (Argo CD allows one second).
    pub timeout: Duration,
    /// Bytes the Lua state may allocate, the object handed to the script included.
    pub memory_bytes: usize,
}

impl Default for LuaLimits {
    fn default() -> Self {
        LuaLimits {
            instructions: 20_000_000,
            timeout: Duration::from_secs(1),
            memory_bytes: 64 << 20,
        }
    }
}

/// A sandboxed state and the record of whether (and why) its limits stopped the script.
pub(crate) struct Sandbox {
    pub lua: Lua,
    pub abort: Arc<OnceLock<Abort>>,
}

impl Sandbox {
    /// Builds the state; the limits start counting now.
    pub fn new(limits: &LuaLimits) -> mlua::Result<Sandbox> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::OS,
            LuaOptions::default(),
        )?;
        let globals = lua.globals();
        for name in REMOVED_GLOBALS {
            globals.raw_remove(name)?;
        }
        // Kept for scripts that still debug-print; the output is dropped so that object
        // contents (a Secret's data, say) never reach a log.
        globals.raw_set(
            "print",
            lua.create_function(|_, _: mlua::MultiValue| Ok(()))?,
        )?;
        let string: mlua::Table = globals.get("string")?;
        string.raw_remove("dump")?;
        let os: mlua::Table = globals.get("os")?;
        let safe_os = lua.create_table()?;
        for name in SAFE_OS {
            safe_os.raw_set(name, os.raw_get::<mlua::Value>(name)?)?;
        }
        globals.raw_set("os", safe_os)?;

        let abort = Arc::new(OnceLock::new());
        let aborted = {
            let abort = Arc::clone(&abort);
            lua.create_function(move |_, ()| Ok(abort.get().is_some()))?
        };
        lua.load(HARDEN).set_name("=sandbox").call::<()>(aborted)?;

        let budget = limits.instructions;
        let timeout = limits.timeout;
        let deadline = Instant::now() + timeout;
        let executed = AtomicU64::new(0);
        let hook_abort = Arc::clone(&abort);
        // A global hook also covers coroutines the script creates. Checking on calls too bounds
        // the time spent in a loop of slow library (C) calls, which execute no VM instructions.
        lua.set_global_hook(
            HookTriggers::new()
                .on_calls()
                .every_nth_instruction(HOOK_INTERVAL),
            move |_, debug| {
                let executed = if debug.event() == DebugEvent::Count {
                    executed.fetch_add(u64::from(HOOK_INTERVAL), Ordering::Relaxed)
                        + u64::from(HOOK_INTERVAL)
                } else {
                    executed.load(Ordering::Relaxed)
                };
                let reason = if executed > budget {
                    Abort::Instructions(budget)
                } else if Instant::now() > deadline {
                    Abort::Timeout(timeout)
                } else {
                    return Ok(VmState::Continue);
                };
                let reason = *hook_abort.get_or_init(|| reason);
                Err(mlua::Error::runtime(match reason {
                    Abort::Instructions(n) => format!("instruction budget of {n} exhausted"),
                    Abort::Timeout(t) => format!("timed out after {t:?}"),
                }))
            },
        )?;
        // Set last: the limit covers the object and the script, not the libraries.
        lua.set_memory_limit(lua.used_memory() + limits.memory_bytes)?;
        Ok(Sandbox { lua, abort })
    }
}
