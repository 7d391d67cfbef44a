//! The writers every component shares, on a real API server: Argo CD Secrets saved as `argocd
//! ... add` saves them, and the read-change-write of an object.

use anyhow::Result;
use ferry_runtime::secret_store::{self as store, SaveError, Saved};
use ferry_runtime::{UpdateError, update};
use ferry_testkit::kube::TestContext;
use ferry_types::secrets::{RepoSecret, RepoSecretKind, SECRET_TYPE_REPOSITORY};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::PostParams;

#[tokio::test]
async fn secrets_are_created_kept_refused_or_replaced_under_their_own_name() -> Result<()> {
    let ctx = TestContext::new().await?;
    let secrets: Api<Secret> = ctx.api();
    let repo = RepoSecret {
        password: Some("one".into()),
        ..RepoSecret::new(RepoSecretKind::Repository, "https://git.example.com/a")
    };
    let saved = store::save(
        &secrets,
        repo.to_secret(ctx.namespace()),
        None,
        &repo,
        false,
    )
    .await?;
    assert!(matches!(saved, Saved::Created(_)));

    // As found by a listing: under a name of its own, as a Secret written by hand may be.
    let mut by_hand = repo.to_secret(ctx.namespace());
    by_hand.metadata.name = Some("written-by-hand".into());
    secrets.create(&PostParams::default(), &by_hand).await?;
    secrets
        .delete(&repo.secret_name(), &Default::default())
        .await?;
    let listed = store::list_typed(&secrets, &[SECRET_TYPE_REPOSITORY]).await?;
    assert_eq!(listed.len(), 1);
    let existing = || Some(("written-by-hand".to_string(), repo.clone()));

    let same = store::save(
        &secrets,
        repo.to_secret(ctx.namespace()),
        existing(),
        &repo,
        false,
    );
    assert!(matches!(same.await?, Saved::Unchanged));
    let changed = RepoSecret {
        password: Some("two".into()),
        ..repo.clone()
    };
    let secret = changed.to_secret(ctx.namespace());
    let refused = store::save(&secrets, secret.clone(), existing(), &changed, false).await;
    assert!(matches!(refused, Err(SaveError::Differs)));
    let Saved::Updated(written) = store::save(&secrets, secret, existing(), &changed, true).await?
    else {
        panic!("not updated");
    };
    assert_eq!(written.metadata.name.as_deref(), Some("written-by-hand"));
    assert_eq!(RepoSecret::from_secret(&written).unwrap(), changed);
    Ok(())
}

#[tokio::test]
async fn updates_write_only_changes_and_report_refusals_and_absence() -> Result<()> {
    let ctx = TestContext::new().await?;
    let config_maps: Api<ConfigMap> = ctx.api();
    let config_map: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "settings"},
        "data": {"a": "1"},
    }))?;
    config_maps
        .create(&PostParams::default(), &config_map)
        .await?;

    let set_b = |cm: &mut ConfigMap| -> Result<(), String> {
        cm.data
            .get_or_insert_default()
            .insert("b".into(), "2".into());
        Ok(())
    };
    let (written, changed) = update(&config_maps, "settings", set_b).await.unwrap();
    assert!(changed);
    assert_eq!(written.data.unwrap()["b"], "2");
    let (_, changed) = update(&config_maps, "settings", set_b).await.unwrap();
    assert!(!changed);

    let refuse = |_: &mut ConfigMap| Err("no".to_string());
    let refused = update(&config_maps, "settings", refuse).await;
    assert!(matches!(refused, Err(UpdateError::Change(reason)) if reason == "no"));
    let missing = update(&config_maps, "nothing", set_b).await;
    assert!(matches!(missing, Err(UpdateError::NotFound)));
    Ok(())
}
