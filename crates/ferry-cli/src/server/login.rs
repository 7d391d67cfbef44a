//! `ferry login` and `ferry logout`, as argocd's: a login stores the server and a session token
//! under a context in the config file and makes it current; a logout ends the session and
//! forgets the token.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{ApiClient, ApiError};
use super::config::{Config, ServerEntry};
use super::{ServerArgs, split_scheme};

#[derive(clap::Args)]
pub struct LoginArgs {
    /// The API server, `host[:port]` (`http://` implies --plaintext).
    server: String,
    /// The context's name (default: the server address).
    #[arg(long)]
    name: Option<String>,
    /// Username (asked for when missing).
    #[arg(long)]
    username: Option<String>,
    /// Password (asked for, without echo, when missing).
    #[arg(long, env = "FERRY_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Log in through the server's OIDC provider in a browser (a password, even from the
    /// environment, is not used then).
    #[arg(long, conflicts_with = "username")]
    sso: bool,
    /// The local port the browser returns to with --sso.
    #[arg(long, default_value_t = 8085)]
    sso_port: u16,
}

#[derive(clap::Args)]
pub struct LogoutArgs {
    /// The context to log out of (default: the current one).
    context: Option<String>,
}

pub async fn login(global: &ServerArgs, args: LoginArgs) -> anyhow::Result<ExitCode> {
    let (address, scheme_plain) = split_scheme(&args.server);
    let plain_text = scheme_plain.unwrap_or(global.plaintext);
    let api = ApiClient::new(&address, plain_text, global.insecure, None)?;
    let (who, token, refresh_token) = if args.sso {
        let settings: Value = api.get("/api/v1/settings", &[]).await?;
        let oidc = settings
            .get("oidcConfig")
            .filter(|c| !c.is_null())
            .with_context(|| format!("{address} has no OIDC provider configured for --sso"))?;
        let tokens = crate::sso::sso_login(api.url(), oidc, args.sso_port).await?;
        ("sso".to_string(), tokens.id_token, tokens.refresh_token)
    } else {
        let username = match args.username {
            Some(username) => username,
            None => prompt_line("Username: ")?,
        };
        let password = match args.password {
            Some(password) => password,
            None => prompt_secret("Password: ")?,
        };
        let token = session_token(&api, &username, &password).await?;
        (username, token, None)
    };
    let name = args.name.unwrap_or_else(|| address.clone());
    let path = global.config_path();
    let mut config = Config::load(&path)?;
    config.upsert_login(
        &name,
        ServerEntry::new(&address, global.insecure, plain_text),
        token,
        refresh_token,
    );
    config.save(&path)?;
    println!("'{who}:login' logged in successfully");
    println!("Context '{name}' updated");
    Ok(ExitCode::SUCCESS)
}

/// A session token for a username and password (`POST /api/v1/session`).
pub async fn session_token(
    api: &ApiClient,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    let answer: Value = api
        .call(
            Method::POST,
            "/api/v1/session",
            &[],
            Some(&json!({"username": username, "password": password})),
        )
        .await
        .map_err(|err| match err.downcast::<ApiError>() {
            // A refused login is no expired session: the server's message says it all.
            Ok(refused) if refused.is_unauthenticated() => anyhow::anyhow!("{}", refused.message),
            Ok(other) => other.into(),
            Err(err) => err,
        })
        .context("logging in")?;
    answer["token"]
        .as_str()
        .map(str::to_string)
        .context("the server answered the login without a token")
}

pub async fn logout(global: &ServerArgs, args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let path = global.config_path();
    let mut config = Config::load(&path)?;
    let Some(current) = config.resolve(args.context.as_deref())? else {
        bail!("not logged in: there is no current context");
    };
    let name = current.context.name.clone();
    let token = current.user.and_then(|u| u.auth_token.clone());
    let api = ApiClient::new(
        &current.server.server,
        current.server.plain_text,
        current.server.insecure,
        token.as_deref(),
    )?;
    // The server forgets the session where it can; the token is dropped here regardless, so an
    // unreachable server does not keep anyone logged in.
    if let Err(err) = api
        .call::<Value>(Method::DELETE, "/api/v1/session", &[], None::<&Value>)
        .await
    {
        eprintln!("warning: the server did not end the session: {err:#}");
    }
    config.forget_tokens(&name)?;
    config.save(&path)?;
    println!("Logged out from '{name}'");
    Ok(ExitCode::SUCCESS)
}

/// A line from the terminal; without one the value must come from a flag.
pub fn prompt_line(question: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "{} is needed (there is no terminal to ask on)",
            flag_of(question)
        );
    }
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(line.trim().to_string())
}

/// A secret from the terminal, not echoed; without one the value must come from a flag.
pub fn prompt_secret(question: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "{} is needed (there is no terminal to ask on)",
            flag_of(question)
        );
    }
    rpassword::prompt_password(question).context("reading the password")
}

/// `--new-password` for `New password: `: the flag a prompt stands in for.
fn flag_of(question: &str) -> String {
    let words = question.trim().trim_end_matches(':').to_lowercase();
    format!("--{}", words.replace(' ', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_name_their_flags() {
        assert_eq!(flag_of("Username: "), "--username");
        assert_eq!(flag_of("Current password: "), "--current-password");
    }
}
