//! MinIO, an S3-compatible server for the workflow engine's artifacts: built by
//! `scripts/toolchain`, run on a free port with a fresh data directory, random root
//! credentials and one bucket created. It listens on every interface so that pods on the
//! sandbox's real node reach it by the host's address ([`Minio::pod_endpoint`]), as they
//! reach the sandbox registry. Stopped when dropped.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let minio = ferry_testkit::minio::Minio::start("artifacts")?;
//! minio.put("a/b.txt", b"hello")?;
//! assert_eq!(minio.get("a/b.txt")?, b"hello");
//! # Ok(()) }
//! ```

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rand::distr::{Alphanumeric, SampleString};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use tempfile::TempDir;

use crate::daemon::{start_on_free_port, stop};

/// A running MinIO with one bucket.
pub struct Minio {
    child: Child,
    port: u16,
    bucket: String,
    access_key: String,
    secret_key: String,
    _dir: TempDir,
}

impl Minio {
    /// Starts MinIO and creates `bucket`.
    pub fn start(bucket: &str) -> Result<Self> {
        let binary = binary()?;
        let dir = tempfile::Builder::new().prefix("ferry-minio-").tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data)?;
        let access_key = format!("ferry{}", random(8));
        let secret_key = random(24);
        let command = |port: u16| {
            let mut command = Command::new(&binary);
            command
                .arg("server")
                .arg(&data)
                .args(["--address", &format!("0.0.0.0:{port}"), "--quiet"])
                .env("MINIO_ROOT_USER", &access_key)
                .env("MINIO_ROOT_PASSWORD", &secret_key)
                .env("MINIO_BROWSER", "off")
                .env("MINIO_UPDATE", "off")
                .env("HOME", dir.path());
            Ok(command)
        };
        let (child, port) = start_on_free_port(&dir.path().join("minio.log"), command, ready)?;
        let minio = Minio {
            child,
            port,
            bucket: bucket.to_string(),
            access_key,
            secret_key,
            _dir: dir,
        };
        let url = minio
            .bucket_handle()?
            .create_bucket(&minio.credentials())
            .sign(SIGNED_FOR);
        // Ready for health checks is not yet ready for every request: retry a few seconds.
        let mut attempts = 0;
        loop {
            match agent().put(url.as_str()).send_empty() {
                Ok(_) => return Ok(minio),
                Err(_) if attempts < 40 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(err) => return Err(err).with_context(|| format!("creating bucket {bucket}")),
            }
        }
    }

    /// `127.0.0.1:port`, for this host.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `host:port` by the host's default-route address, for pods on the real node.
    pub fn pod_endpoint(&self) -> Result<String> {
        let ip = ferry_sandbox::default_route_address()
            .context("this host has no default-route address for pods to reach MinIO by")?;
        Ok(format!("{ip}:{}", self.port))
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The object at `key` of the bucket.
    pub fn get(&self, key: &str) -> Result<Vec<u8>> {
        let url = self
            .bucket_handle()?
            .get_object(Some(&self.credentials()), key)
            .sign(SIGNED_FOR);
        let mut body = Vec::new();
        agent()
            .get(url.as_str())
            .call()
            .with_context(|| format!("getting {key}"))?
            .body_mut()
            .as_reader()
            .read_to_end(&mut body)?;
        Ok(body)
    }

    /// Stores `body` at `key` of the bucket.
    pub fn put(&self, key: &str, body: &[u8]) -> Result<()> {
        let url = self
            .bucket_handle()?
            .put_object(Some(&self.credentials()), key)
            .sign(SIGNED_FOR);
        agent()
            .put(url.as_str())
            .send(body)
            .with_context(|| format!("putting {key}"))?;
        Ok(())
    }

    fn credentials(&self) -> Credentials {
        Credentials::new(&self.access_key, &self.secret_key)
    }

    fn bucket_handle(&self) -> Result<Bucket> {
        let url = format!("http://{}", self.endpoint()).parse()?;
        Ok(Bucket::new(
            url,
            UrlStyle::Path,
            self.bucket.clone(),
            "us-east-1",
        )?)
    }
}

impl Drop for Minio {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

const SIGNED_FOR: Duration = Duration::from_secs(300);

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn random(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// MinIO answers its readiness check once it serves requests.
fn ready(stream: &mut std::net::TcpStream) -> bool {
    let request = "GET /minio/health/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    let mut answer = [0u8; 12];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && answer.ends_with(b"200")
}

/// The toolchain's `minio`, built by `scripts/toolchain` first if missing.
fn binary() -> Result<PathBuf> {
    let binary = ferry_sandbox::toolchain::bin_dir().join("minio");
    if binary.is_file() {
        return Ok(binary);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/toolchain");
    let status = Command::new(&script)
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() || !binary.is_file() {
        bail!("{} did not build {}", script.display(), binary.display());
    }
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_round_trip_and_need_the_credentials() -> Result<()> {
        let minio = Minio::start("things")?;
        minio.put("a/b.txt", b"hello")?;
        assert_eq!(minio.get("a/b.txt")?, b"hello");
        assert!(minio.get("a/missing").is_err());
        let anonymous = minio
            .bucket_handle()?
            .get_object(None, "a/b.txt")
            .sign(SIGNED_FOR);
        let denied = agent().get(anonymous.as_str()).call();
        assert!(
            matches!(denied, Err(ureq::Error::StatusCode(403))),
            "{denied:?}"
        );
        Ok(())
    }
}
