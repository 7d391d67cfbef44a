//! Lua health scripts as written in `argocd-cm` (`resource.customizations.health.*`): the
//! script is the input, compiled as `HealthChecks::with_lua` does and run in the sandbox, under
//! its instruction, time and memory limits, on realistic and awkward objects.
//!
//! Seeds are real health scripts; `fuzz/dicts/lua.dict` gives the fuzzer Lua's words. See
//! `lua_generated` for scripts built from a grammar.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(script) = ferry_fuzz::text(data) {
        ferry_fuzz::run_lua(script);
    }
});
