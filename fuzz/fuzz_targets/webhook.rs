//! Git providers' push webhooks: `ferry_server::webhook::parse` (provider detection, signature
//! check, each provider's payload parser) and `matches` on what it accepted.
//!
//! Input: an HTTP-like delivery, header lines `Name: value`, an empty line, then the body. In a
//! header value, `{sign}` is replaced by the hex HMAC-SHA256 of the body under the configured
//! secret, so fuzzed bodies get past the signature check and reach the payload parsers.

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use ferry_server::webhook::{self, WebhookSecrets};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;

const SECRET: &str = "fuzz-secret";
const BITBUCKET_UUID: &str = "{0d0b4d0c-6a8f-4c55-9d0e-2a6f1e3b7c44}";

/// Application sources a push is matched against.
const APP_REPOS: [&str; 5] = [
    "https://github.com/argoproj/argocd-example-apps.git",
    "git@gitlab.com:group/project.git",
    "ssh://git@bitbucket.example.com:7999/plat/guestbook.git",
    "https://[::1]:3000/gitea/apps",
    "",
];
const TARGET_REVISIONS: [&str; 5] = ["HEAD", "", "main", "refs/tags/v1.0.0", "v1.0.0"];

fn secrets() -> &'static WebhookSecrets {
    static SECRETS: OnceLock<WebhookSecrets> = OnceLock::new();
    SECRETS.get_or_init(|| {
        let mut data = BTreeMap::new();
        for key in [
            "webhook.github.secret",
            "webhook.gitlab.secret",
            "webhook.bitbucketserver.secret",
            "webhook.gogs.secret",
        ] {
            data.insert(key.to_string(), SECRET.as_bytes().to_vec());
        }
        data.insert(
            "webhook.bitbucket.uuid".to_string(),
            BITBUCKET_UUID.as_bytes().to_vec(),
        );
        WebhookSecrets::from_secret_data(&data)
    })
}

fn signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Header block and body.
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[]),
    }
}

fn headers(block: &[u8], body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut signed: Option<String> = None;
    for line in block.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let Ok(name) = HeaderName::from_bytes(line[..colon].trim_ascii()) else {
            continue;
        };
        let mut value = line[colon + 1..].trim_ascii().to_vec();
        if let Some(at) = value.windows(6).position(|w| w == b"{sign}") {
            let hex = signed.get_or_insert_with(|| signature(body));
            value.splice(at..at + 6, hex.bytes());
        }
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            headers.append(name, value);
        }
    }
    headers
}

fuzz_target!(|data: &[u8]| {
    let (block, body) = split(data);
    let headers = headers(block, body);
    let push = match webhook::parse(&headers, body, secrets()) {
        Ok(push) => push,
        Err(err) => {
            let _ = err.to_string();
            return;
        }
    };
    assert!(!push.repo_urls.is_empty() && !push.revision_refs.is_empty());
    for url in &push.repo_urls {
        for pushed in &push.revision_refs {
            let _ = webhook::matches(url, &pushed.full_ref, &push);
            let _ = webhook::matches(url, &pushed.name, &push);
        }
        for repo in APP_REPOS {
            let _ = webhook::same_repository(url, repo);
            for revision in TARGET_REVISIONS {
                let _ = webhook::matches(repo, revision, &push);
            }
        }
    }
});
