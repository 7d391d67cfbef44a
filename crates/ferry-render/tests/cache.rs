//! The render cache: a repeated render of an unchanged commit runs no tool; a new commit, other
//! options or other Application facts render again.

mod common;

use common::*;
use ferry_testkit::git::GitRepo;

fn kustomize_repo() -> GitRepo {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: {v: \"1\"}\n",
    )
    .unwrap();
    repo.write("app/kustomization.yaml", "resources: [cm.yaml]\n")
        .unwrap();
    repo.commit("one").unwrap();
    repo
}

#[tokio::test]
async fn second_render_of_the_same_commit_runs_no_tool() {
    let repo = kustomize_repo();
    let h = harness(vec![]);
    let srcs = sources(&format!(
        "- repoURL: {}\n  path: app\n  targetRevision: main\n",
        repo.file_url()
    ));
    let ctx = app("web", "default");

    let first = h.renderer.render(&ctx, &srcs).await.unwrap();
    let after_first = h.renderer.stats();
    assert_eq!((after_first.cache.hits, after_first.cache.misses), (0, 1));
    assert!(after_first.tool_runs >= 1);

    let second = h.renderer.render(&ctx, &srcs).await.unwrap();
    let after_second = h.renderer.stats();
    assert_eq!(second, first);
    assert_eq!((after_second.cache.hits, after_second.cache.misses), (1, 1));
    assert_eq!(
        after_second.tool_runs, after_first.tool_runs,
        "a cache hit must not run kustomize"
    );

    // The same commit asked for by SHA is the same cache entry.
    let by_sha = sources(&format!(
        "- repoURL: {}\n  path: app\n  targetRevision: {}\n",
        repo.file_url(),
        repo.head().unwrap()
    ));
    h.renderer.render(&ctx, &by_sha).await.unwrap();
    assert_eq!(h.renderer.stats().cache.hits, 2);
    assert_eq!(h.renderer.stats().tool_runs, after_first.tool_runs);

    // A new commit, other options, or another namespace render again.
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: {v: \"2\"}\n",
    )
    .unwrap();
    repo.commit("two").unwrap();
    let third = h.renderer.render(&ctx, &srcs).await.unwrap();
    assert_eq!(third.objects[0]["data"]["v"], "2");
    assert_eq!(h.renderer.stats().cache.misses, 2);
    assert!(h.renderer.stats().tool_runs > after_first.tool_runs);

    let prefixed = sources(&format!(
        "- repoURL: {}\n  path: app\n  kustomize: {{namePrefix: p-}}\n",
        repo.file_url()
    ));
    let fourth = h.renderer.render(&ctx, &prefixed).await.unwrap();
    assert_eq!(fourth.objects[0]["metadata"]["name"], "p-settings");
    h.renderer
        .render(&app("web", "other"), &srcs)
        .await
        .unwrap();
    assert_eq!(h.renderer.stats().cache.misses, 4);
    assert_eq!(h.renderer.stats().cache.entries, 4);
}

#[tokio::test]
async fn failed_renders_are_not_cached() {
    let repo = GitRepo::new().unwrap();
    repo.write(
        "app/bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: X\nmetadata: {}\n",
    )
    .unwrap();
    repo.commit("bad").unwrap();
    let h = harness(vec![]);
    let srcs = sources(&format!("- repoURL: {}\n  path: app\n", repo.file_url()));
    for _ in 0..2 {
        assert!(
            h.renderer
                .render(&app("a", "default"), &srcs)
                .await
                .is_err()
        );
    }
    let stats = h.renderer.stats().cache;
    assert_eq!((stats.hits, stats.misses, stats.entries), (0, 2, 0));
}

/// A plugin whose output depends on something outside the repository (as a chart dependency's
/// version range or a plugin reading the network does): a cached render keeps the old output
/// until a hard refresh renders again, and the new render replaces the cached one.
#[tokio::test]
async fn a_hard_refresh_renders_again_and_replaces_the_cached_render() {
    let outside = tempfile::tempdir().unwrap();
    let value = outside.path().join("value");
    std::fs::write(&value, "one").unwrap();
    let plugin = format!(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: ConfigManagementPlugin
metadata:
  name: outside
spec:
  generate:
    command: [sh, -c]
    args: ["printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: outside\ndata:\n  v: %s\n' $(cat {})"]
"#,
        value.display()
    );
    let repo = GitRepo::new().unwrap();
    repo.write("cmp/placeholder.txt", "x").unwrap();
    repo.commit("cmp").unwrap();
    let h = harness(vec![
        ferry_render::PluginConfig::from_yaml(&plugin).unwrap(),
    ]);
    let srcs = sources(&format!(
        "- repoURL: {}\n  path: cmp\n  plugin: {{name: outside}}\n",
        repo.file_url()
    ));
    let ctx = app("web", "default");
    let rendered = |objects: &ferry_render::Rendered| objects.objects[0]["data"]["v"].clone();

    assert_eq!(
        rendered(&h.renderer.render(&ctx, &srcs).await.unwrap()),
        "one"
    );
    std::fs::write(&value, "two").unwrap();
    assert_eq!(
        rendered(&h.renderer.render(&ctx, &srcs).await.unwrap()),
        "one",
        "an unchanged commit is served from the cache"
    );
    let hard = ferry_render::AppContext {
        hard_refresh: true,
        ..ctx.clone()
    };
    assert_eq!(
        rendered(&h.renderer.render(&hard, &srcs).await.unwrap()),
        "two"
    );
    assert_eq!(
        rendered(&h.renderer.render(&ctx, &srcs).await.unwrap()),
        "two",
        "the hard refresh's render replaced the cached one"
    );
    assert_eq!(h.renderer.stats().cache.entries, 1);
}
