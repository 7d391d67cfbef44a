//! The certificates of `argocd-ssh-known-hosts-cm` and `argocd-tls-certs-cm` as Argo CD's
//! certificate service reads and writes them: a known_hosts line `host subtype data`, a TLS
//! entry a host name with one or more PEM certificates, selected by a file glob on the host.

use std::net::Ipv6Addr;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Value, json};
use ssh_key::HashAlg;
use x509_parser::prelude::{FromDer, X509Certificate};

/// One known host key: `host subtype data` (`data` the key's base64, maybe with a comment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownHost {
    pub host: String,
    pub sub_type: String,
    pub data: String,
}

impl KnownHost {
    /// The key's SHA256 fingerprint, `SHA256:<base64>` as ssh-keygen prints it; empty when the
    /// data is no key of its type.
    pub fn fingerprint(&self) -> String {
        ssh_key::PublicKey::from_openssh(&format!("{} {}", self.sub_type, self.data))
            .map(|key| key.fingerprint(HashAlg::Sha256).to_string())
            .unwrap_or_default()
    }

    fn line(&self) -> String {
        format!("{} {} {}", self.host, self.sub_type, self.data)
    }
}

/// `ssh_known_hosts` of the ConfigMap, line by line: comments and blank lines stay where they
/// are when entries are added or removed (Argo CD drops them; nothing here is lost).
#[derive(Clone, Debug, Default)]
pub struct KnownHostsFile {
    lines: Vec<Line>,
}

#[derive(Clone, Debug)]
enum Line {
    Entry(KnownHost),
    Other(String),
}

impl KnownHostsFile {
    pub fn parse(text: &str) -> Self {
        let lines = text
            .lines()
            .map(|line| {
                let trimmed = line.trim();
                let mut fields = trimmed.splitn(3, ' ');
                match (fields.next(), fields.next(), fields.next()) {
                    (Some(host), Some(sub_type), Some(data)) if !trimmed.starts_with('#') => {
                        Line::Entry(KnownHost {
                            host: host.to_owned(),
                            sub_type: sub_type.to_owned(),
                            data: data.to_owned(),
                        })
                    }
                    _ => Line::Other(line.to_owned()),
                }
            })
            .collect();
        Self { lines }
    }

    pub fn entries(&self) -> impl Iterator<Item = &KnownHost> {
        self.lines.iter().filter_map(|line| match line {
            Line::Entry(entry) => Some(entry),
            Line::Other(_) => None,
        })
    }

    /// The entry for `host` with a key of `sub_type`, to replace its key.
    pub fn entry_mut(&mut self, host: &str, sub_type: &str) -> Option<&mut KnownHost> {
        self.lines.iter_mut().find_map(|line| match line {
            Line::Entry(entry) if entry.host == host && entry.sub_type == sub_type => Some(entry),
            _ => None,
        })
    }

    pub fn push(&mut self, entry: KnownHost) {
        self.lines.push(Line::Entry(entry));
    }

    /// Removes the entries `remove` picks and answers them.
    pub fn remove(&mut self, remove: impl Fn(&KnownHost) -> bool) -> Vec<KnownHost> {
        let mut removed = Vec::new();
        self.lines.retain(|line| match line {
            Line::Entry(entry) if remove(entry) => {
                removed.push(entry.clone());
                false
            }
            _ => true,
        });
        removed
    }

    pub fn render(&self) -> String {
        let mut text = String::new();
        for line in &self.lines {
            match line {
                Line::Entry(entry) => text.push_str(&entry.line()),
                Line::Other(other) => text.push_str(other),
            }
            text.push('\n');
        }
        text
    }
}

/// A query's selection: a file glob on the host name (empty: any), the type (`ssh`, `https`,
/// Argo CD's `tls`, `*` or empty: any) and, for ssh, the key type.
#[derive(Debug, Default)]
pub struct Selector {
    pub host_name_pattern: String,
    pub cert_type: String,
    pub cert_sub_type: String,
}

impl Selector {
    pub fn ssh(&self) -> bool {
        matches!(self.cert_type.as_str(), "" | "*" | "ssh")
    }

    pub fn https(&self) -> bool {
        matches!(self.cert_type.as_str(), "" | "*" | "https" | "tls")
    }

    pub fn host_matches(&self, host: &str) -> bool {
        match_host_name(host, &self.host_name_pattern)
    }

    pub fn known_host_matches(&self, entry: &KnownHost) -> bool {
        self.host_matches(&entry.host)
            && (matches!(self.cert_sub_type.as_str(), "" | "*")
                || self.cert_sub_type == entry.sub_type)
    }
}

