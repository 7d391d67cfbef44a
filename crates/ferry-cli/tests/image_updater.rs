//! `ferry image-updater test` as a process, against the distribution registry with test
//! images pushed to it (with basic auth, the credentials given as upstream's `env:` source).

use ferry_testkit::cli::CliHome;
use ferry_testkit::registry::{ManifestFormat, Registry, RegistryOptions, TestImage};

const AUTH: (&str, &str) = ("robot", "pa55word");

fn ferry(args: &[&str], registries_conf: &std::path::Path) -> (bool, String, String) {
    let out = CliHome::new()
        .unwrap()
        .command(env!("CARGO_BIN_EXE_ferry"))
        .args(["image-updater", "test"])
        .args(args)
        .arg("--registries-conf-path")
        .arg(registries_conf)
        .env("REGISTRY_CREDS", format!("{}:{}", AUTH.0, AUTH.1))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn test_shows_the_chosen_tag_and_why_the_others_were_not() -> anyhow::Result<()> {
    let registry = Registry::start(RegistryOptions {
        auth: Some(AUTH),
        ..Default::default()
    })?;
    for (i, tag) in ["1.17.0", "1.17.9", "1.18.0", "latest"].iter().enumerate() {
        let created = format!("2026-01-01T00:{i:02}:00Z");
        let image = TestImage {
            created: &created,
            ..TestImage::default()
        };
        registry
            .push_image("nginx", tag, &image, ManifestFormat::Oci)
            .await?;
    }
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "registries:\n- name: test\n  api_url: {}\n  prefix: {}\n  credentials: env:REGISTRY_CREDS\n",
            registry.api_url(),
            registry.host()
        ),
    )?;
    let image = format!("{}/nginx", registry.host());

    let (ok, out, err) = ferry(&[&image, "--semver-constraint", "~1.17"], &conf);
    assert!(ok, "{err}");
    let line = |tag: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{tag} ")))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("no line for {tag} in {out}"))
    };
    assert_eq!(line("1.17.9"), "chosen");
    assert_eq!(line("1.17.0"), "eligible, but not the newest");
    assert_eq!(line("1.18.0"), "outside the version constraint");
    assert_eq!(line("latest"), "not a semantic version");
    assert!(out.contains("latest tag:  1.17.9"), "{out}");

    // newest-build with an ignore pattern: "latest" was built last but is ignored.
    let (ok, out, err) = ferry(
        &[
            &image,
            "--update-strategy",
            "newest-build",
            "--ignore-tags",
            "lat*",
        ],
        &conf,
    );
    assert!(ok, "{err}");
    assert!(out.contains("latest tag:  1.18.0"), "{out}");

    // Nothing matches: said so, and still a success.
    let (ok, out, _) = ferry(&[&image, "--semver-constraint", "2.x"], &conf);
    assert!(ok);
    assert!(out.contains("latest tag:  none"), "{out}");

    // Bad input names the flag.
    let (ok, _, err) = ferry(&[&image, "--allow-tags", "regexp:("], &conf);
    assert!(!ok);
    assert!(
        err.contains("--allow-tags: invalid regular expression"),
        "{err}"
    );
    Ok(())
}
