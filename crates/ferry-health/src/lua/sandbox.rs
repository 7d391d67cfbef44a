//! A fresh, closed Lua state for one script run, with CPU and memory limits.
//!
//! The engine is LuaJIT: Lua 5.1 with `goto`, the dialect of Argo CD's gopher-lua, so scripts
//! written for Argo CD (`goto continue` in a loop) compile. Its JIT compiler is switched off:
//! compiled code runs no count hooks, and the limits need them.
//!
//! Scripts get the base library without its code loaders, `table`, `string` (without `dump`),
//! `math`, and an `os` reduced to `time`, `date`, `clock` and `difftime`: what health scripts in
//! the wild use. No `io`, `package`/`require`, `debug`, `load*`/`dofile`, or process access.
//!
//! The limits hold in C too: the VM hook meters instructions and calls, and the string pattern
//! functions, where Lua 5.1 would backtrack and recurse in C beyond any hook's reach, are
//! replaced by a metered port ([`super::patterns`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mlua::debug::DebugEvent;
use mlua::{HookTriggers, Lua, LuaOptions, StdLib, VmState};

use super::patterns;

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
/// The pattern functions are the metered ones of [`patterns`], behind wrappers that raise the
/// errors they report (after [`patterns::RAISE`]) where the script called them: level 2, as
/// LuaJIT's tail call to `checked` takes the wrapper's place on the stack.
const HARDEN: &str = r#"
local aborted, find, match, gmatch, gsub, RAISE = ...
local raw_pcall, raw_xpcall, raw_resume, raw_rep, error =
  pcall, xpcall, coroutine.resume, string.rep, error
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
local function checked(first, ...)
  if first == RAISE then error((...), 2) end
  return first, ...
end
string.find = function(...) return checked(find(...)) end
string.match = function(...) return checked(match(...)) end
string.gsub = function(...) return checked(gsub(...)) end
string.gmatch = function(...)
  local next_match = checked(gmatch(...))
  return function() return checked(next_match()) end
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

/// A sandboxed state and the meter of its limits.
pub(crate) struct Sandbox {
    pub lua: Lua,
    pub meter: Arc<Meter>,
}

/// One run's limits and what the script used of them, shared by the VM hook and the library
/// functions written in Rust; records whether (and why) a limit stopped the script.
#[derive(Debug)]
pub(crate) struct Meter {
    limits: LuaLimits,
    deadline: Instant,
    /// VM instructions, and the equivalent work of Rust library functions.
    executed: AtomicU64,
    abort: OnceLock<Abort>,
}

impl Meter {
    fn new(limits: &LuaLimits) -> Self {
        Meter {
            limits: *limits,
            deadline: Instant::now() + limits.timeout,
            executed: AtomicU64::new(0),
            abort: OnceLock::new(),
        }
    }

    /// Counts `work` (instructions, or pattern-matching steps) and checks the limits: an error
    /// once the budget is spent or the deadline has passed, and from then on.
    pub fn charge(&self, work: u64) -> mlua::Result<()> {
        let executed = self.executed.fetch_add(work, Ordering::Relaxed) + work;
        let reason = if let Some(reason) = self.abort.get() {
            *reason
        } else if executed > self.limits.instructions {
            Abort::Instructions(self.limits.instructions)
        } else if Instant::now() > self.deadline {
            Abort::Timeout(self.limits.timeout)
        } else {
            return Ok(());
        };
        let reason = *self.abort.get_or_init(|| reason);
        Err(mlua::Error::runtime(match reason {
            Abort::Instructions(n) => format!("instruction budget of {n} exhausted"),
            Abort::Timeout(t) => format!("timed out after {t:?}"),
        }))
    }

    /// The limit that stopped the script, if one did.
    pub fn aborted(&self) -> Option<Abort> {
        self.abort.get().copied()
    }

    /// The memory limit, which also bounds what Rust library functions build.
    pub fn memory_bytes(&self) -> usize {
        self.limits.memory_bytes
    }
}

impl Sandbox {
    /// Builds the state; the limits start counting now.
    pub fn new(limits: &LuaLimits) -> mlua::Result<Sandbox> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::OS | StdLib::JIT,
            LuaOptions::default(),
        )?;
        let globals = lua.globals();
        // Interpreter only, for the hook below; the `jit` module itself is not for scripts.
        let jit: mlua::Table = globals.get("jit")?;
        jit.get::<mlua::Function>("off")?.call::<()>(())?;
        globals.raw_remove("jit")?;
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

        let meter = Arc::new(Meter::new(limits));
        let aborted = {
            let meter = Arc::clone(&meter);
            lua.create_function(move |_, ()| Ok(meter.aborted().is_some()))?
        };
        let [find, match_, gmatch, gsub] = patterns::functions(&lua, &meter)?;
        lua.load(HARDEN).set_name("=sandbox").call::<()>((
            aborted,
            find,
            match_,
            gmatch,
            gsub,
            patterns::RAISE,
        ))?;

        // A global hook also covers coroutines the script creates. Checking on calls too bounds
        // the time spent in a loop of slow library (C) calls, which execute no VM instructions.
        let hook_meter = Arc::clone(&meter);
        lua.set_global_hook(
            HookTriggers::new()
                .on_calls()
                .every_nth_instruction(HOOK_INTERVAL),
            move |_, debug| {
                let work = if debug.event() == DebugEvent::Count {
                    u64::from(HOOK_INTERVAL)
                } else {
                    0
                };
                hook_meter.charge(work).map(|()| VmState::Continue)
            },
        )?;
        // Set last: the limit covers the object and the script, not the libraries.
        lua.set_memory_limit(lua.used_memory() + limits.memory_bytes)?;
        Ok(Sandbox { lua, meter })
    }
}
