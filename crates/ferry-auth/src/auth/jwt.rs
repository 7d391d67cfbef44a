//! The token format: HS256 JWTs with Argo CD's registered claims. Only the signature and the
//! algorithm are checked here; what the claims mean is checked by the session manager, against
//! its own clock.

use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::error::AuthError;
use super::settings::ServerKey;

/// `iss` of every token ferry and Argo CD sign.
pub const ISSUER: &str = "argocd";

/// A signed token, to hand to its holder. Debug output never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Jwt(String);

impl Jwt {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for Jwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Jwt(<redacted>)")
    }
}

/// The claims as they are on the wire. Times are Unix seconds; a claim of the wrong type makes
/// the whole token invalid rather than absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireClaims {
    pub iss: String,
    pub sub: String,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
}

pub(crate) struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Signer {
    pub(crate) fn new(key: &ServerKey) -> Self {
        // Only an empty key is refused, and a `ServerKey` never is.
        const NOT_EMPTY: &str = "a ServerKey is never empty";
        Self {
            encoding: EncodingKey::from_secret(key.as_bytes()).expect(NOT_EMPTY),
            decoding: DecodingKey::from_secret(key.as_bytes()).expect(NOT_EMPTY),
        }
    }

    pub(crate) fn sign(&self, claims: &WireClaims) -> Result<Jwt, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map(Jwt)
            .map_err(|err| AuthError::Signing {
                reason: err.to_string(),
            })
    }

    /// The claims of a token signed with this key, unchecked otherwise.
    pub(crate) fn open(&self, token: &str) -> Result<WireClaims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<WireClaims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::InvalidAlgorithm => {
                    AuthError::invalid_token("only HS256 tokens are accepted")
                }
                _ => AuthError::invalid_token(err.to_string()),
            })
    }
}

/// A fresh token id: a random (version 4) UUID, as Argo CD's are.
pub(crate) fn new_token_id() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn key(text: &str) -> ServerKey {
        use super::super::accounts::tests::secret;
        use super::super::settings::AuthSettings;
        let data = secret(&[("server.secretkey", text)]);
        AuthSettings::from_data(&Default::default(), &data)
            .unwrap()
            .server_key
            .unwrap()
    }

    fn claims() -> WireClaims {
        WireClaims {
            iss: ISSUER.into(),
            sub: "admin:login".into(),
            iat: 1_717_243_200,
            nbf: Some(1_717_243_200),
            exp: Some(1_717_329_600),
            jti: "2b0c5a8e-3f4d-4e6a-9b1c-7d8e9f0a1b2c".into(),
        }
    }

    /// A token signed by hand, with any header and payload.
    fn forge(header: &str, payload: &str, key: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        mac.update(message.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{message}.{signature}")
    }

    #[test]
    fn tokens_round_trip_and_carry_argo_cds_claims() {
        let signer = Signer::new(&key("k3y"));
        let jwt = signer.sign(&claims()).unwrap();
        assert_eq!(signer.open(jwt.as_str()).unwrap(), claims());
        let payload = jwt.as_str().split('.').nth(1).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "iss": "argocd", "sub": "admin:login", "iat": 1_717_243_200,
                "nbf": 1_717_243_200, "exp": 1_717_329_600,
                "jti": "2b0c5a8e-3f4d-4e6a-9b1c-7d8e9f0a1b2c"
            })
        );
    }

    #[test]
    fn a_token_signed_the_way_argo_cd_does_opens() {
        // golang-jwt's header order and an Argo CD API token's claims.
        let token = forge(
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"iss":"argocd","sub":"ci:apiKey","nbf":1717243200,"iat":1717243200,"jti":"abc"}"#,
            b"k3y",
        );
        let claims = Signer::new(&key("k3y")).open(&token).unwrap();
        assert_eq!(claims.sub, "ci:apiKey");
        assert_eq!(claims.exp, None);
        assert_eq!(claims.jti, "abc");
    }

    #[test]
    fn forged_and_malformed_tokens_are_refused() {
        let signer = Signer::new(&key("k3y"));
        let other = Signer::new(&key("another key")).sign(&claims()).unwrap();
        assert!(matches!(
            signer.open(other.as_str()),
            Err(AuthError::BadSignature)
        ));

        let mut tampered = signer.sign(&claims()).unwrap().into_string();
        tampered.insert(tampered.find('.').unwrap() + 2, 'x');
        assert!(signer.open(&tampered).is_err());

        let payload = serde_json::to_string(&claims()).unwrap();
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
        ] {
            let err = signer.open(&forge(header, &payload, b"k3y")).unwrap_err();
            assert!(
                matches!(err, AuthError::InvalidToken { .. }),
                "{header}: {err}"
            );
        }
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(&payload)
        );
        assert!(signer.open(&unsigned).is_err());

        // A time claim of the wrong type invalidates the token instead of being skipped.
        let stringly = r#"{"iss":"argocd","sub":"admin:login","iat":1,"exp":"never","jti":"x"}"#;
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        let err = signer.open(&forge(header, stringly, b"k3y")).unwrap_err();
        assert!(matches!(err, AuthError::InvalidToken { .. }), "{err}");
        let no_iat = r#"{"iss":"argocd","sub":"admin:login","jti":"x"}"#;
        assert!(signer.open(&forge(header, no_iat, b"k3y")).is_err());
        assert!(signer.open("not.a.token").is_err());
        assert!(signer.open("").is_err());
    }

    #[test]
    fn token_ids_are_random_v4_uuids() {
        let id = new_token_id();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{id}");
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(new_token_id(), id);
    }

    #[test]
    fn debug_never_shows_the_token() {
        let jwt = Signer::new(&key("k3y")).sign(&claims()).unwrap();
        assert_eq!(format!("{jwt:?}"), "Jwt(<redacted>)");
    }
}