/// Argo CD's `MatchHostName`: a file glob (`*`, `?`, backslash escapes) with square brackets
/// taken literally, so `[host]:2222` names itself; an empty pattern matches any host.
pub fn match_host_name(host: &str, pattern: &str) -> bool {
    if pattern.is_empty() {
        return true;
    }
    let literal: String = pattern
        .chars()
        .flat_map(|c| match c {
            '[' | ']' | '{' | '}' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    globset::GlobBuilder::new(&literal)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .is_ok_and(|glob| glob.compile_matcher().is_match(host))
}

/// Argo CD's `IsValidHostname` (not necessarily fully qualified), or an IPv6 address.
pub fn valid_host_name(host: &str) -> bool {
    static HOST: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"^([a-zA-Z0-9]|[a-zA-Z0-9_][a-zA-Z0-9-_]{0,61}[a-zA-Z0-9_])(\.([a-zA-Z0-9]|[a-zA-Z0-9_][a-zA-Z0-9-_]{0,61}[a-zA-Z0-9]))*(\.){0,1}$",
        )
        .expect("a valid regular expression")
    });
    HOST.is_match(host) || host.parse::<Ipv6Addr>().is_ok()
}

/// The host name an ssh server name checks: `[host]:port` names `host`.
pub fn ssh_host(server_name: &str) -> &str {
    server_name
        .strip_prefix('[')
        .and_then(|rest| rest.rsplit_once("]:"))
        .filter(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(server_name, |(host, _)| host)
}

/// The most lines one PEM certificate may have, as Argo CD's parser.
const CERTIFICATE_MAX_LINES: usize = 128;

/// The PEM certificates in `data`, each from its BEGIN to its END line (text around them is
/// ignored), as Argo CD splits them.
pub fn pem_certificates(data: &str) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let mut current: Option<(String, usize)> = None;
    for line in data.lines() {
        match current.as_mut() {
            None if line.starts_with("-----BEGIN CERTIFICATE-----") => {
                current = Some((format!("{line}\n"), 1));
            }
            None => {}
            Some((pem, lines)) => {
                *lines += 1;
                pem.push_str(line);
                pem.push('\n');
                if *lines > CERTIFICATE_MAX_LINES {
                    return Err(
                        "maximum number of lines exceeded during certificate parsing".into(),
                    );
                }
                if line.starts_with("-----END CERTIFICATE-----") {
                    found.extend(current.take().map(|(pem, _)| pem));
                }
            }
        }
    }
    Ok(found)
}

/// What Argo CD lists of one PEM certificate: its public key algorithm (lower case) as the sub
/// type and its subject as the info; an unreadable one is sub type `invalid`, the error its info.
pub fn describe_pem(pem: &str) -> Result<(String, String), String> {
    let der = rustls_der(pem).ok_or("could not decode PEM data from input")?;
    let (_, cert) =
        X509Certificate::from_der(&der).map_err(|_| "could not parse X509 data from input")?;
    let algorithm = match cert
        .public_key()
        .algorithm
        .algorithm
        .to_id_string()
        .as_str()
    {
        "1.2.840.113549.1.1.1" => "rsa",
        "1.2.840.10040.4.1" => "dsa",
        "1.2.840.10045.2.1" => "ecdsa",
        "1.3.101.112" => "ed25519",
        _ => "0",
    };
    Ok((algorithm.to_owned(), go_name(cert.subject())))
}

fn rustls_der(pem: &str) -> Option<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|der| der.to_vec())
}

