//! OCI plain-manifest sources (Argo CD 3.1): `repoURL: oci://registry/repository` without a
//! `chart`, `targetRevision` a tag or a digest. The artifact's layer (as `oras push` makes it:
//! `application/vnd.oci.image.layer.v1.tar+gzip`, or a plain tar) is unpacked into a
//! directory, which is then rendered as a Git checkout would be (`path` inside it). Argo CD's
//! default layer media types are accepted; a Helm chart's layer is refused here (a chart
//! source names its `chart`).

use std::io::Read;
use std::path::Path;

use ferry_git::RepoCredential;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::manifest::{IMAGE_LAYER_GZIP_MEDIA_TYPE, IMAGE_LAYER_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;

use crate::ErrorKind;

/// Whether `repo_url` names an OCI artifact of manifests rather than a Git repository.
pub(crate) fn is_oci(repo_url: &str) -> bool {
    repo_url.trim().starts_with("oci://")
}

/// Pulls the artifact `repo_url` at `revision` into `dest`, at most `max_size` bytes unpacked;
/// returns the manifest's digest (the source's revision).
pub(crate) async fn pull(
    repo_url: &str,
    revision: &str,
    credential: &RepoCredential,
    ca_pem: Option<&str>,
    dest: &Path,
    max_size: u64,
) -> Result<String, ErrorKind> {
    let (reference, text) = reference(repo_url, revision)?;
    let client = client(credential, ca_pem);
    let auth = auth(credential);
    let image = client
        .pull(
            &reference,
            &auth,
            vec![IMAGE_LAYER_GZIP_MEDIA_TYPE, IMAGE_LAYER_MEDIA_TYPE],
        )
        .await
        .map_err(|e| ErrorKind::Invalid(format!("cannot pull OCI artifact {text}: {e}")))?;
    if image.layers.len() != 1 {
        return Err(ErrorKind::Invalid(format!(
            "OCI artifact {text} has {} layers; a source's artifact has exactly one",
            image.layers.len()
        )));
    }
    let layer = &image.layers[0];
    let data: Box<dyn Read + '_> = if layer.media_type == IMAGE_LAYER_GZIP_MEDIA_TYPE {
        Box::new(flate2::read::GzDecoder::new(layer.data.as_ref()))
    } else {
        Box::new(layer.data.as_ref())
    };
    crate::archive::unpack(data, dest, max_size, false)
        .map_err(|e| ErrorKind::Invalid(format!("unpacking OCI artifact {text}: {e}")))?;
    image
        .digest
        .ok_or_else(|| ErrorKind::Invalid(format!("OCI artifact {text} has no digest")))
}

/// The reference of `revision` (a tag or a digest) of the repository `repo_url`, and how
/// messages name it.
fn reference(repo_url: &str, revision: &str) -> Result<(oci_client::Reference, String), ErrorKind> {
    let repository = repo_url
        .trim()
        .trim_start_matches("oci://")
        .trim_end_matches('/');
    let revision = revision.trim();
    if revision.is_empty() {
        return Err(ErrorKind::Invalid(
            "an OCI source needs a targetRevision: a tag or a digest".into(),
        ));
    }
    let text = if revision.contains(':') {
        format!("{repository}@{revision}")
    } else {
        format!("{repository}:{revision}")
    };
    let reference = text
        .parse()
        .map_err(|e| ErrorKind::Invalid(format!("OCI reference {text}: {e}")))?;
    Ok((reference, text))
}

/// The annotations of the manifest `revision` of `repo_url` (an image index's, for an index).
pub(crate) async fn annotations(
    repo_url: &str,
    revision: &str,
    credential: &RepoCredential,
    ca_pem: Option<&str>,
) -> Result<std::collections::BTreeMap<String, String>, ErrorKind> {
    let (reference, text) = reference(repo_url, revision)?;
    let (manifest, _) = client(credential, ca_pem)
        .pull_manifest(&reference, &auth(credential))
        .await
        .map_err(|e| ErrorKind::Invalid(format!("cannot read the OCI manifest {text}: {e}")))?;
    Ok(match manifest {
        oci_client::manifest::OciManifest::Image(image) => image.annotations,
        oci_client::manifest::OciManifest::ImageIndex(index) => index.annotations,
    }
    .unwrap_or_default())
}

/// Most tags asked for per page of a tag list.
const TAGS_PAGE: usize = 1000;

/// Every tag of the OCI repository `repo_url` (`oci://` optional), as Argo CD lists them for
/// `ListOCITags`: by the registry's order, `_` read back as the `+` SemVer build metadata it
/// stands for.
pub async fn oci_tags(
    repo_url: &str,
    credential: &RepoCredential,
    ca_pem: Option<&str>,
) -> Result<Vec<String>, ErrorKind> {
    let repository = repo_url
        .trim()
        .trim_start_matches("oci://")
        .trim_end_matches('/');
    let reference: oci_client::Reference = repository
        .parse()
        .map_err(|e| ErrorKind::Invalid(format!("OCI repository {repository}: {e}")))?;
    let client = client(credential, ca_pem);
    let auth = auth(credential);
    let mut tags: Vec<String> = Vec::new();
    loop {
        let page = client
            .list_tags(
                &reference,
                &auth,
                Some(TAGS_PAGE),
                tags.last().map(String::as_str),
            )
            .await
            .map_err(|e| {
                ErrorKind::Invalid(format!("cannot list the tags of {repository}: {e}"))
            })?;
        let full = page.tags.len() >= TAGS_PAGE;
        tags.extend(page.tags);
        if !full {
            break;
        }
    }
    Ok(tags.into_iter().map(|tag| tag.replace('_', "+")).collect())
}

/// A registry client speaking as the repository's credential says: plain HTTP, skipped
/// verification, the host's trusted certificates, its proxy.
fn client(credential: &RepoCredential, ca_pem: Option<&str>) -> oci_client::Client {
    // reqwest (under oci-client) takes the process's rustls provider; ring, as kube's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let proxy = credential.proxy.clone().filter(|p| !p.trim().is_empty());
    oci_client::Client::new(ClientConfig {
        protocol: if credential.insecure_oci_force_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        accept_invalid_certificates: credential.insecure,
        extra_root_certificates: ca_pem
            .map(|pem| Certificate {
                encoding: CertificateEncoding::Pem,
                data: pem.as_bytes().to_vec(),
            })
            .into_iter()
            .collect(),
        https_proxy: proxy.clone(),
        http_proxy: proxy,
        no_proxy: credential.no_proxy.clone(),
        ..Default::default()
    })
}

fn auth(credential: &RepoCredential) -> RegistryAuth {
    match (&credential.username, &credential.password) {
        (Some(user), Some(password)) => RegistryAuth::Basic(user.clone(), password.clone()),
        _ => RegistryAuth::Anonymous,
    }
}
