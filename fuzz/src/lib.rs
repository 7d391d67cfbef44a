//! Helpers shared by the fuzz targets in `fuzz_targets/`.

use std::sync::OnceLock;
use std::time::Duration;

use ferry_health::{HealthChecks, LuaLimits, assess};
use serde_json::{Value, json};

/// The input as text, or `None` (every parser under test reads text).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// The Lua sandbox's limits, tighter than the defaults so a runaway script costs milliseconds
/// rather than a second: the same mechanism (instruction budget, deadline, memory cap).
pub fn lua_limits() -> LuaLimits {
    LuaLimits {
        instructions: 200_000,
        timeout: Duration::from_millis(250),
        memory_bytes: 8 << 20,
    }
}

/// Objects a health script is run on: realistic ones and awkward ones (nulls, empty
/// collections, deep nesting, numbers where strings are expected).
pub fn lua_objects() -> &'static [Value] {
    static OBJECTS: OnceLock<Vec<Value>> = OnceLock::new();
    OBJECTS.get_or_init(|| {
        vec![
            json!({
                "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
                "metadata": {"name": "web", "namespace": "shop", "generation": 2},
                "spec": {"secretName": "web-tls", "dnsNames": ["web.example.com"]},
                "status": {
                    "notAfter": "2030-01-01T00:00:00Z",
                    "conditions": [
                        {"type": "Ready", "status": "True", "reason": "Ready",
                         "message": "Certificate is up to date and has not expired",
                         "observedGeneration": 2}
                    ]
                }
            }),
            json!({
                "apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "w", "namespace": "shop", "annotations": null},
                "spec": {"selector": {}, "ports": []},
                "status": {"phase": null, "conditions": [], "replicas": 3.5,
                           "message": 42, "nested": {"a": {"b": {"c": [[[]]]}}}}
            }),
            json!({"apiVersion": "example.com/v1", "kind": "Widget"}),
        ]
    })
}

/// Compiles `script` as a health check for every kind and runs it on [`lua_objects`]. A script
/// that does not compile is simply refused.
pub fn run_lua(script: &str) {
    let Ok(checks) = HealthChecks::new()
        .with_lua("*", script)
        .map(|checks| checks.with_limits(lua_limits()))
    else {
        return;
    };
    for obj in lua_objects() {
        let health = assess(obj, &checks).expect("a configured script always gives a health");
        // The message is shown to users: it must be text, whatever the script returned.
        let _ = health.message.len();
    }
}

/// FNV-1a of the input, to derive values (times, choices) that vary with it.
pub fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
