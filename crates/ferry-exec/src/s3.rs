//! Objects of an S3-compatible store, moved with presigned requests (rusty-s3 signs, ureq
//! sends) so the executor stays a small static binary without an async runtime.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde::{Deserialize, Serialize};

/// How long a signed request stays valid: the transfer must start within it.
const SIGNED_FOR: Duration = Duration::from_secs(15 * 60);

/// One object, and how to reach its store. Credentials are named, not held: the pod gets them
/// from Secrets as environment variables, so they are in no plan, log or report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// `host:port`
    pub endpoint: String,
    pub bucket: String,
    pub key: String,
    /// Plain HTTP rather than HTTPS.
    #[serde(default)]
    pub insecure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The environment variables holding the access key and the secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_env: Option<String>,
}

/// Why a transfer failed; `NotFound` lets optional artifacts be skipped.
#[derive(Debug, PartialEq)]
pub enum Error {
    NotFound(String),
    Other(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotFound(message) | Error::Other(message) => f.write_str(message),
        }
    }
}

impl Location {
    fn shown(&self) -> String {
        format!("s3://{}/{} at {}", self.bucket, self.key, self.endpoint)
    }

    fn bucket(&self) -> Result<(Bucket, Option<Credentials>), String> {
        let scheme = if self.insecure { "http" } else { "https" };
        let url = format!("{scheme}://{}", self.endpoint)
            .parse()
            .map_err(|err| format!("endpoint {:?}: {err}", self.endpoint))?;
        let region = self.region.clone().unwrap_or_else(|| "us-east-1".into());
        let bucket = Bucket::new(url, UrlStyle::Path, self.bucket.clone(), region)
            .map_err(|err| format!("bucket {:?}: {err}", self.bucket))?;
        let credentials = match (&self.access_key_env, &self.secret_key_env) {
            (Some(access), Some(secret)) => {
                let read = |name: &str| {
                    std::env::var(name)
                        .map_err(|_| format!("the credential variable {name} is not set"))
                };
                Some(Credentials::new(read(access)?, read(secret)?))
            }
            _ => None,
        };
        Ok((bucket, credentials))
    }

    /// Uploads the file at `source`.
    pub fn put(&self, source: &Path) -> Result<(), Error> {
        let (bucket, credentials) = self.bucket().map_err(Error::Other)?;
        let url = bucket
            .put_object(credentials.as_ref(), &self.key)
            .sign(SIGNED_FOR);
        let file = File::open(source)
            .map_err(|err| Error::Other(format!("{}: {err}", source.display())))?;
        let length = file
            .metadata()
            .map_err(|err| Error::Other(format!("{}: {err}", source.display())))?
            .len();
        // S3 wants a length, not a chunked body.
        agent()
            .put(url.as_str())
            .header("content-length", length.to_string())
            .send(ureq::SendBody::from_owned_reader(file))
            .map(drop)
            .map_err(|err| self.failed("uploading to", err))
    }

    /// Downloads the object into the file `dest`.
    pub fn get(&self, dest: &Path) -> Result<(), Error> {
        let (bucket, credentials) = self.bucket().map_err(Error::Other)?;
        let url = bucket
            .get_object(credentials.as_ref(), &self.key)
            .sign(SIGNED_FOR);
        let mut response = agent()
            .get(url.as_str())
            .call()
            .map_err(|err| self.failed("downloading", err))?;
        let mut file =
            File::create(dest).map_err(|err| Error::Other(format!("{}: {err}", dest.display())))?;
        std::io::copy(&mut response.body_mut().as_reader(), &mut file)
            .and_then(|_| file.flush())
            .map(drop)
            .map_err(|err| Error::Other(format!("downloading {}: {err}", self.shown())))
    }

    fn failed(&self, what: &str, err: ureq::Error) -> Error {
        match err {
            ureq::Error::StatusCode(404) => {
                Error::NotFound(format!("{what} {}: not found", self.shown()))
            }
            ureq::Error::StatusCode(code) => {
                Error::Other(format!("{what} {}: HTTP status {code}", self.shown()))
            }
            other => Error::Other(format!("{what} {}: {other}", self.shown())),
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .build()
        .into()
}
