//! TLS certificates trusted per server, as Argo CD's `argocd-tls-certs-cm` gives them: each key
//! is a server's host name, its value one or more PEM certificates (the CA that signed the
//! server's certificate, or the server's own self-signed certificate). They are trusted for
//! https to that host in addition to the system's CAs, never for any other host.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore};

/// The trusted certificates of each configured host.
#[derive(Clone, Default)]
pub struct TlsCerts {
    by_host: HashMap<String, HostCerts>,
}

#[derive(Clone)]
struct HostCerts {
    pem: String,
    certs: Vec<CertificateDer<'static>>,
    verifier: Arc<WebPkiServerVerifier>,
}

impl TlsCerts {
    /// Parses the ConfigMap's data: the hosts with valid certificates, and an error naming the
    /// host for each entry without (which then trusts nothing more).
    pub fn parse(data: &BTreeMap<String, String>) -> (Self, Vec<String>) {
        let mut by_host = HashMap::new();
        let mut errors = Vec::new();
        for (host, pem) in data {
            match HostCerts::parse(pem) {
                Ok(certs) => {
                    by_host.insert(host.trim().to_ascii_lowercase(), certs);
                }
                Err(err) => errors.push(format!("TLS certificate for {host}: {err}")),
            }
        }
        (Self { by_host }, errors)
    }

    /// The PEM certificates configured for `host`, for tools that take a CA file (helm).
    pub fn pem_for(&self, host: &str) -> Option<&str> {
        self.host(host).map(|h| h.pem.as_str())
    }

    /// Whether `leaf` (DER), presented by `host`, is signed by (or is) a certificate configured
    /// for that host and names it. `None` when the host has no certificates configured.
    pub(crate) fn verify(&self, host: &str, leaf: &[u8]) -> Option<Result<(), String>> {
        let host_certs = self.host(host)?;
        let name = match ServerName::try_from(host.to_string()) {
            Ok(name) => name,
            Err(e) => return Some(Err(format!("{host} is no server name: {e}"))),
        };
        // The configured certificates may include intermediates of the server's chain.
        let verdict = host_certs.verifier.verify_server_cert(
            &CertificateDer::from(leaf.to_vec()),
            &host_certs.certs,
            &name,
            &[],
            UnixTime::now(),
        );
        Some(verdict.map(drop).map_err(|e| match e {
            rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer | CertificateError::BadSignature,
            ) => format!(
                "the certificate of {host} is not signed by the certificates configured for it"
            ),
            other => format!("the certificate of {host} is not trusted: {other}"),
        }))
    }

    fn host(&self, host: &str) -> Option<&HostCerts> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.by_host.get(&host.to_ascii_lowercase())
    }
}

impl HostCerts {
    fn parse(pem: &str) -> Result<Self, String> {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let mut roots = RootCertStore::empty();
        if roots.add_parsable_certificates(certs.iter().cloned()).0 == 0 {
            return Err("no valid PEM certificate".into());
        }
        let verifier = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .map_err(|e| e.to_string())?;
        Ok(Self {
            pem: pem.to_string(),
            certs,
            verifier,
        })
    }
}

impl std::fmt::Debug for TlsCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut hosts: Vec<_> = self.by_host.keys().collect();
        hosts.sort();
        f.debug_struct("TlsCerts").field("hosts", &hosts).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    struct Issued {
        ca_pem: String,
        leaf_der: Vec<u8>,
    }

    fn issue(names: &[&str]) -> Issued {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        Issued {
            ca_pem: ca_cert.pem(),
            leaf_der: leaf.der().to_vec(),
        }
    }

    fn certs(entries: &[(&str, &str)]) -> TlsCerts {
        let data = entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (certs, errors) = TlsCerts::parse(&data);
        assert!(errors.is_empty(), "{errors:?}");
        certs
    }

    #[test]
    fn a_ca_is_trusted_for_its_host_only() {
        let git = issue(&["git.example.com"]);
        let trusted = certs(&[("git.example.com", &git.ca_pem)]);
        assert_eq!(
            trusted.verify("git.example.com", &git.leaf_der),
            Some(Ok(()))
        );
        assert_eq!(
            trusted.verify("GIT.example.com", &git.leaf_der),
            Some(Ok(()))
        );
        assert_eq!(
            trusted.pem_for("git.example.com"),
            Some(git.ca_pem.as_str())
        );
        // Another host: nothing configured, the system's CAs decide.
        assert_eq!(trusted.verify("evil.example.com", &git.leaf_der), None);

        // A certificate signed by another CA, or naming another host, is refused.
        let other = issue(&["git.example.com"]);
        let err = trusted
            .verify("git.example.com", &other.leaf_der)
            .unwrap()
            .unwrap_err();
        assert!(err.contains("not signed by"), "{err}");
        let misnamed = issue(&["other.example.com"]);
        let trusted = certs(&[("git.example.com", &misnamed.ca_pem)]);
        let err = trusted
            .verify("git.example.com", &misnamed.leaf_der)
            .unwrap()
            .unwrap_err();
        assert!(err.contains("not trusted"), "{err}");
    }

    #[test]
    fn ip_hosts_and_bad_pem() {
        let ip = issue(&["127.0.0.1"]);
        let trusted = certs(&[("127.0.0.1", &ip.ca_pem)]);
        assert_eq!(trusted.verify("127.0.0.1", &ip.leaf_der), Some(Ok(())));

        let data = BTreeMap::from([
            ("git.example.com".to_string(), "not a cert".to_string()),
            ("127.0.0.1".to_string(), ip.ca_pem.clone()),
        ]);
        let (certs, errors) = TlsCerts::parse(&data);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("git.example.com"), "{errors:?}");
        assert_eq!(certs.pem_for("git.example.com"), None);
        assert_eq!(certs.verify("127.0.0.1", &ip.leaf_der), Some(Ok(())));
    }
}
