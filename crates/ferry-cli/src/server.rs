//! The CLI through an API server, as argocd works when logged in: `ferry login` records a
//! context (server, user token) in the config file, and from then on the commands go through
//! that server, with its authentication and RBAC. `--core`, or having no context at all, keeps
//! core mode (the Kubernetes API with the kubeconfig).

pub mod account;
pub mod apps;
pub mod client;
pub mod config;
pub mod context;
pub mod login;

use std::path::PathBuf;

use anyhow::bail;
use client::ApiClient;
use config::Config;

/// The help section of the options below.
const HEADING: &str = "API server";

/// Options choosing and reaching the API server, as argocd's global flags.
#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    /// API server address `host[:port]` (default: the current context's server).
    #[arg(long, global = true, value_name = "ADDRESS", help_heading = HEADING)]
    pub server: Option<String>,
    /// Authenticate with this token instead of the context's.
    #[arg(
        long,
        global = true,
        env = "FERRY_AUTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = HEADING
    )]
    pub auth_token: Option<String>,
    /// Skip verifying the server's TLS certificate.
    #[arg(long, global = true, help_heading = HEADING)]
    pub insecure: bool,
    /// Talk plain HTTP to the server (no TLS).
    #[arg(long, global = true, help_heading = HEADING)]
    pub plaintext: bool,
    /// Core mode: talk to the Kubernetes API directly, even when logged in to a server.
    #[arg(long, global = true, conflicts_with = "server", help_heading = HEADING)]
    pub core: bool,
    /// Config file with the login contexts [env: FERRY_CONFIG] [default: ~/.config/ferry/config].
    #[arg(long, global = true, value_name = "FILE", help_heading = HEADING)]
    pub config: Option<PathBuf>,
}

/// A server to talk to, and where its token came from.
pub struct Session {
    pub api: ApiClient,
    /// The config context whose token is used; `None` with `--auth-token` or no token.
    pub context: Option<String>,
    pub config_path: PathBuf,
}

/// How the resource commands run.
pub enum Mode {
    Core,
    Server(Session),
}

impl ServerArgs {
    pub fn config_path(&self) -> PathBuf {
        config::path(self.config.as_deref())
    }

    /// Core mode with `--core` or when there is neither `--server` nor a current context;
    /// the server otherwise.
    pub fn mode(&self) -> anyhow::Result<Mode> {
        if self.core {
            return Ok(Mode::Core);
        }
        match self.session()? {
            Some(session) => Ok(Mode::Server(session)),
            None if self.auth_token.is_some() => {
                bail!("--auth-token needs a server: give --server or log in with `ferry login`")
            }
            None => Ok(Mode::Core),
        }
    }

    /// The session `--server` or the current context names, if any.
    pub fn session(&self) -> anyhow::Result<Option<Session>> {
        let config_path = self.config_path();
        let config = Config::load(&config_path)?;
        let (address, mut plain_text, mut insecure, context) = match &self.server {
            Some(server) => {
                let (address, scheme_plain) = split_scheme(server);
                // A saved token goes only to the server it was issued by.
                let context = config.context_for_server(&address).map(|c| c.name.clone());
                let entry = config.servers.iter().find(|s| s.server == address);
                let plain = scheme_plain
                    .or(entry.map(|e| e.plain_text))
                    .unwrap_or(false);
                let insecure = entry.is_some_and(|e| e.insecure);
                (address, plain, insecure, context)
            }
            None => match config.resolve(None)? {
                Some(current) => (
                    current.server.server.clone(),
                    current.server.plain_text,
                    current.server.insecure,
                    Some(current.context.name.clone()),
                ),
                None => return Ok(None),
            },
        };
        plain_text |= self.plaintext;
        insecure |= self.insecure;
        let (token, context) = match &self.auth_token {
            Some(token) => (Some(token.clone()), None),
            None => {
                let saved = context.as_deref().and_then(|name| {
                    let resolved = config.resolve(Some(name)).ok()??;
                    resolved.user?.auth_token.clone()
                });
                (saved, context)
            }
        };
        Ok(Some(Session {
            api: ApiClient::new(&address, plain_text, insecure, token.as_deref())?,
            context,
            config_path,
        }))
    }
}

/// `host[:port]` as the config stores it, and whether a scheme said plain text or TLS.
pub fn split_scheme(server: &str) -> (String, Option<bool>) {
    let server = server.trim_end_matches('/');
    if let Some(rest) = server.strip_prefix("http://") {
        (rest.to_string(), Some(true))
    } else if let Some(rest) = server.strip_prefix("https://") {
        (rest.to_string(), Some(false))
    } else {
        (server.to_string(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_folded_into_plain_text() {
        assert_eq!(
            split_scheme("http://localhost:8080/"),
            ("localhost:8080".to_string(), Some(true))
        );
        assert_eq!(
            split_scheme("https://cd.example.com"),
            ("cd.example.com".to_string(), Some(false))
        );
        assert_eq!(split_scheme("cd:443"), ("cd:443".to_string(), None));
    }
}
