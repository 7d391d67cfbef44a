//! The sandbox registry as its clients meet it: HTTPS verified with the sandbox CA on every
//! address it serves, pushes and pulls refused without credentials (401) and with wrong ones,
//! accepted with the ones `up` wrote (owner-only files, a docker-style auth config for every
//! address, containerd's hosts.toml per address), and images kept across `down` and `up`.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use anyhow::{Context, Result, ensure};
use base64::Engine;
use ferry_sandbox::Sandbox;
use ferry_sandbox::registry::{Registry, RegistryInfo, USERNAME};
use reqwest::{Client, Method, StatusCode, Url};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const REPOSITORY: &str = "probe/hello";

#[tokio::test(flavor = "multi_thread")]
async fn the_registry_serves_tls_from_the_sandbox_ca_and_only_to_its_credentials() -> Result<()> {
    // A sandbox of its own: the registry needs no control plane, and `down` here stops no one
    // else's.
    let sandbox = Sandbox::named(&format!("registry-it-{}", std::process::id()))?;
    let _cleanup = Cleanup(&sandbox);
    exercise(&sandbox, &Registry::of(&sandbox)).await
}

/// Stops the registry and removes the sandbox's directory, also when an assertion fails.
struct Cleanup<'a>(&'a Sandbox);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = Registry::of(self.0).down();
        let _ = fs::remove_dir_all(self.0.dir());
    }
}

async fn exercise(sandbox: &Sandbox, registry: &Registry<'_>) -> Result<()> {
    let info = tokio::task::block_in_place(|| registry.up())?;
    let password = info.password()?;
    assert_eq!(info.username, USERNAME);
    assert!(info.addresses.contains(&info.address));
    let port = info.address.rsplit_once(':').context("host:port")?.1;
    for host in ["127.0.0.1", "localhost"] {
        assert!(
            info.addresses.contains(&format!("{host}:{port}")),
            "{info:?}"
        );
    }
    files_for_clients(&info, &password)?;

    let trusting = Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&fs::read(&info.ca)?)?)
        .build()?;
    // Every address is in the certificate; anonymous requests get a basic-auth challenge.
    for address in &info.addresses {
        let response = trusting
            .get(format!("https://{address}/v2/"))
            .send()
            .await
            .with_context(|| format!("TLS to {address} with the sandbox CA"))?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{address}");
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Basic realm="ferry-sandbox""#
        );
    }
    // Without the sandbox CA the certificate is not trusted.
    let public_roots_only = Client::new();
    let err = public_roots_only
        .get(format!("https://{}/v2/", info.address))
        .send()
        .await
        .expect_err("the registry's certificate is the sandbox CA's, not a public one");
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");

    let base = Url::parse(&format!("https://{}/", info.address))?;
    let as_ferry = Auth::Basic(USERNAME.into(), password.clone());
    let wrong = Auth::Basic(USERNAME.into(), "not-the-password".into());

    // Anonymous and wrong-password pushes are refused before anything is stored.
    for auth in [&Auth::Anonymous, &wrong] {
        let url = base.join(&format!("v2/{REPOSITORY}/blobs/uploads/"))?;
        let response = send(&trusting, Method::POST, url, auth, None).await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
    }

    let manifest = push_image(&trusting, &base, &as_ferry).await?;
    let manifest_url = base.join(&format!("v2/{REPOSITORY}/manifests/v1"))?;
    for auth in [&Auth::Anonymous, &wrong] {
        let response = send(&trusting, Method::GET, manifest_url.clone(), auth, None).await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
    }
    assert_eq!(pull(&trusting, &manifest_url, &as_ferry).await?, manifest);

    // Stopped, nothing answers; started again, the same address serves the same image.
    registry.down()?;
    assert!(registry.running().is_none());
    assert!(
        trusting
            .get(format!("https://{}/v2/", info.address))
            .send()
            .await
            .is_err()
    );
    let again = tokio::task::block_in_place(|| registry.up())?;
    assert_eq!(again.addresses, info.addresses);
    assert_eq!(again.password()?, password);
    assert_eq!(pull(&trusting, &manifest_url, &as_ferry).await?, manifest);
    assert_eq!(Registry::of(sandbox).info()?, again);
    Ok(())
}

