//! Authenticating a delivery, in constant time: every comparison goes through the `hmac` crate's
//! `verify_slice`, so how long a check takes says nothing about how close a guess was.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;

use super::error::WebhookError;
use super::provider::{Credential, Provider, header};

type HmacSha256 = Hmac<Sha256>;

/// Whether the delivery carries `provider`'s proof of `secret`.
pub(crate) fn authenticate(
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
    secret: &[u8],
) -> Result<(), WebhookError> {
    let (name, genuine) = match provider.credential() {
        Credential::HmacSha256 {
            header: name,
            prefix,
        } => {
            let value = header(headers, name).ok_or(WebhookError::MissingSignature {
                provider,
                header: name,
            })?;
            let genuine = value
                .strip_prefix(prefix)
                .is_some_and(|signature| signature_matches(secret, body, signature));
            (name, genuine)
        }
        Credential::Token { header: name } => {
            let value = header(headers, name).ok_or(WebhookError::MissingSignature {
                provider,
                header: name,
            })?;
            let genuine = if provider == Provider::BitbucketCloud {
                same_secret(&hook_uuid(secret), &hook_uuid(value.as_bytes()))
            } else {
                same_secret(secret, value.as_bytes())
            };
            (name, genuine)
        }
    };
    if genuine {
        Ok(())
    } else {
        Err(WebhookError::BadSignature {
            provider,
            header: name,
        })
    }
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

/// Whether `signature_hex` is the HMAC-SHA256 of `body` under `secret`.
fn signature_matches(secret: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    let mut mac = keyed(secret);
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

/// Whether a token equals the secret. Both are MACed first, so the constant-time comparison is
/// of equal-length tags and not even the token's length leaks.
fn same_secret(secret: &[u8], token: &[u8]) -> bool {
    let tag = |value: &[u8]| {
        let mut mac = keyed(secret);
        mac.update(value);
        mac
    };
    let expected = tag(secret).finalize().into_bytes();
    tag(token).verify_slice(&expected).is_ok()
}

/// A Bitbucket hook UUID in one spelling: Bitbucket shows it in braces, and hex case varies.
fn hook_uuid(value: &[u8]) -> Vec<u8> {
    let text = value.trim_ascii();
    let text = text
        .strip_prefix(b"{")
        .and_then(|t| t.strip_suffix(b"}"))
        .unwrap_or(text);
    text.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let body = b"what do ya want for nothing?";
        assert!(signature_matches(b"Jefe", body, expected));
        assert!(signature_matches(b"Jefe", body, &expected.to_uppercase()));
        assert!(!signature_matches(
            b"Jefe",
            b"what do ya want for something?",
            expected
        ));
        assert!(!signature_matches(b"jefe", body, expected));
        assert!(!signature_matches(b"Jefe", body, &expected[..62]));
        assert!(!signature_matches(b"Jefe", body, "not hex"));
        assert!(!signature_matches(b"Jefe", body, ""));
    }

    #[test]
    fn tokens_must_equal_the_secret_exactly() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cret", b"s3cret "));
        assert!(!same_secret(b"s3cret", b"S3cret"));
        assert!(!same_secret(b"s3cret", b"s3cre"));
        assert!(!same_secret(b"s3cret", b""));
    }

    #[test]
    fn hook_uuids_compare_without_braces_or_case() {
        assert_eq!(
            hook_uuid(b" {0D0B4D0C-6a8f-4c55-9d0e-2a6f1e3b7c44} "),
            b"0d0b4d0c-6a8f-4c55-9d0e-2a6f1e3b7c44"
        );
        assert_eq!(hook_uuid(b"abc"), b"abc");
    }

    #[test]
    fn prefixes_are_required_where_the_provider_sends_them() {
        let body = b"{}";
        let mut mac = keyed(b"k");
        mac.update(body);
        let signature = hex::encode(mac.finalize().into_bytes());
        let mut headers = HeaderMap::new();
        headers.insert("x-hub-signature-256", signature.parse().unwrap());
        assert_eq!(
            authenticate(Provider::GitHub, &headers, body, b"k"),
            Err(WebhookError::BadSignature {
                provider: Provider::GitHub,
                header: "X-Hub-Signature-256"
            })
        );
        headers.insert(
            "x-hub-signature-256",
            format!("sha256={signature}").parse().unwrap(),
        );
        assert_eq!(authenticate(Provider::GitHub, &headers, body, b"k"), Ok(()));
    }
}
