//! The executor moves artifacts through a real S3 server (MinIO from the toolchain): `run`
//! uploads a command's outputs after it succeeded, `init` fetches them back as another pod's
//! inputs, and the credentials reach neither the command nor the report.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use anyhow::Result;
use ferry_exec::Report;
use ferry_exec::artifacts::{self, Input, Plan, Source};
use ferry_exec::s3::Location;
use ferry_testkit::minio::Minio;

const EXEC: &str = env!("CARGO_BIN_EXE_ferry-exec");

fn location(minio: &Minio, key: &str) -> Location {
    Location {
        endpoint: minio.endpoint(),
        bucket: minio.bucket().into(),
        key: key.into(),
        insecure: true,
        region: None,
        access_key_env: Some("TEST_ACCESS".into()),
        secret_key_env: Some("TEST_SECRET".into()),
    }
}

fn exec(minio: &Minio, plan: &Plan, args: &[&str]) -> Output {
    Command::new(EXEC)
        .args(args)
        .env(artifacts::PLAN_ENV, serde_json::to_string(plan).unwrap())
        .env("TEST_ACCESS", minio.access_key())
        .env("TEST_SECRET", minio.secret_key())
        .output()
        .unwrap()
}

fn report(path: &Path) -> Report {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn outputs_go_up_as_archives_and_come_back_as_inputs() -> Result<()> {
    let minio = Minio::start("artifacts")?;
    let work = tempfile::tempdir()?;
    let dir = work.path();
    let out = dir.join("out");
    let plan = Plan {
        outputs: vec![
            artifacts::Output {
                name: "site".into(),
                path: out.join("site").display().to_string(),
                location: location(&minio, "wf/pod-1/site.tgz"),
                archive_none: false,
                optional: false,
            },
            artifacts::Output {
                name: "note".into(),
                path: out.join("note.txt").display().to_string(),
                location: location(&minio, "wf/pod-1/note.txt"),
                archive_none: true,
                optional: false,
            },
            artifacts::Output {
                name: "maybe".into(),
                path: out.join("absent").display().to_string(),
                location: location(&minio, "wf/pod-1/maybe.tgz"),
                archive_none: false,
                optional: true,
            },
        ],
        ..Plan::default()
    };
    let script = format!(
        "mkdir -p {o}/site/css && echo '<h1>hi</h1>' > {o}/site/index.html && echo 'h1 {{}}' > {o}/site/css/a.css && echo -n plain > {o}/note.txt && env > {d}/env",
        o = out.display(),
        d = dir.display()
    );
    let report_file = dir.join("report");
    let run = exec(
        &minio,
        &plan,
        &[
            "run",
            "--report",
            report_file.to_str().unwrap(),
            "--scratch",
            dir.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let saved = report(&report_file);
    assert_eq!(saved.error, None);
    assert_eq!(saved.artifacts["site"], "wf/pod-1/site.tgz");
    assert_eq!(saved.artifacts["note"], "wf/pod-1/note.txt");
    assert!(
        !saved.artifacts.contains_key("maybe"),
        "an absent optional output is skipped"
    );
    assert_eq!(
        minio.get("wf/pod-1/note.txt")?,
        b"plain",
        "archive none is uploaded as is"
    );
    assert_eq!(
        minio.get("wf/pod-1/site.tgz")?[..2],
        [0x1f, 0x8b],
        "a tar.gz"
    );
    let env = fs::read_to_string(dir.join("env"))?;
    assert!(
        !env.contains(minio.secret_key()),
        "the command saw the secret key"
    );
    assert!(!env.contains(artifacts::PLAN_ENV));

    let inputs = dir.join("inputs");
    fs::create_dir(&inputs)?;
    let plan = Plan {
        inputs: vec![
            Input {
                name: "site".into(),
                source: Source::S3(location(&minio, "wf/pod-1/site.tgz")),
                archive_none: false,
                optional: false,
            },
            Input {
                name: "note".into(),
                source: Source::S3(location(&minio, "wf/pod-1/note.txt")),
                archive_none: false,
                optional: false,
            },
            Input {
                name: "config".into(),
                source: Source::Raw("key: value\n".into()),
                archive_none: false,
                optional: false,
            },
            Input {
                name: "gone".into(),
                source: Source::S3(location(&minio, "wf/nowhere.tgz")),
                archive_none: false,
                optional: true,
            },
        ],
        ..Plan::default()
    };
    let init_report = dir.join("init-report");
    let dest = dir.join("ferry-exec-copy");
    let init = exec(
        &minio,
        &plan,
        &[
            "init",
            dest.to_str().unwrap(),
            "--inputs",
            inputs.to_str().unwrap(),
            "--report",
            init_report.to_str().unwrap(),
        ],
    );
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(dest.is_file(), "init still installs the executor");
    assert_eq!(
        fs::read_to_string(inputs.join("site/css/a.css"))?,
        "h1 {}\n"
    );
    assert_eq!(fs::read_to_string(inputs.join("note"))?, "plain");
    assert_eq!(fs::read_to_string(inputs.join("config"))?, "key: value\n");
    assert!(!inputs.join("gone").exists());
    Ok(())
}

#[test]
fn a_missing_input_or_a_wrong_key_fails_with_a_message_naming_the_artifact() -> Result<()> {
    let minio = Minio::start("artifacts")?;
    let work = tempfile::tempdir()?;
    let dir = work.path();
    let plan = Plan {
        inputs: vec![Input {
            name: "needed".into(),
            source: Source::S3(location(&minio, "nothing/here.tgz")),
            archive_none: false,
            optional: false,
        }],
        ..Plan::default()
    };
    let report_file = dir.join("report");
    let init = exec(
        &minio,
        &plan,
        &[
            "init",
            dir.join("copy").to_str().unwrap(),
            "--inputs",
            dir.to_str().unwrap(),
            "--report",
            report_file.to_str().unwrap(),
        ],
    );
    assert_eq!(init.status.code(), Some(1));
    let message = fs::read_to_string(&report_file)?;
    assert!(
        message.starts_with("input artifact needed: downloading s3://artifacts/nothing/here.tgz"),
        "{message}"
    );
    assert!(message.contains("not found"), "{message}");

    let plan = Plan {
        outputs: vec![artifacts::Output {
            name: "out".into(),
            path: "/etc/hostname".into(),
            location: location(&minio, "x/out.tgz"),
            archive_none: false,
            optional: false,
        }],
        ..Plan::default()
    };
    let run = Command::new(EXEC)
        .args([
            "run",
            "--report",
            report_file.to_str().unwrap(),
            "--scratch",
            dir.to_str().unwrap(),
            "--",
            "true",
        ])
        .env(artifacts::PLAN_ENV, serde_json::to_string(&plan)?)
        .env("TEST_ACCESS", minio.access_key())
        .env("TEST_SECRET", "wrong")
        .output()?;
    assert_eq!(
        run.status.code(),
        Some(1),
        "a success without its outputs is not a success"
    );
    let error = report(&report_file).error.unwrap();
    assert!(
        error.starts_with("output artifact out: uploading to s3://artifacts/x/out.tgz"),
        "{error}"
    );
    assert!(error.contains("403"), "{error}");
    assert!(!error.contains("wrong"));
    Ok(())
}
