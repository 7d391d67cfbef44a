//! Bounded work: Jsonnet programs that never end, eat memory or print without end, plugins that
//! do the same, oversized files, renders and repositories each fail their app with an error
//! naming the limit and the flag that raises it, quickly, and leave nothing running.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ferry_git::Credentials;
use ferry_render::{ErrorKind, PluginConfig, RenderConfig, RenderError};
use ferry_testkit::git::GitRepo;

fn cm(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
}

/// A repository holding `files` in `app/`.
fn repo_with(files: &[(&str, String)]) -> GitRepo {
    let repo = GitRepo::new().unwrap();
    for (path, text) in files {
        repo.write(&format!("app/{path}"), text).unwrap();
    }
    repo.commit("app").unwrap();
    repo
}

/// Renders `app/` of `repo` with a renderer that `change` configured.
async fn render_with(
    repo: &GitRepo,
    change: impl FnOnce(&mut RenderConfig),
) -> Result<Vec<serde_json::Value>, RenderError> {
    let h = harness_configured(Credentials::default(), change);
    let srcs = sources(&format!("- repoURL: {}\n  path: app\n", repo.file_url()));
    h.renderer
        .render(&app("limits", "default"), &srcs)
        .await
        .map(|r| r.objects)
}

/// Processes working in a directory under `dir` (tools run in their render's workspace).
fn processes_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| {
            std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .count()
}

