//! `ferry context`: list the login contexts, switch to one, or delete one (argocd's
//! `argocd context`).

use std::process::ExitCode;

use anyhow::bail;

use super::ServerArgs;
use super::config::Config;
use crate::output::Table;

#[derive(clap::Args)]
pub struct Args {
    /// The context to switch to (none: list them).
    name: Option<String>,
    /// Delete the context instead, with its token.
    #[arg(long, requires = "name")]
    delete: bool,
}

pub fn run(global: &ServerArgs, args: Args) -> anyhow::Result<ExitCode> {
    let path = global.config_path();
    let mut config = Config::load(&path)?;
    let Some(name) = args.name else {
        let mut table = Table::new(&["CURRENT", "NAME", "SERVER"]);
        for context in &config.contexts {
            let current = if context.name == config.current_context {
                "*"
            } else {
                ""
            };
            table.row(vec![
                current.to_string(),
                context.name.clone(),
                context.server.clone(),
            ]);
        }
        print!("{}", table.render());
        return Ok(ExitCode::SUCCESS);
    };
    let Some(position) = config.contexts.iter().position(|c| c.name == name) else {
        bail!("no context named {name:?} in {}", path.display());
    };
    if args.delete {
        let removed = config.contexts.remove(position);
        // The user entry goes too unless another context shares it: it holds the token.
        if !config.contexts.iter().any(|c| c.user == removed.user) {
            config.users.retain(|u| u.name != removed.user);
        }
        if config.current_context == name {
            config.current_context.clear();
        }
        config.save(&path)?;
        println!("Context '{name}' deleted");
    } else {
        config.current_context = name.clone();
        config.save(&path)?;
        println!("Switched to context '{name}'");
    }
    Ok(ExitCode::SUCCESS)
}
