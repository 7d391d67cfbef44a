//! Anonymous, basic and bearer auth, tag pages, manifests and indexes, the metadata cache, the
//! rate limit, TLS trust and outages.

use std::time::{Duration, Instant};

use crate::common::{PASSWORD, USER, client_for, start};
use ferry_registry::{Credentials, ErrorKind, ManifestOptions, Platform};
use ferry_testkit::registry::{ManifestFormat, RegistryOptions, TestImage};

fn image(created: &'static str) -> TestImage<'static> {
    TestImage {
        created,
        ..Default::default()
    }
}

fn metadata() -> ManifestOptions {
    ManifestOptions {
        platforms: vec![],
        metadata: true,
    }
}

#[tokio::test]
async fn anonymous_tags_digest_and_creation_time() {
    let registry = start(RegistryOptions::default());
    let v1 = registry
        .push_image(
            "team/app",
            "v1",
            &image("2026-03-01T10:00:00Z"),
            ManifestFormat::Oci,
        )
        .await
        .unwrap();
    let v2 = registry
        .push_image(
            "team/app",
            "v2",
            &TestImage {
                created: "2026-03-02T10:00:00.5Z",
                labels: &[("org.opencontainers.image.version", "2")],
                ..Default::default()
            },
            ManifestFormat::Docker,
        )
        .await
        .unwrap();
    let client = client_for(&registry, "");

    let mut tags = client.tags("team/app", None).await.unwrap();
    tags.sort();
    assert_eq!(tags, ["v1", "v2"]);
    assert_eq!(client.digest("team/app", "v1", None).await.unwrap(), v1);

    let info = client
        .tag_info("team/app", "v2", &metadata(), None)
        .await
        .unwrap()
        .expect("an image for any platform");
    assert_eq!(info.digest, v2);
    assert_eq!(
        info.created,
        Some("2026-03-02T10:00:00.5Z".parse().unwrap())
    );
    assert_eq!(info.labels["org.opencontainers.image.version"], "2");

    let err = client.tags("team/missing", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string()
            .starts_with(&format!("registry test ({})", registry.api_url())),
        "{err}"
    );
    assert!(err.to_string().contains("NameUnknown"), "{err}");
    let err = client.digest("team/app", "v9", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string().contains("manifest team/app:v9 not found"),
        "{err}"
    );
}

#[tokio::test]
async fn basic_auth_with_right_wrong_and_no_credentials() {
    let registry = start(RegistryOptions {
        auth: Some((USER, PASSWORD)),
        ..Default::default()
    });
    registry
        .push_image(
            "app",
            "1.0.0",
            &image("2026-01-01T00:00:00Z"),
            ManifestFormat::Oci,
        )
        .await
        .unwrap();
    let client = client_for(&registry, "");
    let right = Credentials::new(USER, PASSWORD);
    assert_eq!(client.tags("app", Some(&right)).await.unwrap(), ["1.0.0"]);

    let wrong = Credentials::new(USER, "guess");
    let err = client.tags("app", Some(&wrong)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let message = err.to_string();
    assert!(message.contains(&registry.api_url()), "{message}");
    assert!(
        message.contains("credentials of user robot rejected"),
        "{message}"
    );
    assert!(
        !message.contains("guess"),
        "the password never shows: {message}"
    );

    let err = client.tags("app", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(
        err.to_string().contains("no credentials configured"),
        "{err}"
    );
}

#[tokio::test]
async fn bearer_tokens_from_the_registrys_token_service() {
    let registry = start(RegistryOptions {
        auth: Some((USER, PASSWORD)),
        token: true,
        ..Default::default()
    });
    let pushed = registry
        .push_image(
            "team/app",
            "1.0.0",
            &image("2026-01-01T00:00:00Z"),
            ManifestFormat::Oci,
        )
        .await
        .unwrap();
    let tokens = registry.token_service().unwrap();
    let issued_for_push = tokens.issued();
    let client = client_for(&registry, "");
    let right = Credentials::new(USER, PASSWORD);

    // Ten lookups at once on a fresh client: each learns the challenge, one token serves all.
    let lookups = (0..10).map(|_| client.digest("team/app", "1.0.0", Some(&right)));
    for digest in futures::future::join_all(lookups).await {
        assert_eq!(digest.unwrap(), pushed);
    }
    assert_eq!(
        client.tags("team/app", Some(&right)).await.unwrap(),
        ["1.0.0"]
    );
    let info = client
        .tag_info("team/app", "1.0.0", &metadata(), Some(&right))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.digest, pushed);
    assert_eq!(
        tokens.issued() - issued_for_push,
        1,
        "one token for the repository's scope"
    );

    let err = client
        .tags("team/app", Some(&Credentials::new(USER, "guess")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(
        err.to_string().contains(&format!(
            "token service {} refused the credentials of user robot",
            tokens.realm()
        )),
        "{err}"
    );
    let err = client.tags("team/app", None).await.unwrap_err();
    assert!(
        err.to_string().contains("refused anonymous access"),
        "{err}"
    );

    tokens.deny("team/app");
    let client = client_for(&registry, "");
    let err = client.tags("team/app", Some(&right)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied);
    assert!(
        err.to_string()
            .contains("user robot not granted repository:team/app:pull (insufficient_scope"),
        "{err}"
    );
}

#[tokio::test]
async fn a_busy_token_service_is_waited_for_as_it_asks() {
    let registry = start(RegistryOptions {
        auth: Some((USER, PASSWORD)),
        token: true,
        ..Default::default()
    });
    registry
        .push_image(
            "app",
            "1",
            &image("2026-01-01T00:00:00Z"),
            ManifestFormat::Oci,
        )
        .await
        .unwrap();
    let tokens = registry.token_service().unwrap();
    let right = Credentials::new(USER, PASSWORD);

    tokens.throttle_next(1, 1);
    let started = Instant::now();
    let client = client_for(&registry, "");
    assert_eq!(client.tags("app", Some(&right)).await.unwrap(), ["1"]);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );

    tokens.throttle_next(10, 1);
    let client = client_for(&registry, "");
    let err = client.tags("app", Some(&right)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert!(err.to_string().contains("too many requests (429)"), "{err}");
    assert!(err.to_string().contains("after 4 tries"), "{err}");
}

#[tokio::test]
async fn tag_lists_are_followed_across_link_pages() {
    let registry = start(RegistryOptions {
        max_tags: Some(5),
        ..Default::default()
    });
    let mut expected: Vec<String> = Vec::new();
    for i in 0..23 {
        let tag = format!("1.0.{i}");
        registry
            .push_image(
                "app",
                &tag,
                &image("2026-01-01T00:00:00Z"),
                ManifestFormat::Oci,
            )
            .await
            .unwrap();
        expected.push(tag);
    }
    let client = client_for(&registry, "");
    let mut tags = client.tags("app", None).await.unwrap();
    tags.sort();
    expected.sort();
    assert_eq!(tags, expected);
    // 5 pages of at most 5; the server's access log saw each of them.
    assert_eq!(client.requests_sent(), 5);
    assert_eq!(registry.log().matches("GET /v2/app/tags/list").count(), 5);
}

#[tokio::test]
async fn indexes_are_filtered_by_platform() {
    let registry = start(RegistryOptions::default());
    let images = [
        TestImage {
            created: "2026-05-01T00:00:00Z",
            ..Default::default()
        },
        TestImage {
            architecture: "arm64",
            variant: Some("v8"),
            created: "2026-05-03T00:00:00Z",
            labels: &[("arch", "arm64")],
            ..Default::default()
        },
        TestImage {
            architecture: "arm",
            variant: Some("v7"),
            created: "2026-05-02T00:00:00Z",
            ..Default::default()
        },
    ];
    for (tag, format) in [
        ("oci", ManifestFormat::Oci),
        ("docker", ManifestFormat::Docker),
    ] {
        let pushed = registry
            .push_index("app", tag, &images, format)
            .await
            .unwrap();
        let client = client_for(&registry, "");
        let info_for = |platforms: &[&str]| {
            let options = ManifestOptions {
                platforms: platforms
                    .iter()
                    .map(|p| p.parse::<Platform>().unwrap())
                    .collect(),
                metadata: true,
            };
            let client = client.clone();
            async move { client.tag_info("app", tag, &options, None).await.unwrap() }
        };
        let all = info_for(&[]).await.unwrap();
        assert_eq!(
            all.digest, pushed,
            "{tag}: the index's digest, for every platform"
        );
        assert_eq!(all.created, Some("2026-05-03T00:00:00Z".parse().unwrap()));
        let amd64 = info_for(&["linux/amd64"]).await.unwrap();
        assert_eq!(amd64.created, Some("2026-05-01T00:00:00Z".parse().unwrap()));
        let arm64 = info_for(&["linux/arm64"]).await.unwrap();
        assert_eq!(
            arm64.labels["arch"], "arm64",
            "linux/arm64 takes the v8 variant"
        );
        let armv7 = info_for(&["linux/arm/v7"]).await.unwrap();
        assert_eq!(armv7.created, Some("2026-05-02T00:00:00Z".parse().unwrap()));
        assert_eq!(info_for(&["linux/arm/v6"]).await, None);
        assert_eq!(info_for(&["windows/amd64"]).await, None);
    }
}

#[tokio::test]
async fn a_known_tag_costs_one_head_request() {
    let registry = start(RegistryOptions::default());
    registry
        .push_index(
            "app",
            "1",
            &[
                image("2026-01-01T00:00:00Z"),
                TestImage {
                    architecture: "arm64",
                    ..image("2026-01-02T00:00:00Z")
                },
            ],
            ManifestFormat::Oci,
        )
        .await
        .unwrap();
    let client = client_for(&registry, "");
    // Without metadata an index is judged by its platform list: HEAD and the index.
    let platforms_only = ManifestOptions {
        platforms: vec!["linux/arm64".parse().unwrap()],
        metadata: false,
    };
    let info = client
        .tag_info("app", "1", &platforms_only, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.created, None);
    assert_eq!(client.requests_sent(), 2);
    // With metadata: the two images' manifests and configs too.
    client
        .tag_info("app", "1", &metadata(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.requests_sent(), 2 + 1 + 4);
    let blobs_fetched = registry.log().matches("GET /v2/app/blobs/").count();
    assert_eq!(blobs_fetched, 2);
    // Again: the digest is known, so only the HEAD.
    let again = client
        .tag_info("app", "1", &metadata(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.created, Some("2026-01-02T00:00:00Z".parse().unwrap()));
    assert_eq!(client.requests_sent(), 2 + 1 + 4 + 1);
    assert_eq!(
        registry.log().matches("GET /v2/app/blobs/").count(),
        blobs_fetched
    );
    // A re-pushed tag has a new digest, which is fetched.
    registry
        .push_image(
            "app",
            "1",
            &image("2026-02-01T00:00:00Z"),
            ManifestFormat::Oci,
        )
        .await
        .unwrap();
    let moved = client
        .tag_info("app", "1", &metadata(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.created, Some("2026-02-01T00:00:00Z".parse().unwrap()));
}

#[tokio::test]
async fn requests_keep_to_the_rate_limit() {
    let registry = start(RegistryOptions::default());
    registry
        .push_image(
            "app",
            "1",
            &image("2026-01-01T00:00:00Z"),
            ManifestFormat::Oci,
        )
        .await
        .unwrap();
    let client = client_for(&registry, "limit: 2");
    let started = Instant::now();
    for _ in 0..6 {
        client.digest("app", "1", None).await.unwrap();
    }
    // 2 per second: the first two at once, then one every half second.
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_custom_ca_is_trusted_and_needed() {
    let registry = start(RegistryOptions {
        tls: true,
        ..Default::default()
    });
    registry
        .push_image(
            "app",
            "1",
            &image("2026-01-01T00:00:00Z"),
            ManifestFormat::Oci,
        )
        .await
        .unwrap();
    let cert = registry.tls_certificate().unwrap();

    let untrusting = client_for(&registry, "");
    let err = untrusting.tags("app", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable);
    assert!(err.to_string().contains(&registry.api_url()), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, cert).unwrap();
    let with_file = client_for(&registry, &format!("ca_file: '{}'", ca_file.display()));
    assert_eq!(with_file.tags("app", None).await.unwrap(), ["1"]);
    let with_data = client_for(
        &registry,
        &format!("ca_data: {}", serde_json::to_string(cert).unwrap()),
    );
    assert_eq!(with_data.tags("app", None).await.unwrap(), ["1"]);
    let insecure = client_for(&registry, "insecure: true");
    assert_eq!(insecure.tags("app", None).await.unwrap(), ["1"]);
}

#[tokio::test]
async fn an_outage_names_the_registry_and_the_cause() {
    let mut registry = start(RegistryOptions::default());
    registry
        .push_image(
            "app",
            "1",
            &image("2026-01-01T00:00:00Z"),
            ManifestFormat::Oci,
        )
        .await
        .unwrap();
    let client = client_for(&registry, "");
    assert_eq!(client.tags("app", None).await.unwrap(), ["1"]);

    registry.stop();
    let err = client.tags("app", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable);
    assert_eq!(
        err.registry(),
        Some(format!("test ({})", registry.api_url()).as_str())
    );
    assert!(err.to_string().contains("Connection refused"), "{err}");

    registry.restart().unwrap();
    assert_eq!(client.tags("app", None).await.unwrap(), ["1"]);
}
