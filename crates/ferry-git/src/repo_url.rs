//! Repository URLs: which forms are accepted, how they are compared (Argo CD's normalization),
//! how secrets are scrubbed from them, and how relative submodule URLs are resolved.

use std::sync::LazyLock;

use regex::Regex;

use crate::GitError;

/// How a repository is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    File,
    Git,
    Http,
    Https,
    Ssh,
}

/// A validated repository URL.
#[derive(Clone, Debug)]
pub(crate) struct RepoUrl {
    /// The URL as given (may carry credentials: never print it, print [`RepoUrl::display`]).
    pub raw: String,
    pub transport: Transport,
    /// Host and port for ssh, used for known_hosts lookups.
    pub ssh_endpoint: Option<(String, u16)>,
}

/// `user@host:path` (git's scp-like ssh syntax): no `://` and a colon before any slash
/// (`transport::address` forms like `ext::cmd` are not ssh and stay refused).
pub(crate) static SCP_LIKE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:([^@/:\s]+)@)?([^@/:\s]+):([^:].*)$").expect("valid regex"));

/// `scheme://user:password@` — the password part is what must never be shown.
static USERINFO_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([a-z][a-z0-9+.-]*://[^/@\s:]*):[^@/\s]*@").expect("valid regex")
});

impl RepoUrl {
    pub fn parse(url: &str) -> Result<Self, GitError> {
        let invalid = |reason: &str| GitError::InvalidUrl {
            url: scrub(url),
            reason: reason.to_owned(),
        };
        let trimmed = url.trim();
        if trimmed.is_empty() {
            return Err(invalid("empty URL"));
        }
        if !trimmed.contains("://") {
            let caps = SCP_LIKE
                .captures(trimmed)
                .ok_or_else(|| invalid("not a URL: use file://, git://, http(s):// or ssh://"))?;
            return Ok(RepoUrl {
                raw: trimmed.to_owned(),
                transport: Transport::Ssh,
                ssh_endpoint: Some((caps[2].to_owned(), 22)),
            });
        }
        let parsed = url::Url::parse(trimmed).map_err(|e| invalid(&e.to_string()))?;
        let transport = match parsed.scheme() {
            "file" => Transport::File,
            "git" => Transport::Git,
            "http" => Transport::Http,
            "https" => Transport::Https,
            "ssh" => Transport::Ssh,
            other => return Err(invalid(&format!("unsupported scheme {other:?}"))),
        };
        if transport != Transport::File && parsed.host_str().is_none_or(str::is_empty) {
            return Err(invalid("missing host"));
        }
        let ssh_endpoint = (transport == Transport::Ssh).then(|| {
            let host = parsed.host_str().unwrap_or_default();
            // url keeps IPv6 brackets; known_hosts and libssh2 use the bare address.
            let host = host.trim_start_matches('[').trim_end_matches(']');
            (host.to_owned(), parsed.port().unwrap_or(22))
        });
        Ok(RepoUrl {
            raw: trimmed.to_owned(),
            transport,
            ssh_endpoint,
        })
    }

    /// The URL safe to show in errors and logs.
    pub fn display(&self) -> String {
        scrub(&self.raw)
    }

    /// Key of the local mirror: the URL without any userinfo (who fetches does not change what
    /// is fetched) and without a trailing slash. Case is kept: paths may be case sensitive.
    pub fn mirror_key(&self) -> String {
        let without_userinfo = match url::Url::parse(&self.raw) {
            Ok(mut parsed) if parsed.scheme() != "file" => {
                let _ = parsed.set_username("");
                let _ = parsed.set_password(None);
                parsed.to_string()
            }
            _ => match SCP_LIKE.captures(&self.raw) {
                Some(caps) => format!("{}:{}", &caps[2], &caps[3]),
                None => self.raw.clone(),
            },
        };
        without_userinfo.trim_end_matches('/').to_owned()
    }

    /// `file://` (or a local path): such URLs read this machine's disk.
    pub fn is_local(&self) -> bool {
        self.transport == Transport::File
    }
}

/// Replace the password of any `scheme://user:password@` in `text` by `***`.
pub fn scrub(text: &str) -> String {
    USERINFO_PASSWORD.replace_all(text, "$1:***@").into_owned()
}

