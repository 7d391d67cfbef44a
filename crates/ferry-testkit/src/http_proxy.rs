//! An HTTP proxy on a free loopback port: Debian's tinyproxy (CONNECT for https, absolute-form
//! requests for http), with a log of every request it handled, so a test can prove traffic
//! went through it, or did not.

use std::path::PathBuf;
use std::process::{Child, Command};

use anyhow::{Context, Result};

use crate::daemon::{start_on_free_port, stop};

pub struct HttpProxy {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl HttpProxy {
    pub fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("tinyproxy.log");
        let (child, port) = start_on_free_port(
            &dir.path().join("output.log"),
            |port| {
                let config = dir.path().join(format!("tinyproxy-{port}.conf"));
                std::fs::write(
                    &config,
                    format!(
                        "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 50\n\
                         LogLevel Connect\nLogFile \"{}\"\nPidFile \"{}\"\n",
                        log.display(),
                        dir.path().join("tinyproxy.pid").display()
                    ),
                )?;
                let mut command = Command::new("tinyproxy");
                command.arg("-d").arg("-c").arg(config);
                Ok(command)
            },
            |_| true,
        )
        .context("starting tinyproxy (scripts/setup installs it)")?;
        Ok(HttpProxy {
            child,
            port,
            log,
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:<port>`, as a repository Secret's `proxy`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The request lines it received so far (`CONNECT host:port HTTP/1.1`, `GET http://…`).
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_once("Request (file descriptor "))
            .filter_map(|(_, rest)| rest.split_once("): "))
            .map(|(_, request)| request.trim().to_owned())
            .collect()
    }
}

impl Drop for HttpProxy {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
