//! Registry-wide credentials from their sources, against real registries: pull secrets and
//! Secret fields from the sandbox's API server, scripts re-run after `credsexpire`.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{PASSWORD, USER, conf_for, start};
use base64::Engine;
use ferry_registry::{ErrorKind, Registries, SecretReader};
use ferry_testkit::kube::TestContext;
use ferry_testkit::registry::{
    ManifestFormat, Registry as TestRegistry, RegistryOptions, TestImage,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;

async fn registry_with_image(token: bool) -> TestRegistry {
    let registry = start(RegistryOptions {
        auth: Some((USER, PASSWORD)),
        token,
        ..Default::default()
    });
    registry
        .push_image("app", "1", &TestImage::default(), ManifestFormat::Oci)
        .await
        .unwrap();
    registry
}

async fn create_secret(ctx: &TestContext, name: &str, type_: &str, data: serde_json::Value) {
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "type": type_,
        "stringData": data,
    }))
    .unwrap();
    ctx.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
}

fn registries(registry: &TestRegistry, extra: &str, ctx: Option<&TestContext>) -> Registries {
    let secrets = ctx.map(|c| Arc::new(c.client()) as Arc<dyn SecretReader>);
    Registries::new(&conf_for(registry, extra), secrets).unwrap()
}

#[tokio::test]
async fn a_pull_secret_and_a_secret_field_from_the_cluster() {
    let ctx = TestContext::new().await.unwrap();
    let basic = registry_with_image(false).await;
    let token = registry_with_image(true).await;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    create_secret(
        &ctx,
        "regcred",
        "kubernetes.io/dockerconfigjson",
        serde_json::json!({".dockerconfigjson": serde_json::json!({"auths": {
            "other.example": {"auth": "eDp5"},
            basic.host(): {"auth": auth},
        }}).to_string()}),
    )
    .await;
    create_secret(
        &ctx,
        "creds",
        "Opaque",
        serde_json::json!({"creds": format!("{USER}:{PASSWORD}")}),
    )
    .await;
    let ns = ctx.namespace();

    let all = registries(
        &basic,
        &format!("credentials: 'pullsecret:{ns}/regcred'"),
        Some(&ctx),
    );
    let client = all.for_image(Some(&basic.host()), "app").unwrap();
    assert_eq!(client.tags("app", None).await.unwrap(), ["1"]);

    let all = registries(
        &token,
        &format!("credentials: 'secret:{ns}/creds#creds'"),
        Some(&ctx),
    );
    let client = all.for_image(Some(&token.host()), "app").unwrap();
    assert_eq!(client.tags("app", None).await.unwrap(), ["1"]);

    // The pull secret has no entry for this registry's host.
    let all = registries(
        &token,
        &format!("credentials: 'pullsecret:{ns}/regcred'"),
        Some(&ctx),
    );
    let err = all
        .for_image(Some(&token.host()), "app")
        .unwrap()
        .tags("app", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Credentials);
    assert!(err.to_string().contains(&token.api_url()), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "pull secret {ns}/regcred: no entry for {}",
            token.host()
        )),
        "{err}"
    );

    let all = registries(
        &basic,
        &format!("credentials: 'secret:{ns}/missing#creds'"),
        Some(&ctx),
    );
    let err = all
        .for_image(Some(&basic.host()), "app")
        .unwrap()
        .tags("app", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Credentials);
    assert!(
        err.to_string()
            .contains(&format!("reading Secret {ns}/missing")),
        "{err}"
    );
}

#[tokio::test]
async fn a_script_runs_again_once_its_credentials_expire() {
    let registry = registry_with_image(true).await;
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let script = dir.path().join("creds.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho run >> '{}'\necho '{USER}:{PASSWORD}'\n",
            runs.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let count = || {
        std::fs::read_to_string(&runs)
            .unwrap_or_default()
            .lines()
            .count()
    };

    let all = registries(
        &registry,
        &format!("credentials: 'ext:{}', credsexpire: 1s", script.display()),
        None,
    );
    let client = all.for_image(Some(&registry.host()), "app").unwrap();
    assert_eq!(client.tags("app", None).await.unwrap(), ["1"]);
    client.digest("app", "1", None).await.unwrap();
    assert_eq!(count(), 1, "read once while fresh");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.digest("app", "1", None).await.unwrap();
    assert_eq!(count(), 2, "read again once expired");

    let all = registries(
        &registry,
        &format!("credentials: 'ext:{}'", script.display()),
        None,
    );
    let client = all.for_image(Some(&registry.host()), "app").unwrap();
    for _ in 0..3 {
        client.digest("app", "1", None).await.unwrap();
    }
    assert_eq!(count(), 3, "without credsexpire, read once");
}

#[tokio::test]
async fn an_unset_variable_is_a_credentials_error() {
    let registry = registry_with_image(false).await;
    let all = registries(
        &registry,
        "credentials: 'env:FERRY_REGISTRY_TEST_UNSET'",
        None,
    );
    let err = all
        .for_image(Some(&registry.host()), "app")
        .unwrap()
        .tags("app", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Credentials);
    assert!(
        err.to_string()
            .contains("environment variable FERRY_REGISTRY_TEST_UNSET is not set"),
        "{err}"
    );
}
