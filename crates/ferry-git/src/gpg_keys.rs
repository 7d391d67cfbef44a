//! What Argo CD lists of the GnuPG public keys in `argocd-gpg-keys-cm`: each key's ID,
//! fingerprint, type, owner and trust, read by the real `gpg` from a throw-away GNUPGHOME that
//! holds only the keys being described (gpg's `--with-colons` listing, the machine-readable form
//! of the table Argo CD parses).

use crate::signature::run_gpg;

/// One public key, as Argo CD's `GnuPGPublicKey`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// Long key ID: the last 16 hex digits of the fingerprint, upper case.
    pub key_id: String,
    pub fingerprint: String,
    /// The user ID of the first identity, `Name <email>`.
    pub owner: String,
    /// gpg's validity of that identity in words (`unknown` for a key nobody vouched for).
    pub trust: String,
    /// The key's algorithm as gpg names it: `rsa4096`, `ed25519`, `nistp256`...
    pub sub_type: String,
    /// The key, ASCII-armored.
    pub key_data: String,
}

/// The public keys in `armored` (one or more ASCII-armored keys). Text that holds no key is an
/// error, as for Argo CD.
pub fn describe_public_keys(armored: &str) -> Result<Vec<PublicKey>, String> {
    let home = tempfile::Builder::new()
        .prefix("ferry-gpg-keys-")
        .tempdir()
        .map_err(|err| format!("creating a GnuPG home: {err}"))?;
    let imported = run_gpg(home.path(), &["--import"], armored.as_bytes())
        .map_err(|err| format!("running gpg: {err}"))?;
    if !imported.status.success() {
        return Err(format!(
            "not a valid GnuPG public key: {}",
            String::from_utf8_lossy(&imported.stderr).trim()
        ));
    }
    let listing = run_gpg(
        home.path(),
        &["--with-colons", "--fixed-list-mode", "--list-public-keys"],
        b"",
    )
    .map_err(|err| format!("running gpg: {err}"))?;
    let mut keys = parse_listing(&String::from_utf8_lossy(&listing.stdout));
    if keys.is_empty() {
        return Err("no GnuPG public key found".to_owned());
    }
    for key in &mut keys {
        let export = run_gpg(home.path(), &["--armor", "--export", &key.fingerprint], b"")
            .map_err(|err| format!("running gpg: {err}"))?;
        key.key_data = String::from_utf8_lossy(&export.stdout).into_owned();
    }
    Ok(keys)
}

/// Keys of a `--with-colons` listing: `pub` (algorithm in field 4, length in 3, curve in 17),
/// then its `fpr` (field 10) and its first `uid` (validity in field 2, user ID in 10).
fn parse_listing(listing: &str) -> Vec<PublicKey> {
    let mut keys: Vec<PublicKey> = Vec::new();
    // Whether the last `pub` still waits for its fingerprint (subkeys have `fpr` lines too).
    let mut awaiting_fingerprint = false;
    for line in listing.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        let field = |index: usize| fields.get(index).copied().unwrap_or_default();
        match field(0) {
            "pub" => {
                keys.push(PublicKey {
                    key_id: String::new(),
                    fingerprint: String::new(),
                    owner: String::new(),
                    trust: String::new(),
                    sub_type: algorithm(field(3), field(2), field(16)),
                    key_data: String::new(),
                });
                awaiting_fingerprint = true;
            }
            "fpr" if awaiting_fingerprint => {
                if let Some(key) = keys.last_mut() {
                    key.fingerprint = field(9).to_uppercase();
                    let start = key.fingerprint.len().saturating_sub(16);
                    key.key_id = key.fingerprint[start..].to_owned();
                }
                awaiting_fingerprint = false;
            }
            "uid" => {
                if let Some(key) = keys.last_mut().filter(|key| key.owner.is_empty()) {
                    key.owner = field(9).to_owned();
                    key.trust = trust(field(1)).to_owned();
                }
            }
            _ => {}
        }
    }
    keys
}

/// gpg's name of a key's algorithm: RSA and DSA keys by their length, elliptic curves by the
/// curve.
fn algorithm(code: &str, length: &str, curve: &str) -> String {
    match code {
        "1" | "2" | "3" => format!("rsa{length}"),
        "17" => format!("dsa{length}"),
        "16" | "20" => format!("elg{length}"),
        _ if !curve.is_empty() => curve.to_owned(),
        other => format!("algorithm{other}"),
    }
}

/// The words gpg's table uses for a validity letter.
fn trust(validity: &str) -> &'static str {
    match validity {
        "u" => "ultimate",
        "f" => "full",
        "m" => "marginal",
        "n" => "never",
        "q" => "undefined",
        "r" => "revoked",
        "e" => "expired",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_colon_listing_gives_the_primary_keys_with_their_first_identity() {
        let listing = "\
tru::1:1765000000:0:3:1:5
pub:-:255:22:0123456789ABCDEF:1765000000:::-:::scSC:::::ed25519:::0:
fpr:::::::::AAAABBBBCCCCDDDDEEEEFFFF0123456789ABCDEF:
uid:-::::1765000000::HASH::Alice <alice@example.invalid>::::::::::0:
uid:-::::1765000000::HASH::Alice Two <a2@example.invalid>::::::::::0:
sub:-:255:18:1111222233334444:1765000000::::::e::::::cv25519::
fpr:::::::::99998888777766665555444433332222111122223333:
pub:f:4096:1:FEDCBA9876543210:1765000000:::-:::scESC::::::::0:
fpr:::::::::00001111222233334444555566667777FEDCBA98:
uid:f::::1765000000::HASH::Bob <bob@example.invalid>::::::::::0:
";
        let keys = parse_listing(listing);
        let summary: Vec<(&str, &str, &str, &str)> = keys
            .iter()
            .map(|key| {
                (
                    key.key_id.as_str(),
                    key.sub_type.as_str(),
                    key.owner.as_str(),
                    key.trust.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "0123456789ABCDEF",
                    "ed25519",
                    "Alice <alice@example.invalid>",
                    "unknown"
                ),
                (
                    "66667777FEDCBA98",
                    "rsa4096",
                    "Bob <bob@example.invalid>",
                    "full"
                ),
            ]
        );
    }

    #[test]
    fn text_without_a_key_is_an_error() {
        assert!(describe_public_keys("not a key").is_err());
    }
}
