//! Custom health scripts with Argo CD's Lua contract: realistic scripts, the sandbox, the
//! limits, and what happens when a script misbehaves.

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ferry_health::{HealthChecks, HealthCode, HealthStatus, LuaLimits, assess};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lua")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn object(name: &str) -> Value {
    serde_yaml::from_str(&fixture(name)).unwrap()
}

fn widget(status: Value) -> Value {
    json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "shop"},
        "spec": {"selector": {}, "ports": []},
        "status": status
    })
}

/// Runs `script` as the health check of example.com/Widget objects.
fn run_with(script: &str, obj: &Value, limits: LuaLimits) -> HealthStatus {
    let checks = HealthChecks::new()
        .with_lua("example.com/Widget", script)
        .unwrap()
        .with_limits(limits);
    assess(obj, &checks).expect("a configured script always gives a health")
}

/// Like `run_with`, but fails instead of hanging if the limits do not stop the script.
fn run_bounded(script: &str, obj: Value, limits: LuaLimits) -> HealthStatus {
    let (tx, rx) = mpsc::channel();
    let owned = script.to_owned();
    thread::spawn(move || tx.send(run_with(&owned, &obj, limits)));
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("the limits did not stop {script:?}"))
}

fn run(script: &str) -> HealthStatus {
    run_with(
        script,
        &widget(json!({"phase": "Ready"})),
        LuaLimits::default(),
    )
}

fn assert_unknown(status: &HealthStatus, needle: &str) {
    assert_eq!(status.status, HealthCode::Unknown, "{status:?}");
    assert!(
        status
            .message
            .starts_with("Lua health script \"example.com/Widget\" "),
        "{status:?}"
    );
    assert!(
        status.message.contains(needle),
        "expected {needle:?} in {status:?}"
    );
}

#[test]
fn certificate_script_follows_the_argo_contract() {
    let checks = HealthChecks::new()
        .with_lua("cert-manager.io/Certificate", fixture("certificate.lua"))
        .unwrap();
    let cases = [
        (
            "certificate-ready.yaml",
            HealthCode::Healthy,
            "Certificate is up to date and has not expired",
        ),
        (
            "certificate-expired.yaml",
            HealthCode::Degraded,
            "Certificate expired on 2023-04-10",
        ),
        (
            "certificate-failed.yaml",
            HealthCode::Degraded,
            "Issuing certificate as Secret does not exist",
        ),
        (
            "certificate-issuing.yaml",
            HealthCode::Progressing,
            "Issuing: Issuing certificate as Secret does not exist",
        ),
        // `conditions: []` arrives as an empty table: table.getn and ipairs work on it.
        (
            "certificate-new.yaml",
            HealthCode::Progressing,
            "Certificate has no conditions yet",
        ),
    ];
    for (file, code, message) in cases {
        let health = assess(&object(file), &checks).unwrap();
        assert_eq!(health, HealthStatus::new(code, message), "{file}");
    }
    let mut no_status = object("certificate-new.yaml");
    no_status.as_object_mut().unwrap().remove("status");
    assert_eq!(
        assess(&no_status, &checks).unwrap(),
        HealthStatus::progressing("Waiting for certificate")
    );
}

#[test]
fn globs_select_scripts_and_scripts_win_over_builtins() {
    let checks = HealthChecks::new()
        .with_lua(
            "cert-manager.io/*",
            r#"return {status = "Suspended", message = obj.kind}"#,
        )
        .unwrap()
        .with_lua(
            "apps/Deployment",
            r#"return {status = "Degraded", message = "custom"}"#,
        )
        .unwrap();
    let issuer = json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": "le"}});
    assert_eq!(
        assess(&issuer, &checks).unwrap(),
        HealthStatus::suspended("ClusterIssuer")
    );
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "generation": 1},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
    });
    assert_eq!(
        assess(&deployment, &checks).unwrap(),
        HealthStatus::degraded("custom")
    );
    assert_eq!(
        assess(&deployment, &HealthChecks::new()).unwrap().status,
        HealthCode::Healthy
    );
}