/// The credentials and auth config are the owner's only; containerd gets a hosts.toml and the
/// CA for every address.
fn files_for_clients(info: &RegistryInfo, password: &str) -> Result<()> {
    for secret in [&info.credentials, &info.auth_config] {
        let mode = fs::metadata(secret)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", secret.display());
    }
    let auth_config: Value = serde_json::from_slice(&fs::read(&info.auth_config)?)?;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USERNAME}:{password}"));
    let ca = fs::read(&info.ca)?;
    for address in &info.addresses {
        assert_eq!(auth_config["auths"][address]["auth"], basic.as_str());
        let dir = info.containerd_certs_dir.join(address);
        let hosts = fs::read_to_string(dir.join("hosts.toml"))?;
        assert!(
            hosts.starts_with(&format!("server = \"https://{address}\"\n")),
            "{hosts}"
        );
        assert!(hosts.contains(&format!("ca = \"{}\"", dir.join("ca.crt").display())));
        assert_eq!(fs::read(dir.join("ca.crt"))?, ca);
    }
    Ok(())
}

#[derive(Debug)]
enum Auth {
    Anonymous,
    Basic(String, String),
}

async fn send(
    client: &Client,
    method: Method,
    url: Url,
    auth: &Auth,
    body: Option<(&str, Vec<u8>)>,
) -> Result<reqwest::Response> {
    let mut request = client.request(method, url);
    if let Auth::Basic(user, password) = auth {
        request = request.basic_auth(user, Some(password));
    }
    if let Some((content_type, body)) = body {
        request = request.header("content-type", content_type).body(body);
    }
    Ok(request.send().await?)
}

/// Pushes a one-layer OCI image as `REPOSITORY:v1` through the distribution API (upload
/// session, then PUT with the digest) and returns its manifest.
async fn push_image(client: &Client, base: &Url, auth: &Auth) -> Result<Vec<u8>> {
    let layer = b"not really a tarball, but the registry stores blobs as they come".to_vec();
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}
    }))?;
    let mut descriptors = Vec::new();
    for (media_type, blob) in [
        ("application/vnd.oci.image.config.v1+json", config),
        ("application/vnd.oci.image.layer.v1.tar", layer),
    ] {
        let digest = format!("sha256:{:x}", Sha256::digest(&blob));
        let url = base.join(&format!("v2/{REPOSITORY}/blobs/uploads/"))?;
        let session = send(client, Method::POST, url, auth, None).await?;
        ensure!(session.status() == StatusCode::ACCEPTED, "{session:?}");
        let location = session.headers()["location"].to_str()?;
        let mut upload = base.join(location)?;
        upload.query_pairs_mut().append_pair("digest", &digest);
        let size = blob.len();
        let stored = send(
            client,
            Method::PUT,
            upload,
            auth,
            Some(("application/octet-stream", blob)),
        )
        .await?;
        ensure!(stored.status() == StatusCode::CREATED, "{stored:?}");
        descriptors.push(json!({"mediaType": media_type, "digest": digest, "size": size}));
    }
    let media_type = "application/vnd.oci.image.manifest.v1+json";
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptors[0],
        "layers": [descriptors[1]],
    }))?;
    let url = base.join(&format!("v2/{REPOSITORY}/manifests/v1"))?;
    let stored = send(
        client,
        Method::PUT,
        url,
        auth,
        Some((media_type, manifest.clone())),
    )
    .await?;
    ensure!(stored.status() == StatusCode::CREATED, "{stored:?}");
    Ok(manifest)
}

async fn pull(client: &Client, url: &Url, auth: &Auth) -> Result<Vec<u8>> {
    let mut request = client
        .get(url.clone())
        .header("accept", "application/vnd.oci.image.manifest.v1+json");
    if let Auth::Basic(user, password) = auth {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await?;
    ensure!(response.status() == StatusCode::OK, "{response:?}");
    Ok(response.bytes().await?.to_vec())
}
