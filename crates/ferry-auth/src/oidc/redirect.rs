//! Where a finished login may send the browser: only back to this server, so `/auth/login` cannot
//! be used to bounce a user to another site with ferry's name on the link (an open redirect).

use url::Url;

/// The refusal, in Argo CD's words.
pub const INVALID_RETURN_URL: &str = "Invalid redirect URL: the protocol and host (including \
     port) must match and the path must be within allowed URLs if provided";

/// `return_url` if it stays on this server: a path, or an absolute URL with the scheme, host and
/// port of `url` (the server's external URL); either within `url`'s path. Empty means that path.
pub fn checked_return_url(return_url: &str, url: Option<&Url>) -> Result<String, &'static str> {
    let base_path = url.map_or("/", Url::path);
    if return_url.is_empty() {
        return Ok(base_path.to_string());
    }
    // Browsers read `\` as `/` (so `/\evil.example` is another host) and drop tabs and newlines.
    if return_url.chars().any(|c| c.is_control() || c == '\\') {
        return Err(INVALID_RETURN_URL);
    }
    if return_url.starts_with('/') {
        let path = return_url.split(['?', '#']).next().unwrap_or_default();
        // `//host/path` is a URL on another host, relative to the scheme only.
        if return_url.starts_with("//") || !within(path, base_path) {
            return Err(INVALID_RETURN_URL);
        }
        return Ok(return_url.to_string());
    }
    let (Some(url), Ok(target)) = (url, Url::parse(return_url)) else {
        return Err(INVALID_RETURN_URL);
    };
    let same_origin = target.scheme() == url.scheme()
        && target.host_str() == url.host_str()
        && target.port_or_known_default() == url.port_or_known_default();
    let no_credentials = target.username().is_empty() && target.password().is_none();
    if same_origin && no_credentials && within(target.path(), base_path) {
        Ok(target.into())
    } else {
        Err(INVALID_RETURN_URL)
    }
}

/// Whether `path` is `base` or below it.
fn within(path: &str, base: &str) -> bool {
    let base = base.trim_end_matches('/');
    base.is_empty()
        || path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_urls_on_this_server_are_kept() {
        let url = Url::parse("https://cd.example.com").unwrap();
        for (given, kept) in [
            ("", "/"),
            ("/", "/"),
            ("/applications?proj=a#x", "/applications?proj=a#x"),
            (
                "https://cd.example.com/applications",
                "https://cd.example.com/applications",
            ),
            ("https://cd.example.com:443/a", "https://cd.example.com/a"),
        ] {
            assert_eq!(
                checked_return_url(given, Some(&url)).as_deref(),
                Ok(kept),
                "{given}"
            );
        }
        // Without `url`, paths still work.
        assert_eq!(checked_return_url("/apps", None).as_deref(), Ok("/apps"));
        assert_eq!(checked_return_url("", None).as_deref(), Ok("/"));
    }

    #[test]
    fn other_sites_are_refused() {
        let url = Url::parse("https://cd.example.com").unwrap();
        for given in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "\\\\evil.example",
            "http://cd.example.com/",
            "https://cd.example.com:8443/",
            "https://cd.example.com.evil.example/",
            "https://user:pw@cd.example.com/",
            "javascript:alert(1)",
            "/ok\r\nSet-Cookie: x=y",
            "evil.example",
        ] {
            assert_eq!(
                checked_return_url(given, Some(&url)),
                Err(INVALID_RETURN_URL),
                "{given}"
            );
        }
        assert!(checked_return_url("https://cd.example.com/", None).is_err());
    }

    #[test]
    fn a_server_under_a_path_keeps_logins_under_it() {
        let url = Url::parse("https://example.com/ferry/").unwrap();
        assert_eq!(checked_return_url("", Some(&url)).as_deref(), Ok("/ferry/"));
        assert!(checked_return_url("/ferry/apps", Some(&url)).is_ok());
        assert!(checked_return_url("https://example.com/ferry", Some(&url)).is_ok());
        assert!(checked_return_url("/ferryx", Some(&url)).is_err());
        assert!(checked_return_url("/other", Some(&url)).is_err());
        assert!(checked_return_url("https://example.com/other", Some(&url)).is_err());
    }
}