/// argocd-cm scripts, exact or wildcard, win over the built-in CRD checks, as user
/// customizations win over Argo CD's bundled scripts.
#[test]
fn argocd_cm_scripts_override_builtin_crd_checks() {
    let builtin = |name: &str| -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/builtin")
            .join(name);
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let certificate = builtin("certificate-ready.yaml");
    let kustomization = builtin("kustomization-ready.yaml");
    let rollout = builtin("rollout-paused.yaml");
    assert_eq!(
        assess(&certificate, &HealthChecks::new()),
        Some(HealthStatus::healthy(
            "Certificate is up to date and has not expired"
        ))
    );

    let checks = HealthChecks::from_argocd_cm([
        (
            "resource.customizations.health.cert-manager.io_Certificate",
            r#"return {status = "Degraded", message = "custom " .. obj.kind}"#,
        ),
        (
            "resource.customizations.health.*.fluxcd.io_*",
            r#"return {status = "Suspended", message = "flux by wildcard"}"#,
        ),
    ])
    .unwrap();
    assert_eq!(
        assess(&certificate, &checks),
        Some(HealthStatus::degraded("custom Certificate"))
    );
    assert_eq!(
        assess(&kustomization, &checks),
        Some(HealthStatus::suspended("flux by wildcard"))
    );
    // Kinds without a customization keep their built-in check.
    assert_eq!(
        assess(&rollout, &checks),
        Some(HealthStatus::suspended("CanaryPauseStep"))
    );
}

#[test]
fn json_null_is_nil_and_empty_collections_are_empty_tables() {
    let script = r#"
        local checks = {
          obj.status.message == nil,
          obj.status.conditions ~= nil and #obj.status.conditions == 0,
          next(obj.spec.selector) == nil,
          table.getn(obj.spec.ports) == 0,
          obj.status.replicas == 3 and obj.status.ratio == 0.5,
          obj.status.ready == true,
        }
        for i, ok in ipairs(checks) do
          if not ok then return {status = "Degraded", message = "check " .. i} end
        end
        return {status = "Healthy", message = obj.metadata.name}
    "#;
    let obj = widget(
        json!({"message": null, "conditions": [], "replicas": 3, "ratio": 0.5, "ready": true}),
    );
    assert_eq!(
        run_with(script, &obj, LuaLimits::default()),
        HealthStatus::healthy("w")
    );
}

#[test]
fn lua_5_1_libraries_scripts_rely_on_are_there() {
    let script = r#"
        local parts = {}
        for word in string.gmatch("a,b,c", "[^,]+") do table.insert(parts, word) end
        local a, b = unpack({1, 2})
        local t = os.time({year = 2024, month = 1, day = 2, hour = 3, min = 4, sec = 5})
        local msg = table.concat(parts, "-") .. " " .. table.getn(parts) .. " " .. (a + b)
          .. " " .. math.max(4, 9) .. " " .. string.upper("ok") .. " " .. os.date("!%Y", 0)
          .. " " .. type(t) .. " " .. type(os.clock()) .. " " .. string.format("%03d", 7)
        print("debug output is discarded", obj)
        return {status = "Healthy", message = msg}
    "#;
    assert_eq!(
        run(script),
        HealthStatus::healthy("a-b-c 3 3 9 OK 1970 number number 007")
    );
}

/// Argo CD's gopher-lua is Lua 5.1 with `goto`, which many of its bundled scripts use to skip
/// to the next loop round.
#[test]
fn goto_continue_works_as_in_argo_cd() {
    let script = r#"
        local ready = {}
        for _, c in ipairs(obj.status.conditions) do
          if c.status ~= "True" then goto continue end
          table.insert(ready, c.type)
          ::continue::
        end
        return {status = "Healthy", message = table.concat(ready, ",")}
    "#;
    let obj = widget(json!({"conditions": [
        {"type": "A", "status": "True"},
        {"type": "B", "status": "False"},
        {"type": "C", "status": "True"}
    ]}));
    assert_eq!(
        run_with(script, &obj, LuaLimits::default()),
        HealthStatus::healthy("A,C")
    );
}

#[test]
fn sandbox_offers_no_way_out() {
    let absent = r#"
        local names = {}
        for _, name in ipairs({"io", "require", "module", "package", "debug", "dofile", "loadfile",
                               "load", "loadstring", "jit", "ffi"}) do
          if _G[name] ~= nil then table.insert(names, name) end
        end
        for _, name in ipairs({"execute", "exit", "getenv", "remove", "rename", "tmpname", "setlocale"}) do
          if os[name] ~= nil then table.insert(names, "os." .. name) end
        end
        if string.dump ~= nil then table.insert(names, "string.dump") end
        return {status = "Healthy", message = table.concat(names, ",")}
    "#;
    assert_eq!(run(absent), HealthStatus::healthy(""));

    let escapes = [
        (
            r#"io.open("/etc/passwd")"#,
            "attempt to index global 'io' (a nil value)",
        ),
        (
            r#"os.execute("id")"#,
            "attempt to call field 'execute' (a nil value)",
        ),
        (
            r#"os.getenv("HOME")"#,
            "attempt to call field 'getenv' (a nil value)",
        ),
        (
            r#"os.exit(1)"#,
            "attempt to call field 'exit' (a nil value)",
        ),
        (
            r#"require("io")"#,
            "attempt to call global 'require' (a nil value)",
        ),
        (
            r#"loadstring("return 1")()"#,
            "attempt to call global 'loadstring' (a nil value)",
        ),
        (
            r#"dofile("/etc/passwd")"#,
            "attempt to call global 'dofile' (a nil value)",
        ),
        (
            r#"string.dump(print)"#,
            "attempt to call field 'dump' (a nil value)",
        ),
        (
            r#"debug.getregistry()"#,
            "attempt to index global 'debug' (a nil value)",
        ),
    ];
    for (call, error) in escapes {
        let status = run(&format!(
            "local x = {call}\nreturn {{status = \"Healthy\"}}"
        ));
        assert_unknown(&status, &format!("example.com/Widget:1: {error}"));
    }

    // Even with the failures swallowed, nothing reaches the file system.
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("escaped");
    let script = format!(
        r#"
        pcall(function() os.execute("touch {m}") end)
        pcall(function() io.open("{m}", "w"):write("x") end)
        pcall(function() require("os").execute("touch {m}") end)
        return {{status = "Healthy"}}
        "#,
        m = marker.display()
    );
    assert_eq!(run(&script), HealthStatus::healthy(""));
    assert!(!marker.exists());
}

