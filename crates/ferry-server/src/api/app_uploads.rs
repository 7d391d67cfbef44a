//! `POST /api/v1/applications/manifestsWithFiles` (Argo CD's client-streaming
//! `GetManifestsWithFiles`, behind `argocd app diff --local --server-side-generate`): the app's
//! source rendered from files the caller uploads instead of its repository. The body is the
//! stream's messages as JSON, one per line, as the gRPC gateway passes them on: first
//! `{"query": {"name", "checksum", "appNamespace"}}`, then `{"chunk": {"chunk": <base64>}}`
//! parts of a gzip'd tar. The caller must be allowed to `get` the app — checked before any of
//! the upload is read; the archive may weigh [`MAX_ARCHIVE`] and must match its SHA-256
//! `checksum`; the controller unpacks it by the archive rules (nothing leaves its directory)
//! and renders it for the app's cluster.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::{Extension, Json};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::app_views::send;
use super::applications::authorized_app;
use super::authn::Caller;
use super::error::{ApiError, Code};
use super::state::AppState;
use crate::rbac::resources::GET;

/// The largest archive taken, as Argo CD's default `--streamed-manifest-max-tar-size`.
pub const MAX_ARCHIVE: usize = 100 * 1024 * 1024;
/// The longest message line: a chunk of 4 MiB (gRPC's default message limit) in base64, and
/// some.
const MAX_LINE: usize = 8 * 1024 * 1024;

/// Argo CD's `ApplicationManifestQueryWithFiles`.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct UploadQuery {
    name: String,
    checksum: String,
    app_namespace: String,
}

/// One message of the stream: the query or a chunk.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Part {
    query: Option<UploadQuery>,
    chunk: Option<Chunk>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Chunk {
    chunk: String,
}

pub async fn manifests_with_files(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let mut lines = Lines::new(body);
    let query = match lines.next_part().await? {
        Some(Part {
            query: Some(query), ..
        }) => query,
        _ => {
            return Err(ApiError::invalid_argument(
                "error getting stream query: query is nil",
            ));
        }
    };
    if query.name.is_empty() {
        return Err(ApiError::invalid_argument(
            "invalid request: application name is missing",
        ));
    }
    let name = if query.app_namespace.is_empty() {
        query.name.clone()
    } else {
        format!("{}/{}", query.app_namespace, query.name)
    };
    authorized_app(&state, &caller, &name, GET).await?;
    let mut archive = Vec::new();
    let mut hash = Sha256::new();
    while let Some(part) = lines.next_part().await? {
        let Some(chunk) = part.chunk else {
            return Err(ApiError::invalid_argument(
                "error getting stream chunk: chunk is nil",
            ));
        };
        let bytes = STANDARD
            .decode(chunk.chunk.as_bytes())
            .map_err(|err| ApiError::invalid_argument(format!("a chunk is no base64: {err}")))?;
        if archive.len() + bytes.len() > MAX_ARCHIVE {
            return Err(ApiError::new(
                Code::ResourceExhausted,
                format!("file exceeded max size of {MAX_ARCHIVE} bytes"),
            ));
        }
        hash.update(&bytes);
        archive.extend_from_slice(&bytes);
    }
    let computed = hex::encode(hash.finalize());
    if !computed.eq_ignore_ascii_case(&query.checksum) {
        return Err(ApiError::invalid_argument(format!(
            "file checksum validation error: calc {computed} sent {}",
            query.checksum
        )));
    }
    send(
        &state,
        &name,
        "manifests-with-files",
        &[],
        Some((Bytes::from(archive), "application/gzip")),
    )
    .await
}

/// The lines of a body, each at most [`MAX_LINE`] long, read as they arrive.
struct Lines {
    stream: axum::body::BodyDataStream,
    buffer: Vec<u8>,
    done: bool,
}

impl Lines {
    fn new(body: Body) -> Self {
        Self {
            stream: body.into_data_stream(),
            buffer: Vec::new(),
            done: false,
        }
    }

    /// The next non-empty line as a message of the stream.
    async fn next_part(&mut self) -> Result<Option<Part>, ApiError> {
        loop {
            if let Some(end) = self.buffer.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if line.trim_ascii().is_empty() {
                    continue;
                }
                return parse(&line).map(Some);
            }
            if self.buffer.len() > MAX_LINE {
                return Err(ApiError::invalid_argument(format!(
                    "a message of the stream is longer than {MAX_LINE} bytes"
                )));
            }
            if self.done {
                let line = std::mem::take(&mut self.buffer);
                if line.trim_ascii().is_empty() {
                    return Ok(None);
                }
                return parse(&line).map(Some);
            }
            match self.stream.next().await {
                Some(Ok(data)) => self.buffer.extend_from_slice(&data),
                Some(Err(err)) => {
                    return Err(ApiError::invalid_argument(format!(
                        "reading the upload: {err}"
                    )));
                }
                None => self.done = true,
            }
        }
    }
}

fn parse(line: &[u8]) -> Result<Part, ApiError> {
    serde_json::from_slice(line)
        .map_err(|err| ApiError::invalid_argument(format!("a message of the stream: {err}")))
}