/// Argo CD's URL normalization, used to compare repository URLs and credential prefixes:
/// lower case, scp-like ssh turned into `host/path`, `ssh://` and a trailing `.git` removed.
pub fn normalize(url: &str) -> String {
    let mut url = url.trim().to_lowercase();
    if !url.contains("://") && SCP_LIKE.is_match(&url) {
        url = url.replacen(':', "/", 1);
    }
    if let Some(stripped) = url.strip_suffix(".git") {
        url = stripped.to_owned();
    }
    match url.strip_prefix("ssh://") {
        Some(stripped) => stripped.to_owned(),
        None => url,
    }
}

/// Where a URL points, parsed for matching credential templates: scheme, user, host, port and
/// path segments, compared case-insensitively as Argo CD's normalization does.
///
/// `ssh://user@host/path` and scp-like `user@host:path` are both `ssh` on port 22; `oci://`
/// and Argo CD's scheme-less OCI form (`registry.example.com/charts`, `host:5000/charts`) are
/// both `oci`. A trailing `.git` is dropped. A path holding `.` or `..` segments does not parse
/// (for `://` URLs the `url` crate has already resolved them), so it matches nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Location {
    scheme: String,
    user: Option<String>,
    host: String,
    /// Explicit or the scheme's default; `None` when the scheme has none.
    port: Option<u16>,
    segments: Vec<String>,
}

/// `host:port/path` or `host:port` without a user: the port form of a scheme-less OCI URL,
/// not scp-like ssh.
static HOST_PORT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[^@/:\s]+:[0-9]+(?:/.*)?$").expect("valid regex"));

impl Location {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let text = text.trim().to_lowercase();
        let (scheme, user, host, port, path) = if text.contains("://") {
            let parsed = url::Url::parse(&text).ok()?;
            let scheme = match parsed.scheme() {
                "git+ssh" | "ssh+git" => "ssh",
                other => other,
            }
            .to_owned();
            let host = parsed.host_str().unwrap_or_default().to_owned();
            if host.is_empty() && scheme != "file" {
                return None;
            }
            let user = Some(parsed.username().to_owned()).filter(|u| !u.is_empty());
            let port = parsed.port_or_known_default();
            (scheme, user, host, port, parsed.path().to_owned())
        } else if HOST_PORT.is_match(&text) || !SCP_LIKE.is_match(&text) {
            let (authority, path) = text.split_once('/').unwrap_or((&text, ""));
            // Parsed as `oci://` so host and port are validated the same way.
            let parsed = url::Url::parse(&format!("oci://{authority}/")).ok()?;
            let host = parsed.host_str().filter(|h| !h.is_empty())?.to_owned();
            if !parsed.username().is_empty() {
                return None;
            }
            ("oci".to_owned(), None, host, parsed.port(), path.to_owned())
        } else {
            let caps = SCP_LIKE.captures(&text)?;
            let user = caps.get(1).map(|u| u.as_str().to_owned());
            (
                "ssh".to_owned(),
                user,
                caps[2].to_owned(),
                None,
                caps[3].to_owned(),
            )
        };
        let port = port.or(match scheme.as_str() {
            "ssh" => Some(22),
            "git" => Some(9418),
            "oci" => Some(443),
            _ => None,
        });
        let mut segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if segments
            .iter()
            .any(|s| matches!(s.as_str(), "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."))
        {
            return None;
        }
        if let Some(last) = segments.last_mut()
            && let Some(stripped) = last.strip_suffix(".git")
        {
            *last = stripped.to_owned();
            if last.is_empty() {
                segments.pop();
            }
        }
        Some(Location {
            scheme,
            user,
            host,
            port,
            segments,
        })
    }

    /// Whether a credential template for `self` applies to `url`: same scheme, host and port,
    /// the same user when the template names one, and the template's path segments are the
    /// first segments of the URL's (whole segments: `org` covers `org/x`, never `org-evil/x`).
    pub(crate) fn covers(&self, url: &Location) -> bool {
        self.scheme == url.scheme
            && self.host == url.host
            && self.port == url.port
            && self
                .user
                .as_ref()
                .is_none_or(|user| url.user.as_ref() == Some(user))
            && url.segments.starts_with(&self.segments)
    }

    /// How specific a template is: more path segments, then naming a user, wins.
    pub(crate) fn specificity(&self) -> (usize, bool) {
        (self.segments.len(), self.user.is_some())
    }
}