#[test]
fn endless_scripts_are_stopped_by_the_instruction_budget() {
    let limits = LuaLimits {
        instructions: 2_000_000,
        timeout: Duration::from_secs(30),
        ..LuaLimits::default()
    };
    let endless = [
        "while true do end",
        "local function f() return f() end return f()",
        // A script cannot catch its own abort and carry on.
        "while true do pcall(function() while true do end end) end",
        "while true do xpcall(function() while true do end end, function(e) return e end) end",
        "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
        "local co = coroutine.wrap(function() while true do end end) co()",
        "while true do pcall(error, 'x') end",
        // Spins in C, between VM instructions, unless string.rep is guarded.
        "while true do local s = string.rep('', 2^31 - 1) .. (''):rep(2^31 - 1) end",
    ];
    for script in endless {
        let started = Instant::now();
        let status = run_bounded(script, widget(json!({})), limits);
        assert_unknown(&status, "exceeded its budget of 2000000 Lua instructions");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{script}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn slow_scripts_are_stopped_by_the_deadline() {
    let limits = LuaLimits {
        instructions: u64::MAX,
        timeout: Duration::from_millis(200),
        ..LuaLimits::default()
    };
    let started = Instant::now();
    let status = run_bounded(
        "local i = 0 while true do i = i + 1 end",
        widget(json!({})),
        limits,
    );
    let elapsed = started.elapsed();
    assert_unknown(&status, "timed out after 200ms");
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
}

#[test]
fn memory_bombs_are_stopped_by_the_memory_limit() {
    // Only the memory limit may stop these, however loaded the machine is.
    let limits = LuaLimits {
        memory_bytes: 16 << 20,
        instructions: u64::MAX,
        timeout: Duration::from_secs(60),
    };
    let bombs = [
        "local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1024) .. i end",
        "local s = string.rep('x', 2^30)",
        "local s = 'x' while true do s = s .. s end",
        "local t = {} for i = 1, 1e9 do t[i] = {} end",
    ];
    for script in bombs {
        let started = Instant::now();
        let status = run_bounded(script, widget(json!({})), limits);
        assert_unknown(&status, "exceeded its memory limit of 16777216 bytes");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{script}: {:?}",
            started.elapsed()
        );
    }
    // The limit covers the object too.
    let big = widget(json!({"blob": "x".repeat(20 << 20)}));
    let status = run_with("return {status = 'Healthy'}", &big, limits);
    assert_unknown(&status, "exceeded its memory limit");
}

#[test]
fn patterns_cannot_overflow_the_stack() {
    // Lua 5.1 matches patterns by recursion in C, a level per pattern item, without a limit:
    // each of these aborted the whole process with a stack overflow (found while fuzzing the
    // sandbox, see fuzz/). Run on a thread with a small stack, as a controller's worker has.
    let prelude = "local s = string.rep('a', 300000)\nlocal lazy = string.rep('.-', 300000)\n\
                   local optional = string.rep('a?', 300000)\n";
    let calls = [
        "string.find(s, lazy)",
        "s:find(optional .. 'b')",
        "string.match(s, optional)",
        "s:gmatch(lazy)()",
        "string.gsub(s, '(' .. lazy .. ')', '')",
    ];
    for call in calls {
        let script = format!("{prelude}local x = {call}\nreturn {{status = 'Healthy'}}");
        let status = thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || run(&script))
            .unwrap()
            .join()
            .unwrap_or_else(|_| panic!("{call} panicked"));
        assert_unknown(&status, "example.com/Widget:4: pattern too complex");
    }

    // Plain finds of any length, and patterns of up to 200 levels, work as before.
    let script = format!(
        "{prelude}local plain = string.find(s, optional, 1, true)\n\
         local i, j = string.find(string.rep('a', 150) .. 'b', string.rep('a?', 190) .. 'b')\n\
         local n = select(2, string.gsub(string.rep('ab', 10), string.rep('%a', 2), ''))\n\
         return {{status = 'Healthy', message = tostring(plain) .. ' ' .. i .. ' ' .. j .. ' ' .. n}}"
    );
    assert_eq!(run(&script), HealthStatus::healthy("nil 1 151 10"));
}

