//! Server processes on free loopback ports: started, waited for until they serve, and stopped.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a server may take to accept connections after it was started.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// A loopback port that was free a moment ago (for servers that must be told their port).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Wait until `port` accepts connections and `ready` approves what it says first (if anything),
/// failing early if `child` exits.
fn wait_ready(
    child: &mut Child,
    port: u16,
    log: &Path,
    ready: impl Fn(&mut TcpStream) -> bool,
) -> Result<()> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("server exited with {status}: {}", read_log(log));
        }
        if let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            stream.set_read_timeout(Some(Duration::from_secs(2)))?;
            if ready(&mut stream) {
                // Whoever answered, our server must still be up: if another process took the
                // port, ours failed to bind and exits.
                thread::sleep(Duration::from_millis(50));
                if let Some(status) = child.try_wait()? {
                    bail!("server exited with {status}: {}", read_log(log));
                }
                return Ok(());
            }
        }
        if started.elapsed() > STARTUP_TIMEOUT {
            bail!("server did not start on port {port}: {}", read_log(log));
        }
        thread::sleep(Duration::from_millis(25));
    }
}

fn read_log(log: &Path) -> String {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

pub(crate) fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Start a server process on `port` (where it served before), with output appended to `log`.
pub(crate) fn start_on_port(
    log: &Path,
    command: impl Fn(u16) -> Result<Command>,
    port: u16,
    ready: impl Fn(&mut TcpStream) -> bool,
) -> Result<Child> {
    let log_file = std::fs::File::options().append(true).open(log)?;
    let mut child = command(port)?
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .context("spawning server")?;
    if let Err(err) = wait_ready(&mut child, port, log, ready) {
        stop(&mut child);
        return Err(err);
    }
    Ok(child)
}

/// Start a server process on a fresh port, retrying when another process grabbed the port
/// between probing and binding.
pub(crate) fn start_on_free_port(
    log: &Path,
    command: impl Fn(u16) -> Result<Command>,
    ready: impl Fn(&mut TcpStream) -> bool + Copy,
) -> Result<(Child, u16)> {
    let mut last_error = None;
    for _ in 0..5 {
        let port = free_port()?;
        let log_file = std::fs::File::create(log)?;
        let mut child = command(port)?
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("spawning server")?;
        match wait_ready(&mut child, port, log, ready) {
            Ok(()) => return Ok((child, port)),
            Err(e) => {
                stop(&mut child);
                last_error = Some(e);
            }
        }
    }
    Err(last_error.expect("at least one attempt"))
}
