//! `GET /api/v1/settings` shows argocd-cm's resource customizations as Argo CD does
//! (`resourceOverrides`), to anyone: the web UI marks the fields system-wide rules ignore.

use anyhow::Result;
use ferry_testkit::kube::TestContext;

use crate::harness::{Server, install_crds, put_config_map};

#[tokio::test]
async fn settings_show_argocd_cm_resource_overrides_without_login() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    put_config_map(
        &ctx,
        "argocd-cm",
        &[
            (
                "resource.customizations.ignoreDifferences.apps_Deployment",
                "jsonPointers:\n- /spec/replicas\n",
            ),
            (
                "resource.customizations.ignoreDifferences.all",
                "managedFieldsManagers: [kube-controller-manager]\n",
            ),
        ],
    )
    .await?;
    let server = Server::start(&ctx).await?;

    let settings = server.get("/api/v1/settings", None).await?;
    assert_eq!(settings.status, 200, "{:?}", settings.body);
    let overrides = &settings.body["resourceOverrides"];
    let deployment: serde_yaml::Value = serde_yaml::from_str(
        overrides["apps/Deployment"]["ignoreDifferences"]
            .as_str()
            .unwrap_or_default(),
    )?;
    assert_eq!(
        deployment["jsonPointers"],
        serde_yaml::from_str::<serde_yaml::Value>("[/spec/replicas]")?
    );
    let all = overrides["*/*"]["ignoreDifferences"]
        .as_str()
        .unwrap_or_default();
    assert!(all.contains("- kube-controller-manager"), "{overrides}");
    Ok(())
}
