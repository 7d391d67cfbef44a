//! Certificates and keys for one sandbox: a private CA, the API server's serving certificate, an
//! admin client certificate (group `system:masters`) and the service-account signing key.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

/// File names inside the sandbox's `pki/` directory.
pub const CA_CERT: &str = "ca.crt";
pub const SERVING_CERT: &str = "apiserver.crt";
pub const SERVING_KEY: &str = "apiserver.key";
pub const ADMIN_CERT: &str = "admin.crt";
pub const ADMIN_KEY: &str = "admin.key";
pub const SA_KEY: &str = "sa.key";
pub const SA_PUB: &str = "sa.pub";

/// The `kubernetes` Service's address: the first address of the service CIDR.
pub const SERVICE_IP: &str = "10.96.0.1";
pub const SERVICE_CIDR: &str = "10.96.0.0/16";

/// Writes a fresh PKI into `dir` unless one is already there (a restarted sandbox keeps its
/// identity, so existing kubeconfigs and service-account tokens stay valid).
pub fn ensure(dir: &Path) -> Result<()> {
    if dir.join(SA_PUB).exists() {
        return Ok(());
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = name("ferry-sandbox-ca", None);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    write(dir, CA_CERT, &ca.pem())?;

    let mut serving = CertificateParams::new(vec![
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        "kubernetes.default.svc.cluster.local".to_string(),
    ])?;
    for ip in ["127.0.0.1", SERVICE_IP] {
        serving
            .subject_alt_names
            .push(SanType::IpAddress(ip.parse()?));
    }
    serving.distinguished_name = name("kube-apiserver", None);
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    write(dir, SERVING_CERT, &serving.signed_by(&key, &ca)?.pem())?;
    write(dir, SERVING_KEY, &key.serialize_pem())?;

    let mut admin = CertificateParams::default();
    admin.distinguished_name = name("ferry-admin", Some("system:masters"));
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate()?;
    write(dir, ADMIN_CERT, &admin.signed_by(&key, &ca)?.pem())?;
    write(dir, ADMIN_KEY, &key.serialize_pem())?;

    let sa = KeyPair::generate()?;
    write(dir, SA_KEY, &sa.serialize_pem())?;
    // Written last: its presence marks a complete PKI.
    write(dir, SA_PUB, &sa.public_key_pem())?;
    Ok(())
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        dn.push(DnType::OrganizationName, org);
    }
    dn
}

fn write(dir: &Path, file: &str, contents: &str) -> Result<()> {
    let path = dir.join(file);
    fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
}
