//! The sandbox's registry, in the role users give Harbor: HTTPS with a certificate from the
//! sandbox CA, htpasswd credentials. ferry-registry trusts it through `ca_file` only.

use ferry_registry::{Credentials, ErrorKind, Registries, RegistriesConf};
use ferry_sandbox::Sandbox;
use ferry_sandbox::registry::Registry as SandboxRegistry;
use ferry_testkit::registry::{ImagePusher, ManifestFormat, TestImage};

/// Stops the registry and removes the sandbox's directory, also when an assertion fails.
struct Cleanup<'a>(&'a Sandbox);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = SandboxRegistry::of(self.0).down();
        let _ = std::fs::remove_dir_all(self.0.dir());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_registry_with_its_ca_and_credentials() {
    // A sandbox of its own: the registry needs no control plane, and `down` stops no one else's.
    let sandbox = Sandbox::named(&format!("ferry-registry-it-{}", std::process::id())).unwrap();
    let _cleanup = Cleanup(&sandbox);
    let info = tokio::task::block_in_place(|| SandboxRegistry::of(&sandbox).up()).unwrap();
    let password = info.password().unwrap();
    let pushed = ImagePusher::new(&info.address, true, Some((&info.username, &password)))
        .push_image(
            "ferry/app",
            "1.2.3",
            &TestImage {
                created: "2026-06-01T12:00:00Z",
                ..Default::default()
            },
            ManifestFormat::Docker,
        )
        .await
        .unwrap();

    let conf = |extra: &str| {
        RegistriesConf::parse(&format!(
            "registries:\n- {{name: sandbox, api_url: 'https://{0}', prefix: '{0}'{extra}}}\n",
            info.address
        ))
        .unwrap()
    };
    let creds = Credentials::new(&info.username, &password);
    let trusting = Registries::new(&conf(&format!(", ca_file: '{}'", info.ca.display())), None)
        .unwrap()
        .for_image(Some(&info.address), "ferry/app")
        .unwrap();
    assert_eq!(
        trusting.tags("ferry/app", Some(&creds)).await.unwrap(),
        ["1.2.3"]
    );
    let tag = trusting
        .tag_info(
            "ferry/app",
            "1.2.3",
            &ferry_registry::ManifestOptions {
                platforms: vec!["linux/amd64".parse().unwrap()],
                metadata: true,
            },
            Some(&creds),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tag.digest, pushed);
    assert_eq!(tag.created, Some("2026-06-01T12:00:00Z".parse().unwrap()));

    let untrusting = Registries::new(&conf(""), None)
        .unwrap()
        .for_image(Some(&info.address), "ferry/app")
        .unwrap();
    let err = untrusting
        .tags("ferry/app", Some(&creds))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable);
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}
