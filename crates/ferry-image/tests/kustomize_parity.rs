//! `kustomization::set_image` against the real `kustomize edit set image` (scripts/toolchain's
//! pinned binary): the same `images:` and nothing else changed, with ferry keeping comments
//! that kustomize's rewrite drops.

use std::path::PathBuf;
use std::process::Command;

use ferry_image::kustomization::{self, KustomizeImage};

fn kustomize() -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/toolchain");
    let out = Command::new(script)
        .arg("--print")
        .output()
        .expect("scripts/toolchain runs");
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()).join("kustomize");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/toolchain",
        path.display()
    );
    path
}

/// The kustomization as data, its images sorted by name as kustomize writes them.
fn normalized(text: &str) -> serde_yaml::Value {
    let mut value: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    if let Some(images) = value.get_mut("images").and_then(|v| v.as_sequence_mut()) {
        images.sort_by_key(|image| image["name"].as_str().unwrap_or_default().to_owned());
    }
    value
}

const BASE: &str = "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
# what to deploy
resources:
  - deployment.yaml
images:
  - name: alpine # a comment kustomize loses
    newTag: \"3.18\"
  - name: postgres
    newName: eu.gcr.io/old/postgres
    newTag: \"14\"
  - name: redis
    digest: sha256:0000000000000000000000000000000000000000000000000000000000000000
";

const DIGEST: &str = "sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3";

#[test]
fn set_image_gives_what_kustomize_edit_set_image_gives() {
    let kustomize = kustomize();
    let no_images =
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- a.yaml\n";
    let cases: Vec<(&str, String)> = vec![
        (BASE, "alpine:3.19".into()),
        (BASE, "postgres:16".into()),
        (BASE, "postgres=eu.gcr.io/new/postgres:16".into()),
        (BASE, "postgres=mariadb".into()),
        (BASE, format!("redis@{DIGEST}")),
        (BASE, format!("redis:7.2@{DIGEST}")),
        (BASE, "redis=registry.example.com:5000/cache/redis:7".into()),
        (BASE, "node:8.15.0".into()),
        (BASE, "aaa:1".into()),
        (BASE, "zzz=ghcr.io/o/zzz:v2.0.0".into()),
        (no_images, "web=registry.example.com/web:1.0.0".into()),
        (no_images, "nginx:1.27".into()),
    ];
    for (text, arg) in cases {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kustomization.yaml");
        std::fs::write(&file, text).unwrap();
        let out = Command::new(&kustomize)
            .args(["edit", "set", "image", &arg])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kustomize {arg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = std::fs::read_to_string(&file).unwrap();

        let ours =
            kustomization::set_image(text, &KustomizeImage::parse_arg(&arg).unwrap()).unwrap();
        assert!(ours.changed(), "{arg}");
        assert_eq!(
            normalized(&ours.text),
            normalized(&theirs),
            "{arg}:\n{}",
            ours.text
        );
        if text == BASE {
            assert!(ours.text.contains("# what to deploy\n"), "{arg}");
            assert!(ours.text.contains("# a comment kustomize loses"), "{arg}");
        }
        // Applying the same again changes nothing, for kustomize neither.
        let again = kustomization::set_image(&ours.text, &KustomizeImage::parse_arg(&arg).unwrap())
            .unwrap();
        assert!(!again.changed(), "{arg}");
    }
}

#[test]
fn kustomize_refuses_what_ferry_refuses() {
    let kustomize = kustomize();
    for arg in ["nginx", ""] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kustomization.yaml"), BASE).unwrap();
        let out = Command::new(&kustomize)
            .args(["edit", "set", "image", arg])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "kustomize accepted {arg:?}");
        assert!(KustomizeImage::parse_arg(arg).is_err(), "{arg:?}");
    }
}

/// The images of every container in a stream of documents, in order.
fn container_images(text: &str) -> Vec<String> {
    fn walk(value: &serde_yaml::Value, out: &mut Vec<String>) {
        match value {
            serde_yaml::Value::Mapping(map) => {
                for (key, value) in map {
                    let containers =
                        ["containers", "initContainers"].contains(&key.as_str().unwrap_or(""));
                    match value.as_sequence() {
                        Some(list) if containers => out.extend(list.iter().map(|c| {
                            format!(
                                "{}={}",
                                c["name"].as_str().unwrap(),
                                c["image"].as_str().unwrap()
                            )
                        })),
                        _ => walk(value, out),
                    }
                }
            }
            serde_yaml::Value::Sequence(list) => list.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = <serde_yaml::Value as serde::Deserialize>::deserialize(document).unwrap();
        walk(&value, &mut out);
    }
    out.sort();
    out
}

#[test]
fn manifest_images_are_set_as_kustomizes_image_transformer_sets_them() {
    let kustomize = kustomize();
    let manifests = format!(
        "\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  template:
    spec:
      initContainers:
      - {{name: migrate, image: registry.example.com/team/web:1.0.0}}
      containers:
      - {{name: web, image: registry.example.com/team/web@{DIGEST}}}
      - {{name: proxy, image: nginx:1.25}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: report}}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - {{name: report, image: registry.example.com/team/web}}
"
    );
    for arg in [
        "registry.example.com/team/web:1.1.0".to_owned(),
        format!("registry.example.com/team/web@{DIGEST}"),
        format!("registry.example.com/team/web:1.2.0@{DIGEST}"),
        "registry.example.com/team/web=ghcr.io/o/web:2".to_owned(),
        "registry.example.com/team/web=ghcr.io/o/web".to_owned(),
        "nginx:1.27".to_owned(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("all.yaml"), &manifests).unwrap();
        std::fs::write(
            dir.path().join("kustomization.yaml"),
            "resources: [all.yaml]\n",
        )
        .unwrap();
        let set = Command::new(&kustomize)
            .args(["edit", "set", "image", &arg])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            set.status.success(),
            "{arg}: {}",
            String::from_utf8_lossy(&set.stderr)
        );
        let built = Command::new(&kustomize)
            .arg("build")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            built.status.success(),
            "{arg}: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let theirs = container_images(&String::from_utf8(built.stdout).unwrap());

        let ours =
            ferry_image::manifest::set_image(&manifests, &KustomizeImage::parse_arg(&arg).unwrap())
                .unwrap();
        assert_eq!(container_images(&ours.text), theirs, "{arg}");
    }
}
