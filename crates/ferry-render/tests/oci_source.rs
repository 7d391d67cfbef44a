//! OCI plain-manifest sources (Argo CD 3.1): `repoURL: oci://registry/repository` without a
//! chart, the artifact pushed as `oras push` makes it to a real registry (TLS from a
//! certificate trusted through argocd-tls-certs-cm, basic auth), then rendered at `path`.

mod common;

use common::charts::*;
use common::*;
use ferry_git::{Credentials, RepoCredential, TlsCerts};
use ferry_testkit::registry::{Registry, RegistryOptions};

const CONFIG_MAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: guestbook\ndata:\n  greeting: hello\n";

#[tokio::test]
async fn an_oci_artifact_of_manifests_renders_at_its_path() {
    let registry = Registry::start(RegistryOptions {
        tls: true,
        auth: Some((USER, PASSWORD)),
        ..Default::default()
    })
    .unwrap();
    let digest = registry
        .pusher()
        .push_manifests(
            "manifests/guestbook",
            "v1",
            &[
                ("guestbook/cm.yaml", CONFIG_MAP),
                ("other/readme.txt", "not rendered"),
            ],
        )
        .await
        .unwrap();
    let repo = format!("oci://{}/manifests/guestbook", registry.host());
    let source = |revision: &str| {
        format!("- repoURL: {repo}\n  targetRevision: \"{revision}\"\n  path: guestbook\n")
    };
    let ca = [(
        "127.0.0.1".to_string(),
        registry.tls_certificate().unwrap().to_string(),
    )]
    .into();
    let credentials = || {
        Credentials::new()
            .with_repo(&repo, RepoCredential::basic(USER, PASSWORD))
            .with_tls_certs(TlsCerts::parse(&ca).0)
    };
    let h = harness_with(vec![], credentials());

    let rendered = render(&h, &source("v1")).await.unwrap();
    assert_eq!(rendered.objects.len(), 1, "{:?}", rendered.objects);
    assert_eq!(rendered.objects[0]["metadata"]["name"], "guestbook");
    assert_eq!(config_data(&rendered)["greeting"], "hello");
    assert_eq!(rendered.sources[0].revision, digest);
    // A digest names the same artifact.
    let by_digest = render(&h, &source(&digest)).await.unwrap();
    assert_eq!(by_digest.objects, rendered.objects);

    // Without the registry's credentials, or without trusting its certificate: errors
    // naming the artifact.
    let anonymous = harness_with(
        vec![],
        Credentials::new().with_tls_certs(TlsCerts::parse(&ca).0),
    );
    let err = render(&anonymous, &source("v1")).await.unwrap_err();
    assert!(err.contains("cannot pull OCI artifact"), "{err}");
    assert!(err.contains("manifests/guestbook:v1"), "{err}");
    let untrusted = harness_with(
        vec![],
        Credentials::new().with_repo(&repo, RepoCredential::basic(USER, PASSWORD)),
    );
    let err = render(&untrusted, &source("v1")).await.unwrap_err();
    assert!(err.contains("cannot pull OCI artifact"), "{err}");
    // A tag that is not there.
    let err = render(&h, &source("v2")).await.unwrap_err();
    assert!(err.contains("manifests/guestbook:v2"), "{err}");
}
