//! `ferry-sandbox up|down|status|list|kubeconfig|registry`: manage local control planes and
//! their registries.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Parser, Subcommand};
use ferry_sandbox::{Sandbox, Started, UpOptions};

#[derive(Parser)]
#[command(
    name = "ferry-sandbox",
    about = "A local Kubernetes control plane for tests and demos"
)]
struct Cli {
    /// Which sandbox (several can run at once).
    #[arg(
        long,
        short,
        global = true,
        default_value = "default",
        env = "FERRY_SANDBOX"
    )]
    name: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the sandbox (or reuse it if it already runs) and print its kubeconfig path.
    Up {
        /// Simulated nodes to create.
        #[arg(long, default_value_t = 2)]
        nodes: u32,
        /// Seconds to wait for readiness.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Also run a real node on this host (containerd, kubelet, kube-proxy, CoreDNS; needs
        /// root), tainted `ferry.dev/real-node=true:NoSchedule`. One sandbox at a time can.
        #[arg(long)]
        real_node: bool,
    },
    /// Stop the sandbox.
    Down,
    /// Show which components run.
    Status,
    /// List the sandboxes known in the cache.
    List,
    /// Print the path of the sandbox's kubeconfig.
    Kubeconfig,
    /// The sandbox's container registry (TLS from the sandbox CA, basic auth).
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
}

#[derive(Subcommand)]
enum RegistryCommand {
    /// Start the registry (or reuse it) and print how to reach it, as shell variables.
    Up,
    /// Stop the registry; its images stay.
    Down,
    /// Print how to reach the running registry, as shell variables.
    Info,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                // The client logs every failed readiness poll while the sandbox starts.
                .unwrap_or_else(|_| "warn,kube_client=off".into()),
        )
        .init();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let sandbox = Sandbox::named(&cli.name)?;
    match cli.command {
        Command::Up {
            nodes,
            timeout,
            real_node,
        } => {
            let started_at = Instant::now();
            let opts = UpOptions {
                nodes,
                timeout: Duration::from_secs(timeout),
                real_node,
            };
            let how = sandbox.up(&opts).await?;
            let verb = match how {
                Started::Reused => "already running",
                Started::Fresh => "started",
            };
            eprintln!(
                "sandbox {} {verb} in {:.1}s",
                sandbox.name(),
                started_at.elapsed().as_secs_f64()
            );
            println!("{}", sandbox.kubeconfig().display());
        }
        Command::Down => {
            sandbox.down()?;
            eprintln!("sandbox {} stopped", sandbox.name());
        }
        Command::Status => {
            let status = sandbox.status();
            for c in &status {
                match c.pid {
                    Some(pid) => println!("{:<24} running (pid {pid})", c.name),
                    None => println!("{:<24} stopped", c.name),
                }
            }
            if status.iter().any(|c| c.pid.is_none()) {
                return Ok(ExitCode::from(3));
            }
        }
        Command::List => {
            for name in Sandbox::list()? {
                let sandbox = Sandbox::named(&name)?;
                let status = sandbox.status();
                let running = status.iter().filter(|c| c.pid.is_some()).count();
                println!("{name:<20} {running}/{} components running", status.len());
            }
        }
        Command::Kubeconfig => println!("{}", sandbox.kubeconfig().display()),
        Command::Registry { command } => {
            let registry = ferry_sandbox::registry::Registry::of(&sandbox);
            match command {
                RegistryCommand::Up => print_registry(&registry.up()?),
                RegistryCommand::Down => {
                    registry.down()?;
                    eprintln!("registry of sandbox {} stopped", sandbox.name());
                }
                RegistryCommand::Info => print_registry(&registry.info()?),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The registry's coordinates as shell variables; `REGISTRY_AUTH_FILE` is the variable skopeo,
/// buildah and podman read their credentials from.
fn print_registry(info: &ferry_sandbox::registry::RegistryInfo) {
    println!("REGISTRY={}", info.address);
    println!("REGISTRY_ADDRESSES='{}'", info.addresses.join(" "));
    println!("REGISTRY_CA={}", info.ca.display());
    println!("REGISTRY_USERNAME={}", info.username);
    println!("REGISTRY_CREDENTIALS={}", info.credentials.display());
    println!("REGISTRY_AUTH_FILE={}", info.auth_config.display());
    println!(
        "REGISTRY_CONTAINERD_CERTS_DIR={}",
        info.containerd_certs_dir.display()
    );
}
