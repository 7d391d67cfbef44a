//! The login contexts, in argocd's config file layout (`contexts`, `current-context`,
//! `servers`, `users`), so a config is read and written the way argocd reads and writes its own.
//! The file holds tokens: it is written with mode 0600, atomically (a temporary file renamed
//! over it), and its users have no `Debug` so no token is ever formatted by accident.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Keys this version does not know, kept so that rewriting the file loses nothing.
type Unknown = BTreeMap<String, serde_yaml::Value>;

#[derive(Serialize, Deserialize, Default, Clone)]
#[serde(rename_all = "kebab-case")]
pub struct Config {
    #[serde(default)]
    pub contexts: Vec<ContextRef>,
    #[serde(default)]
    pub current_context: String,
    #[serde(default)]
    pub servers: Vec<ServerEntry>,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(flatten)]
    unknown: Unknown,
}

#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq, Eq)]
pub struct ContextRef {
    pub name: String,
    pub server: String,
    pub user: String,
}

#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct ServerEntry {
    /// `host[:port]`, as argocd stores it; the scheme follows from `plain-text`.
    pub server: String,
    #[serde(default)]
    pub insecure: bool,
    #[serde(default)]
    pub plain_text: bool,
    #[serde(flatten)]
    unknown: Unknown,
}

#[derive(Serialize, Deserialize, Default, Clone)]
#[serde(rename_all = "kebab-case")]
pub struct User {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(flatten)]
    unknown: Unknown,
}

/// A context with its server and user entries.
pub struct Resolved<'a> {
    pub context: &'a ContextRef,
    pub server: ServerEntry,
    pub user: Option<&'a User>,
}

/// `--config`, else `$FERRY_CONFIG`, else `$XDG_CONFIG_HOME/ferry/config`, else
/// `~/.config/ferry/config`.
pub fn path(flag: Option<&Path>) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    if let Some(path) = std::env::var_os("FERRY_CONFIG").filter(|p| !p.is_empty()) {
        return path.into();
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("ferry").join("config")
}

impl Config {
    /// The config at `path`; an empty one when there is no file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) if text.trim().is_empty() => Ok(Self::default()),
            Ok(text) => serde_yaml::from_str(&text)
                .with_context(|| format!("{}: not a ferry (argocd) config file", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the config readable by its owner only, replacing the file in one rename so a
    /// crash never leaves half a file.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating directory {}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let text = serde_yaml::to_string(self)?;
        let file_name = path.file_name().context("the config path names no file")?;
        let temporary = dir.join(format!(
            ".{}.{}.tmp",
            file_name.to_string_lossy(),
            std::process::id()
        ));
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temporary, path)
        })();
        if let Err(err) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(err).with_context(|| format!("writing {}", path.display()));
        }
        Ok(())
    }

    /// The context `name`, or the current one.
    pub fn resolve(&self, name: Option<&str>) -> anyhow::Result<Option<Resolved<'_>>> {
        let name = match name {
            Some(name) => name,
            None if self.current_context.is_empty() => return Ok(None),
            None => &self.current_context,
        };
        let Some(context) = self.contexts.iter().find(|c| c.name == name) else {
            bail!("no context named {name:?} in the config");
        };
        let server = self
            .servers
            .iter()
            .find(|s| s.server == context.server)
            .cloned()
            .unwrap_or_else(|| ServerEntry {
                server: context.server.clone(),
                ..Default::default()
            });
        let user = self.users.iter().find(|u| u.name == context.user);
        Ok(Some(Resolved {
            context,
            server,
            user,
        }))
    }

    /// The context whose server is `server`, preferring the current one.
    pub fn context_for_server(&self, server: &str) -> Option<&ContextRef> {
        let mut matching = self.contexts.iter().filter(|c| c.server == server);
        let first = matching.next()?;
        Some(
            std::iter::once(first)
                .chain(matching)
                .find(|c| c.name == self.current_context)
                .unwrap_or(first),
        )
    }

    /// Records a login: the server's settings, the user's tokens and a context tying them
    /// together (named `name`, by default the server), which becomes the current one.
    pub fn upsert_login(
        &mut self,
        name: &str,
        server: ServerEntry,
        auth_token: String,
        refresh_token: Option<String>,
    ) {
        let address = server.server.clone();
        match self.servers.iter_mut().find(|s| s.server == address) {
            Some(entry) => {
                entry.insecure = server.insecure;
                entry.plain_text = server.plain_text;
            }
            None => self.servers.push(server),
        }
        let user_name = self
            .contexts
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.user.clone())
            .unwrap_or_else(|| name.to_string());
        match self.users.iter_mut().find(|u| u.name == user_name) {
            Some(user) => {
                user.auth_token = Some(auth_token);
                user.refresh_token = refresh_token;
            }
            None => self.users.push(User {
                name: user_name.clone(),
                auth_token: Some(auth_token),
                refresh_token,
                unknown: Unknown::new(),
            }),
        }
        let context = ContextRef {
            name: name.to_string(),
            server: address,
            user: user_name,
        };
        match self.contexts.iter_mut().find(|c| c.name == name) {
            Some(existing) => *existing = context,
            None => self.contexts.push(context),
        }
        self.current_context = name.to_string();
    }

    /// Forgets the tokens of the context's user; the context stays, as argocd leaves it.
    pub fn forget_tokens(&mut self, context: &str) -> anyhow::Result<()> {
        let Some(user) = self
            .contexts
            .iter()
            .find(|c| c.name == context)
            .map(|c| c.user.clone())
        else {
            bail!("no context named {context:?} in the config");
        };
        if let Some(user) = self.users.iter_mut().find(|u| u.name == user) {
            user.auth_token = None;
            user.refresh_token = None;
        }
        Ok(())
    }

    /// Sets the token of the context's user (after a password change logged in again).
    pub fn set_token(&mut self, context: &str, token: String) -> anyhow::Result<()> {
        let user = self
            .contexts
            .iter()
            .find(|c| c.name == context)
            .map(|c| c.user.clone())
            .with_context(|| format!("no context named {context:?} in the config"))?;
        let entry = self
            .users
            .iter_mut()
            .find(|u| u.name == user)
            .with_context(|| format!("context {context:?} names no known user"))?;
        entry.auth_token = Some(token);
        entry.refresh_token = None;
        Ok(())
    }
}