/// Resolve a submodule URL from `.gitmodules` against the superproject's URL the way git does:
/// `./x` and `../x` are relative to the superproject URL taken as a directory.
pub(crate) fn resolve_submodule_url(parent: &str, submodule: &str) -> Result<String, String> {
    if !(submodule.starts_with("./") || submodule.starts_with("../")) {
        return Ok(submodule.to_owned());
    }
    let mut base = parent.trim_end_matches('/').to_owned();
    // Components may only be removed from the path, never from `scheme://host` or `host:`.
    let path_start = match base.find("://") {
        Some(i) => base[i + 3..].find('/').map_or(base.len(), |j| i + 3 + j),
        None => base.find(':').map_or(0, |i| i + 1),
    };
    let mut rest = submodule;
    loop {
        if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("../") {
            let cut = base[path_start..]
                .rfind('/')
                .map(|i| path_start + i)
                .or((base.len() > path_start).then_some(path_start))
                .ok_or_else(|| {
                    format!("{submodule:?} climbs above the root of {}", scrub(parent))
                })?;
            base.truncate(cut);
            rest = r;
        } else {
            break;
        }
    }
    let separator = if base.ends_with(':') { "" } else { "/" };
    Ok(format!("{base}{separator}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_supported_forms() {
        for (url, transport) in [
            ("file:///tmp/x.git", Transport::File),
            ("git://127.0.0.1:9418/x.git", Transport::Git),
            ("http://127.0.0.1/x.git", Transport::Http),
            ("https://user:tok@github.com/o/r.git", Transport::Https),
            ("ssh://git@github.com/o/r.git", Transport::Ssh),
            ("git@github.com:o/r.git", Transport::Ssh),
        ] {
            assert_eq!(RepoUrl::parse(url).unwrap().transport, transport, "{url}");
        }
    }

    #[test]
    fn rejects_local_paths_and_unknown_schemes() {
        for url in [
            "/etc",
            "relative/path",
            "",
            "ext::sh -c id",
            "ftp://h/x",
            "https://",
        ] {
            let err = RepoUrl::parse(url).unwrap_err();
            assert!(matches!(err, GitError::InvalidUrl { .. }), "{url}: {err}");
        }
    }

    #[test]
    fn ssh_endpoint_has_host_and_port() {
        let url = RepoUrl::parse("ssh://git@127.0.0.1:2222/srv/x.git").unwrap();
        assert_eq!(url.ssh_endpoint, Some(("127.0.0.1".into(), 2222)));
        let url = RepoUrl::parse("git@github.com:o/r.git").unwrap();
        assert_eq!(url.ssh_endpoint, Some(("github.com".into(), 22)));
    }

    #[test]
    fn scrub_hides_passwords_only() {
        assert_eq!(
            scrub("failed: https://alice:s3cret@h/x.git and http://bob:p@w@h2"),
            "failed: https://alice:***@h/x.git and http://bob:***@w@h2"
        );
        assert_eq!(scrub("ssh://git@h:22/x"), "ssh://git@h:22/x");
        let url = RepoUrl::parse("https://alice:s3cret@h/x.git").unwrap();
        assert!(!url.display().contains("s3cret"));
    }

    #[test]
    fn mirror_key_ignores_userinfo() {
        let a = RepoUrl::parse("https://alice:s3cret@h/X.git/").unwrap();
        let b = RepoUrl::parse("https://h/X.git").unwrap();
        assert_eq!(a.mirror_key(), b.mirror_key());
        assert_eq!(b.mirror_key(), "https://h/X.git");
        let c = RepoUrl::parse("git@h:o/r.git").unwrap();
        assert_eq!(c.mirror_key(), "h:o/r.git");
    }

    #[test]
    fn normalize_like_argo() {
        assert_eq!(
            normalize("git@GitHub.com:Org/Repo.git"),
            "git@github.com/org/repo"
        );
        assert_eq!(
            normalize("ssh://git@github.com/org/repo"),
            "git@github.com/org/repo"
        );
        assert_eq!(
            normalize(" https://github.com/org/repo.git "),
            "https://github.com/org/repo"
        );
    }

    #[test]
    fn relative_submodule_urls() {
        let r = |p: &str, s: &str| resolve_submodule_url(p, s);
        assert_eq!(
            r("https://h/org/parent.git", "../child.git").unwrap(),
            "https://h/org/child.git"
        );
        assert_eq!(
            r("https://h/org/parent.git/", "./sub").unwrap(),
            "https://h/org/parent.git/sub"
        );
        assert_eq!(
            r("git@h:org/parent.git", "../../other/c.git").unwrap(),
            "git@h:other/c.git"
        );
        assert_eq!(
            r("file:///srv/a/p.git", "../c.git").unwrap(),
            "file:///srv/a/c.git"
        );
        assert_eq!(r("https://h/p", "https://x/y").unwrap(), "https://x/y");
        assert!(r("https://h/p", "../../x").is_err());
    }
}