#[test]
fn pattern_matching_counts_against_the_limits() {
    // Backtracking in C ran past every limit: the first two took minutes of CPU, the third
    // (a plain find of a long needle) about as long, with the hook never called.
    let backtracking = [
        "local s = string.find(string.rep('a', 30), string.rep('a?', 30) .. 'b')",
        "local s = string.match(string.rep('1', 20000), '%d+%d+%d+-')",
        "local s = string.find(string.rep('a', 2^20), string.rep('a', 2^19) .. 'b', 1, true)",
        "for w in string.gmatch(string.rep('a', 30), string.rep('a?', 30) .. 'b') do end",
        "local s = string.gsub(string.rep('a', 30), string.rep('a?', 30) .. 'b', '')",
    ];
    let budget = LuaLimits {
        instructions: 2_000_000,
        timeout: Duration::from_secs(60),
        ..LuaLimits::default()
    };
    let deadline = LuaLimits {
        instructions: u64::MAX,
        timeout: Duration::from_millis(200),
        ..LuaLimits::default()
    };
    for script in backtracking {
        let script = format!("{script}\nreturn {{status = 'Healthy'}}");
        let started = Instant::now();
        let status = run_bounded(&script, widget(json!({})), budget);
        assert_unknown(&status, "exceeded its budget of 2000000 Lua instructions");
        let status = run_bounded(&script, widget(json!({})), deadline);
        assert_unknown(&status, "timed out after 200ms");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{script}: {:?}",
            started.elapsed()
        );
    }
    // Swallowing the abort with pcall does not help either.
    let status = run_bounded(
        "while true do pcall(string.find, string.rep('a', 30), string.rep('a?', 30) .. 'b') end",
        widget(json!({})),
        budget,
    );
    assert_unknown(&status, "exceeded its budget of 2000000 Lua instructions");

    // What gsub builds is bounded by the memory limit.
    let small = LuaLimits {
        memory_bytes: 16 << 20,
        instructions: u64::MAX,
        timeout: Duration::from_secs(60),
    };
    let status = run_bounded(
        "local s = string.gsub(string.rep('x', 4096), '', string.rep('y', 2^16))",
        widget(json!({})),
        small,
    );
    assert_unknown(&status, "exceeded its memory limit of 16777216 bytes");
}

#[test]
fn bad_return_values_give_unknown() {
    let cases = [
        (r#"return "Healthy""#, "returned string instead of a table"),
        (
            "local hs = {status = 'Healthy'}",
            "returned nil instead of a table",
        ),
        ("return {}", "returned no status"),
        (
            r#"return {status = "Fine"}"#,
            r#"invalid health status: "Fine" is not a health status"#,
        ),
        (
            r#"return {status = "healthy"}"#,
            r#""healthy" is not a health status"#,
        ),
        (
            r#"return {status = 1}"#,
            "returned a non-string status (integer)",
        ),
        (
            r#"return {status = "Healthy", message = {}}"#,
            "returned a non-string message (table)",
        ),
    ];
    for (script, needle) in cases {
        assert_unknown(&run(script), needle);
    }
}

#[test]
fn script_errors_name_the_script_and_line() {
    let script = "local hs = {}\nhs.status = obj.status.conditions[1].type\nreturn hs";
    let status = run_with(
        script,
        &widget(json!({"phase": "Ready"})),
        LuaLimits::default(),
    );
    assert_unknown(
        &status,
        "failed: example.com/Widget:2: attempt to index field 'conditions' (a nil value)",
    );
    assert!(!status.message.contains("stack traceback"), "{status:?}");

    let raised = run(r#"error("widget controller is not installed")"#);
    assert_unknown(
        &raised,
        "example.com/Widget:1: widget controller is not installed",
    );
}

#[test]
fn objects_being_deleted_skip_the_script() {
    let mut obj = widget(json!({}));
    obj["metadata"]["deletionTimestamp"] = json!("2025-09-02T10:00:00Z");
    assert_eq!(
        run_with("error('not reached')", &obj, LuaLimits::default()),
        HealthStatus::progressing("Pending deletion")
    );
}