/// A distinguished name as Go's `pkix.Name.String()` writes it (what Argo CD shows): the
/// standard attributes most specific first (`CN=…,OU=…,O=…,L=…,ST=…,C=…`), comma separated.
fn go_name(name: &x509_parser::x509::X509Name) -> String {
    // Go's order of the named fields, reversed when written.
    const ORDER: [(&str, &str); 9] = [
        ("2.5.4.6", "C"),
        ("2.5.4.8", "ST"),
        ("2.5.4.7", "L"),
        ("2.5.4.9", "STREET"),
        ("2.5.4.17", "POSTALCODE"),
        ("2.5.4.10", "O"),
        ("2.5.4.11", "OU"),
        ("2.5.4.3", "CN"),
        ("2.5.4.5", "SERIALNUMBER"),
    ];
    let attributes: Vec<(String, String)> = name
        .iter_attributes()
        .map(|attribute| {
            (
                attribute.attr_type().to_id_string(),
                attribute.as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mut rdns = Vec::new();
    for (oid, short) in ORDER {
        let values: Vec<String> = attributes
            .iter()
            .filter(|(type_, _)| type_ == oid)
            .map(|(_, value)| format!("{short}={}", escape_rdn_value(value)))
            .collect();
        // Go keeps one common name and serial number, the last.
        let values = if matches!(short, "CN" | "SERIALNUMBER") {
            values.into_iter().last().into_iter().collect()
        } else {
            values
        };
        if !values.is_empty() {
            rdns.push(values.join("+"));
        }
    }
    rdns.reverse();
    rdns.join(",")
}

fn escape_rdn_value(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut escaped = String::new();
    for (index, c) in value.chars().enumerate() {
        let escape = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => index == 0 || index == last,
            '#' => index == 0,
            _ => false,
        };
        if escape {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Argo CD's `RepositoryCertificate`; its data (lists leave it out) base64, as protobuf's
/// JSON has bytes.
pub fn certificate(
    server_name: &str,
    cert_type: &str,
    cert_sub_type: &str,
    cert_data: Option<&str>,
    cert_info: &str,
) -> Value {
    use base64::Engine as _;
    let mut certificate = json!({
        "serverName": server_name,
        "certType": cert_type,
        "certSubType": cert_sub_type,
        "certInfo": cert_info,
    });
    if let Some(data) = cert_data {
        certificate["certData"] = json!(base64::engine::general_purpose::STANDARD.encode(data));
    }
    certificate
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIL6h/x/dy0losK/Mk0Tr60LdMsHhtydnX7iAtV51vvAd";

    #[test]
    fn known_hosts_keep_comments_and_order() {
        let text = format!(
            "# forges\ngithub.com ssh-ed25519 {ED25519}\n\n[git.local]:2222 ssh-ed25519 {ED25519} me@host\n"
        );
        let mut file = KnownHostsFile::parse(&text);
        let hosts: Vec<&str> = file.entries().map(|e| e.host.as_str()).collect();
        assert_eq!(hosts, ["github.com", "[git.local]:2222"]);
        assert_eq!(file.render(), text);
        let removed = file.remove(|e| e.host == "github.com");
        assert_eq!(removed.len(), 1);
        assert_eq!(
            file.render(),
            format!("# forges\n\n[git.local]:2222 ssh-ed25519 {ED25519} me@host\n")
        );
    }

    #[test]
    fn fingerprints_are_ssh_keygens() {
        let entry = KnownHost {
            host: "h".into(),
            sub_type: "ssh-ed25519".into(),
            data: ED25519.into(),
        };
        // What `ssh-keygen -lf` prints for this key.
        assert_eq!(
            entry.fingerprint(),
            "SHA256:Hx0UbsgU+B7Z77KJe0pvaqc70amv9pLvUd4/skmIPEE"
        );
        let broken = KnownHost {
            data: "AAAA".into(),
            ..entry
        };
        assert_eq!(broken.fingerprint(), "");
    }

    #[test]
    fn host_patterns_are_file_globs_with_literal_brackets() {
        assert!(match_host_name("github.com", ""));
        assert!(match_host_name("github.com", "*.com"));
        assert!(match_host_name("github.com", "git?ub.com"));
        assert!(!match_host_name("github.com", "gitlab.*"));
        assert!(match_host_name("[git.local]:2222", "[git.local]:2222"));
        assert!(!match_host_name("g", "[g]"));
        assert!(match_host_name("[git.local]:2222", "[git.local]:*"));
    }

    #[test]
    fn host_names_and_ssh_server_names() {
        assert!(valid_host_name("git.example.com"));
        assert!(valid_host_name("127.0.0.1"));
        assert!(valid_host_name("::1"));
        assert!(!valid_host_name("not a host"));
        assert!(!valid_host_name("evil.com/../x"));
        assert_eq!(ssh_host("[git.local]:2222"), "git.local");
        assert_eq!(ssh_host("git.local"), "git.local");
        assert_eq!(ssh_host("[git.local]"), "[git.local]");
    }

    #[test]
    fn pem_certificates_are_split_and_described() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["git.example.com".into()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "git.example.com");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example, Inc.");
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "DE");
        let pem = params.self_signed(&key).unwrap().pem();
        let data = format!("a CA bundle\n{pem}between\n{pem}");
        let found = pem_certificates(&data).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].trim(), pem.trim());
        assert_eq!(
            describe_pem(&found[0]).unwrap(),
            (
                "ecdsa".to_owned(),
                r"CN=git.example.com,O=Example\, Inc.,C=DE".to_owned()
            )
        );
        assert!(
            describe_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err()
        );
    }
}
