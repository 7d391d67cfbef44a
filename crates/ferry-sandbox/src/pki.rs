//! Certificates and keys for one sandbox: a private CA, the API server's serving certificate, an
//! admin client certificate (group `system:masters`) and the service-account signing key.

use std::fs;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// File names inside the sandbox's `pki/` directory.
pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
/// The addresses the serving certificate was issued for, one a line.
const SERVING_IPS: &str = "apiserver.ips";
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
/// identity, so existing kubeconfigs and service-account tokens stay valid). A PKI without the
/// CA's key predates certificates signed after the fact: it is replaced.
pub fn ensure(dir: &Path) -> Result<()> {
    if has_ca_key(dir) {
        return Ok(());
    }
    create(dir)
}

/// Issues the API server's serving certificate, for loopback, the `kubernetes` Service and
/// `extra_ips` (the address pods reach it on, with a real node), unless the one there was issued
/// for exactly those.
pub fn ensure_serving(dir: &Path, extra_ips: &[IpAddr]) -> Result<()> {
    let mut ips: Vec<IpAddr> = vec![[127, 0, 0, 1].into(), SERVICE_IP.parse()?];
    ips.extend(extra_ips);
    let listed: String = ips.iter().map(|ip| format!("{ip}\n")).collect();
    if fs::read_to_string(dir.join(SERVING_IPS)).ok().as_deref() == Some(&listed) {
        return Ok(());
    }
    let (cert, key) = serving_certificate(
        dir,
        "kube-apiserver",
        &[
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
        &ips,
    )?;
    write(dir, SERVING_CERT, &cert)?;
    write(dir, SERVING_KEY, &key)?;
    write(dir, SERVING_IPS, &listed)
}

fn create(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let _ = fs::remove_file(dir.join(SA_PUB));
    let _ = fs::remove_file(dir.join(SERVING_IPS));
    let ca_key = KeyPair::generate()?;
    write_private(dir, CA_KEY, &ca_key.serialize_pem())?;
    let ca = CertifiedIssuer::self_signed(ca_params(), ca_key)?;
    write(dir, CA_CERT, &ca.pem())?;

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

/// Whether `dir` holds a PKI whose CA can sign more certificates.
pub fn has_ca_key(dir: &Path) -> bool {
    dir.join(CA_KEY).exists() && dir.join(SA_PUB).exists()
}

/// A serving certificate and its key (PEM), signed by the sandbox CA in `dir`, for `dns_names`
/// and `ips`.
pub fn serving_certificate(
    dir: &Path,
    common_name: &str,
    dns_names: &[&str],
    ips: &[IpAddr],
) -> Result<(String, String)> {
    let key_path = dir.join(CA_KEY);
    let ca_key = fs::read_to_string(&key_path)
        .with_context(|| format!("reading the sandbox CA key {}", key_path.display()))?;
    // The issuer is rebuilt from the CA's own parameters and key: the subject and key
    // identifier a certificate names as its issuer are derived from exactly those.
    let ca = Issuer::new(ca_params(), KeyPair::from_pem(&ca_key)?);
    let mut params =
        CertificateParams::new(dns_names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
    params
        .subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.distinguished_name = name(common_name, None);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    Ok((params.signed_by(&key, &ca)?.pem(), key.serialize_pem()))
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name("ferry-sandbox-ca", None);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
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

/// Writes a file only its owner can read, created so from the start.
pub fn write_private(dir: &Path, file: &str, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = dir.join(file);
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    // An existing file keeps its mode on open: make sure.
    out.set_permissions(fs::Permissions::from_mode(0o600))?;
    out.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