#[tokio::test]
async fn endless_jsonnet_is_killed_at_the_tool_timeout() {
    let repo = repo_with(&[(
        "loop.jsonnet",
        "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'n' },\n  \
         data: { sum: std.toString(std.foldl(function(acc, x) acc + std.foldl(function(a, y) a + y, std.range(1, 2e9), 0), std.range(1, 2e9), 0)) } }"
            .into(),
    )]);
    let work = tempfile::tempdir().unwrap();
    let work_dir = work.path().canonicalize().unwrap();
    let started = Instant::now();
    let err = render_with(&repo, |c| {
        c.tool_timeout = Duration::from_secs(3);
        c.work_dir = work_dir.clone();
    })
    .await
    .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::ToolTimeout { .. }), "{err}");
    assert!(
        err.to_string().ends_with(
            "path app: jsonnet app/loop.jsonnet did not finish within 3s and was killed (--tool-timeout)"
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // The worker is gone, not computing on in the background.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(processes_under(&work_dir), 0);
}

#[tokio::test]
async fn endless_recursion_is_an_error_naming_the_file() {
    let repo = repo_with(&[(
        "recurse.jsonnet",
        "local f(x) = f(x + 1) + 1; { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'n' }, data: { n: f(0) } }"
            .into(),
    )]);
    let started = Instant::now();
    let err = render_with(&repo, |c| c.tool_timeout = Duration::from_secs(30))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("app/recurse.jsonnet: jsonnet:"), "{msg}");
    assert!(msg.contains("stack overflow"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn jsonnet_memory_bombs_are_stopped_by_the_memory_limit() {
    let repo = repo_with(&[(
        "bomb.jsonnet",
        "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'n' }, x: std.range(1, 2e9) }"
            .into(),
    )]);
    let started = Instant::now();
    let err = render_with(&repo, |c| {
        c.max_tool_memory = 256 << 20;
        c.tool_timeout = Duration::from_secs(60);
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::ToolOutOfMemory { limit, .. } if limit == 256 << 20),
        "{err}"
    );
    assert!(
        err.to_string().ends_with(
            "jsonnet app/bomb.jsonnet ran out of memory: it may use 256 MiB (--max-tool-memory)"
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn jsonnet_printing_too_much_is_stopped_by_the_output_limit() {
    let repo = repo_with(&[(
        "many.jsonnet",
        "[{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' + i } } for i in std.range(1, 100000)]"
            .into(),
    )]);
    let err = render_with(&repo, |c| c.max_tool_output = 1 << 20)
        .await
        .unwrap_err();
    assert!(
        err.to_string().ends_with(
            "jsonnet app/many.jsonnet wrote more than 1 MiB to stdout and was killed (--max-tool-output)"
        ),
        "{err}"
    );
    // Under the default limits it renders.
    assert_eq!(render_with(&repo, |_| {}).await.unwrap().len(), 100_000);
}

/// A plugin whose `generate` runs `script`.
fn plugin(script: &str) -> PluginConfig {
    PluginConfig::from_yaml(&format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: ConfigManagementPlugin\nmetadata:\n  name: gen\n\
         spec:\n  generate:\n    command: [sh, -c]\n    args: [{script:?}]\n  discover:\n    fileName: gen.txt\n"
    ))
    .unwrap()
}

#[tokio::test]
async fn plugins_are_bounded_in_time_output_and_memory() {
    let repo = repo_with(&[("gen.txt", "x".into())]);
    let repo = &repo;
    let render = |script: &str, change: fn(&mut RenderConfig)| {
        let plugin = plugin(script);
        async move {
            render_with(repo, move |c| {
                c.plugins = vec![plugin];
                change(c);
            })
            .await
        }
    };
    let started = Instant::now();
    let err = render("sleep 600", |c| c.tool_timeout = Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        err.to_string().ends_with(
            "plugin gen generate did not finish within 2s and was killed (--tool-timeout)"
        ),
        "{err}"
    );
    let err = render("yes", |c| c.max_tool_output = 4 << 20)
        .await
        .unwrap_err();
    assert!(
        err.to_string().ends_with(
            "plugin gen generate wrote more than 4 MiB to stdout and was killed (--max-tool-output)"
        ),
        "{err}"
    );
    let err = render("awk 'BEGIN { s = \"x\"; while (1) s = s s }'", |c| {
        c.max_tool_memory = 128 << 20
    })
    .await
    .unwrap_err();
    assert!(
        err.to_string().ends_with(
            "plugin gen generate ran out of memory: it may use 128 MiB (--max-tool-memory)"
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // A well-behaved plugin renders under the same limits.
    let objects = render(
        "printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: ok\\n'",
        |c| {
            c.tool_timeout = Duration::from_secs(20);
            c.max_tool_output = 4 << 20;
            c.max_tool_memory = 128 << 20;
        },
    )
    .await
    .unwrap();
    assert_eq!(names(&objects), ["ConfigMap/ok"]);
}

#[tokio::test]
async fn helm_and_kustomize_render_under_a_tight_memory_limit() {
    // Go tools map about 100 MiB to start; 256 MiB is plenty for an ordinary chart or overlay.
    let repo = GitRepo::new().unwrap();
    repo.write(
        "chart/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 1.0.0\n",
    )
    .unwrap();
    repo.write("chart/templates/cm.yaml", cm("{{ .Release.Name }}"))
        .unwrap();
    repo.write(
        "overlay/kustomization.yaml",
        "resources: [cm.yaml]\nnamePrefix: p-\n",
    )
    .unwrap();
    repo.write("overlay/cm.yaml", cm("k")).unwrap();
    repo.commit("tools").unwrap();
    let h = harness_configured(Credentials::default(), |c| c.max_tool_memory = 256 << 20);
    let srcs = sources(&format!(
        "- repoURL: {url}\n  path: chart\n- repoURL: {url}\n  path: overlay\n",
        url = repo.file_url()
    ));
    let rendered = h
        .renderer
        .render(&app("web", "default"), &srcs)
        .await
        .unwrap();
    assert_eq!(names(&rendered.objects), ["ConfigMap/web", "ConfigMap/p-k"]);
}

#[tokio::test]
async fn oversized_manifest_files_are_refused_unread() {
    let big = format!("{}data:\n  x: {}\n", cm("big"), "y".repeat(3 << 20));
    let repo = repo_with(&[("a.yaml", cm("a")), ("big.yaml", big)]);
    let err = render_with(&repo, |c| c.max_manifest_file_size = 2 << 20)
        .await
        .unwrap_err();
    assert!(
        matches!(&err.kind, ErrorKind::ManifestFileTooLarge { file, limit, .. } if file == "app/big.yaml" && *limit == 2 << 20),
        "{err}"
    );
    assert!(
        err.to_string().ends_with(
            "app/big.yaml: the file is 3 MiB, over the limit of 2 MiB for one manifest file (--max-manifest-file-size)"
        ),
        "{err}"
    );
    // Jsonnet imports too.
    let repo = repo_with(&[
        (
            "main.jsonnet",
            "{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'j' }, data: { x: importstr 'blob.txt' } }"
                .into(),
        ),
        ("blob.txt", "z".repeat(3 << 20)),
    ]);
    let err = render_with(&repo, |c| c.max_manifest_file_size = 2 << 20)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "app/blob.txt: the file is 3 MiB, over the limit of 2 MiB for one manifest file (--max-manifest-file-size)"
        ),
        "{err}"
    );
    assert_eq!(render_with(&repo, |_| {}).await.unwrap().len(), 1);
}

#[tokio::test]
async fn rendered_manifests_of_all_sources_together_are_bounded() {
    // Two sources of 40 objects each: each fits the limit alone, together they do not.
    let files: Vec<(String, String)> = (0..40)
        .map(|i| {
            let name = format!("cm-{i:02}");
            (
                format!("{name}.yaml"),
                format!("{}data:\n  x: {}\n", cm(&name), "v".repeat(1000)),
            )
        })
        .collect();
    let repo = GitRepo::new().unwrap();
    for (dir, prefix) in [("one", "a"), ("two", "b")] {
        for (file, text) in &files {
            repo.write(
                &format!("{dir}/{file}"),
                text.replace("name: cm-", &format!("name: {prefix}-")),
            )
            .unwrap();
        }
    }
    repo.commit("two sources").unwrap();
    let srcs = sources(&format!(
        "- repoURL: {url}\n  path: one\n- repoURL: {url}\n  path: two\n",
        url = repo.file_url()
    ));
    let size_of = |objects: &[serde_json::Value]| -> u64 {
        objects
            .iter()
            .map(|o| serde_json::to_vec(o).unwrap().len() as u64)
            .sum()
    };
    let unlimited = harness(vec![]);
    let all = unlimited
        .renderer
        .render(&app("big", "default"), &srcs)
        .await
        .unwrap()
        .objects;
    assert_eq!(all.len(), 80);
    let total = size_of(&all);
    let first = size_of(&all[..40]);

    // Just enough passes; a byte less fails in the second source, naming the flag.
    let h = harness_configured(Credentials::default(), |c| c.max_manifest_size = total);
    h.renderer
        .render(&app("big", "default"), &srcs)
        .await
        .unwrap();
    let h = harness_configured(Credentials::default(), |c| c.max_manifest_size = total - 1);
    let err = h
        .renderer
        .render(&app("big", "default"), &srcs)
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::ManifestsTooLarge { size, limit } if size > first && limit == total - 1),
        "{err}"
    );
    assert!(err.source_desc.ends_with("path two"), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "rendered manifests reach {} B, over the limit of {} B (--max-manifest-size)",
            total,
            total - 1
        )),
        "{err}"
    );
    // Cached renders count too: the same renderer, its cache warm, still refuses.
    let err = h
        .renderer
        .render(&app("big", "default"), &srcs)
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::ManifestsTooLarge { .. }),
        "{err}"
    );

    // Tool output counts the same way (one kustomize source of the same objects).
    let h = harness_configured(Credentials::default(), |c| c.max_manifest_size = first - 1);
    repo.write("kust/kustomization.yaml", "resources: [../one]\n")
        .unwrap();
    repo.write(
        "one/kustomization.yaml",
        format!(
            "resources: [{}]\n",
            files
                .iter()
                .map(|(f, _)| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .unwrap();
    repo.commit("kustomize").unwrap();
    let err = h
        .renderer
        .render(
            &app("big", "default"),
            &sources(&format!("- repoURL: {}\n  path: kust\n", repo.file_url())),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::ManifestsTooLarge { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn repositories_over_the_size_limit_are_not_checked_out() {
    let repo = repo_with(&[("a.yaml", cm("a")), ("blob.bin", "b".repeat(3 << 20))]);
    let err = render_with(&repo, |c| c.max_repo_size = 2 << 20)
        .await
        .unwrap_err();
    assert!(
        matches!(&err.kind, ErrorKind::RepositoryTooLarge { limit, .. } if *limit == 2 << 20),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("holds more than 2 MiB of files (--max-repo-size)"),
        "{err}"
    );
    assert_eq!(render_with(&repo, |_| {}).await.unwrap().len(), 1);
}

/// A worker left evaluating an endless program when the process that started it dies (a
/// controller killed mid-render, before its timeout could stop the worker) stops by itself.
#[test]
fn an_endless_jsonnet_worker_stops_when_its_starter_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(
        root.join("loop.jsonnet"),
        "std.foldl(function(a, x) a + x, std.range(1, 2e9), 0)",
    )
    .unwrap();
    let request = serde_json::json!({
        "root": root, "appDir": root, "file": root.join("loop.jsonnet"),
        "jsonnet": {}, "maxFileSize": 1 << 20,
    });
    std::fs::write(root.join("request.json"), request.to_string()).unwrap();
    // A shell starts the worker in the background, prints its pid and waits; then it is killed.
    let mut starter = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' < request.json > /dev/null 2>&1 & echo $!; wait",
            env!("CARGO_BIN_EXE_ferry-jsonnet")
        ))
        .current_dir(&root)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(starter.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let worker = format!("/proc/{}", line.trim());
    let running = || evaluating(&worker);
    std::thread::sleep(Duration::from_millis(500));
    assert!(running(), "the worker evaluates");
    starter.kill().unwrap();
    starter.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while running() {
        assert!(Instant::now() < deadline, "the orphaned worker still runs");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A starter gone before the worker could look at it (as the renderer does, it names
    // itself), whose end of the worker's stderr is closed: the farewell cannot be written.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let mut orphan = std::process::Command::new(env!("CARGO_BIN_EXE_ferry-jsonnet"))
        .env("FERRY_JSONNET_PARENT", gone.id().to_string())
        .stdin(std::fs::File::open(root.join("request.json")).unwrap())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(orphan.stderr.take());
    let worker = format!("/proc/{}", orphan.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while evaluating(&worker) {
        assert!(
            Instant::now() < deadline,
            "the worker of a starter gone early still runs"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    orphan.wait().unwrap();
}

/// Whether the process at `/proc/<pid>` path `proc` runs (exists and is no zombie).
fn evaluating(proc: &str) -> bool {
    std::fs::read_to_string(format!("{proc}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .unwrap()
            .1
            .trim_start()
            .starts_with('Z')
    })
}