impl ServerEntry {
    pub fn new(server: &str, insecure: bool, plain_text: bool) -> Self {
        Self {
            server: server.to_string(),
            insecure,
            plain_text,
            unknown: Unknown::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARGOCD: &str = "\
contexts:
- name: cd.example.com
  server: cd.example.com
  user: cd.example.com
current-context: cd.example.com
prompts-enabled: false
servers:
- grpc-web-root-path: \"\"
  server: cd.example.com
users:
- auth-token: old-token
  name: cd.example.com
";

    #[test]
    fn argocds_file_is_read_kept_and_updated() {
        let mut config: Config = serde_yaml::from_str(ARGOCD).unwrap();
        let current = config.resolve(None).unwrap().unwrap();
        assert_eq!(current.server.server, "cd.example.com");
        assert_eq!(
            current.user.unwrap().auth_token.as_deref(),
            Some("old-token")
        );

        config.upsert_login(
            "local",
            ServerEntry::new("localhost:8080", false, true),
            "new-token".into(),
            None,
        );
        assert_eq!(config.current_context, "local");
        let text = serde_yaml::to_string(&config).unwrap();
        // What this version does not know survives a rewrite.
        assert!(text.contains("prompts-enabled: false"), "{text}");
        assert!(text.contains("grpc-web-root-path: ''"), "{text}");
        let local = config.resolve(None).unwrap().unwrap();
        assert!(local.server.plain_text);
        assert_eq!(local.user.unwrap().auth_token.as_deref(), Some("new-token"));
        assert_eq!(
            config.context_for_server("cd.example.com").unwrap().name,
            "cd.example.com"
        );

        config.forget_tokens("local").unwrap();
        assert!(
            config
                .resolve(Some("local"))
                .unwrap()
                .unwrap()
                .user
                .unwrap()
                .auth_token
                .is_none()
        );
        assert!(config.resolve(Some("nope")).is_err());
    }

    #[test]
    fn saving_is_private_and_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/config");
        let mut config = Config::default();
        config.upsert_login(
            "s",
            ServerEntry::new("s:1", true, false),
            "t".into(),
            Some("r".into()),
        );
        config.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        config.current_context.clear();
        config.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap().current_context, "");
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        assert!(
            Config::load(&dir.path().join("absent"))
                .unwrap()
                .contexts
                .is_empty()
        );
    }
}
