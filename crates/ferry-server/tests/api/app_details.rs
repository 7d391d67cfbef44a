//! App details (`POST /api/v1/repositories/{url}/appdetails`, Argo CD's `GetAppDetails`) of a
//! plugin source: the server, given the controller's plugin configs, finds the plugin that
//! discovers the source and answers the parameters it announces, as the app forms show them.

use anyhow::Result;
use ferry_testkit::git::GitRepo;
use ferry_testkit::kube::TestContext;
use serde_json::json;

use crate::harness::{Server, admin_password, create_project, install_crds, segment};

const PLUGIN: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: ConfigManagementPlugin
metadata:
  name: regions
spec:
  version: v2
  generate:
    command: [cat, all.yaml]
  discover:
    fileName: "regions.txt"
  parameters:
    static:
      - name: replicas
        title: Replicas
        required: true
        string: "1"
    dynamic:
      command: [sh, -c]
      args: ['printf "[{\"name\":\"regions\",\"collectionType\":\"array\",\"array\":[\"%s\"]}]" "$(cat regions.txt)"']
"#;

#[tokio::test]
async fn a_plugin_sources_details_are_the_parameters_its_plugin_announces() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    create_project(&ctx, "plugins", json!({"sourceRepos": ["file:///**"]})).await?;
    let repo = GitRepo::new()?;
    repo.write("cmp/regions.txt", "eu-west")?;
    repo.write("cmp/all.yaml", "")?;
    repo.write("plain/cm.yaml", "apiVersion: v1\nkind: ConfigMap\n")?;
    let commit = repo.commit("a plugin source and a directory")?;
    let plugins = tempfile::tempdir()?;
    std::fs::write(plugins.path().join("regions.yaml"), PLUGIN)?;
    let server = Server::start_with(
        &ctx,
        &[
            "--plugin-config-dir".into(),
            plugins.path().display().to_string(),
        ],
    )
    .await?;
    let admin = server.token("admin", &admin_password(&ctx).await?).await?;
    let url = repo.file_url();
    let endpoint = format!("/api/v1/repositories/{}/appdetails", segment(&url));
    let details = |path: &str| {
        server.post(
            &endpoint,
            Some(&admin),
            json!({"source": {"repoURL": url, "path": path, "targetRevision": commit},
                   "appName": "new-app", "appProject": "plugins"}),
        )
    };

    let plugin = details("cmp").await?;
    assert_eq!(plugin.status, 200, "{:?}", plugin.body);
    assert_eq!(plugin.body["type"], "Plugin", "{:?}", plugin.body);
    assert_eq!(
        plugin.body["plugin"]["parametersAnnouncement"],
        json!([
            {"name": "regions", "collectionType": "array", "array": ["eu-west"]},
            {"name": "replicas", "title": "Replicas", "required": true, "string": "1"},
        ]),
        "{:?}",
        plugin.body
    );
    let plain = details("plain").await?;
    assert_eq!(plain.body["type"], "Directory", "{:?}", plain.body);
    server.stop().await?;
    Ok(())
}
