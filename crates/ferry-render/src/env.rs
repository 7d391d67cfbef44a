//! The build environment Argo CD gives renderers (`ARGOCD_APP_*`), and `$VAR` substitution in
//! option values that Argo CD performs with it.

use ferry_types::source::ApplicationSource;

use crate::AppContext;

/// Ordered `NAME=value` pairs.
#[derive(Debug, Clone, Default)]
pub(crate) struct BuildEnv(pub Vec<(String, String)>);

impl BuildEnv {
    pub(crate) fn new(app: &AppContext, source: &ApplicationSource, revision: &str) -> Self {
        let short: String = revision.chars().take(7).collect();
        BuildEnv(vec![
            ("ARGOCD_APP_NAME".into(), app.name.clone()),
            ("ARGOCD_APP_NAMESPACE".into(), app.namespace.clone()),
            ("ARGOCD_APP_REVISION".into(), revision.into()),
            ("ARGOCD_APP_REVISION_SHORT".into(), short),
            ("ARGOCD_APP_SOURCE_REPO_URL".into(), source.repo_url.clone()),
            ("ARGOCD_APP_SOURCE_PATH".into(), source.path.clone()),
            (
                "ARGOCD_APP_SOURCE_TARGET_REVISION".into(),
                source.target_revision.clone(),
            ),
        ])
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Go `os.Expand` semantics as Argo CD uses them: `$NAME` and `${NAME}` are replaced by the
    /// value (empty when unknown), `$$` is a literal `$`, a `$` not followed by a name stays.
    pub(crate) fn subst(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            let (name, consumed) = shell_name(after);
            match name {
                Some("$") => out.push('$'),
                Some(name) => out.push_str(self.get(name).unwrap_or("")),
                // `${` without a valid name: Go drops the malformed reference.
                None if consumed > 0 => {}
                None => out.push('$'),
            }
            rest = &after[consumed..];
        }
        out.push_str(rest);
        out
    }
}

/// The variable name at the start of `s` (after a `$`) and how many bytes it takes.
fn shell_name(s: &str) -> (Option<&str>, usize) {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(b'{') => match s[1..].find('}') {
            // `${}` and an unclosed `${` are eaten, as Go does.
            Some(0) => (None, 2),
            None => (None, 1),
            Some(end) => (Some(&s[1..1 + end]), end + 2),
        },
        Some(c) if is_special(*c) => (Some(&s[..1]), 1),
        Some(_) => {
            let len = bytes
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            if len == 0 {
                (None, 0)
            } else {
                (Some(&s[..len]), len)
            }
        }
        None => (None, 0),
    }
}

fn is_special(c: u8) -> bool {
    matches!(c, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-') || c.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BuildEnv {
        BuildEnv(vec![
            ("ARGOCD_APP_NAME".into(), "web".into()),
            ("ARGOCD_APP_REVISION".into(), "abc123".into()),
        ])
    }

    #[test]
    fn substitutes_like_go_os_expand() {
        let e = env();
        assert_eq!(e.subst("app-$ARGOCD_APP_NAME"), "app-web");
        assert_eq!(e.subst("${ARGOCD_APP_REVISION}-x"), "abc123-x");
        assert_eq!(e.subst("$UNKNOWN/x"), "/x");
        assert_eq!(e.subst("cost $$5"), "cost $5");
        assert_eq!(e.subst("trailing $"), "trailing $");
        assert_eq!(e.subst("a $ b"), "a $ b");
        assert_eq!(e.subst("no vars"), "no vars");
    }

    #[test]
    fn build_env_has_argo_names() {
        let app = AppContext {
            name: "web".into(),
            namespace: "prod".into(),
            ..Default::default()
        };
        let src = ApplicationSource {
            repo_url: "https://r".into(),
            path: "apps/web".into(),
            target_revision: "main".into(),
            ..Default::default()
        };
        let env = BuildEnv::new(&app, &src, "0123456789abcdef");
        assert_eq!(env.get("ARGOCD_APP_REVISION_SHORT"), Some("0123456"));
        assert_eq!(env.get("ARGOCD_APP_SOURCE_PATH"), Some("apps/web"));
        assert_eq!(env.get("ARGOCD_APP_NAMESPACE"), Some("prod"));
    }
}
