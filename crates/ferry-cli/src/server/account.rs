//! `ferry account`: the server's local accounts, their passwords and API tokens, and what the
//! caller may do, with argocd's commands and output. Tokens are printed only by
//! `generate-token`, whose whole point is to hand one out.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{ApiClient, segment};
use super::config::Config;
use super::login::{prompt_secret, session_token};
use super::{ServerArgs, Session};
use crate::output::{ListFormat, ObjectFormat, Table, or_none, print_json, print_yaml, summary};

/// Logins retried after a password change, each after twice the wait of the one before: fewer
/// than the failed logins that make a server lock the account out (5 in Argo CD and ferry).
const LOGIN_RETRIES: u32 = 4;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the accounts.
    List(ListArgs),
    /// Show an account and its tokens.
    Get(GetArgs),
    /// Show who the current session belongs to.
    GetUserInfo(OutputArgs),
    /// Change an account's password (the caller's own by default).
    UpdatePassword(PasswordArgs),
    /// Generate an API token for an account (the caller's own by default) and print it.
    GenerateToken(TokenArgs),
    /// Revoke an API token.
    DeleteToken(DeleteTokenArgs),
    /// Whether the caller may do ACTION on RESOURCE OBJECT: prints yes or no.
    CanI(CanIArgs),
}

#[derive(clap::Args)]
struct ListArgs {
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: ListFormat,
}

#[derive(clap::Args)]
struct GetArgs {
    /// The account (default: the caller's).
    #[arg(long, short = 'a')]
    account: Option<String>,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: ObjectFormat,
}

#[derive(clap::Args)]
struct OutputArgs {
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: ObjectFormat,
}

#[derive(clap::Args)]
struct PasswordArgs {
    /// The account whose password changes (default: the caller's).
    #[arg(long)]
    account: Option<String>,
    /// The caller's own current password (asked for when missing).
    #[arg(long, env = "FERRY_CURRENT_PASSWORD", hide_env_values = true)]
    current_password: Option<String>,
    /// The new password (asked for twice when missing).
    #[arg(long, env = "FERRY_NEW_PASSWORD", hide_env_values = true)]
    new_password: Option<String>,
}

#[derive(clap::Args)]
struct TokenArgs {
    /// The account (default: the caller's).
    #[arg(long, short = 'a')]
    account: Option<String>,
    /// Lifetime such as `30m`, `12h` or `7d` (default: never expires).
    #[arg(long, short = 'e', default_value = "0s", value_parser = parse_duration)]
    expires_in: u64,
    /// The token's ID (default: generated).
    #[arg(long)]
    id: Option<String>,
}

#[derive(clap::Args)]
struct DeleteTokenArgs {
    /// The token's ID.
    id: String,
    /// The account (default: the caller's).
    #[arg(long, short = 'a')]
    account: Option<String>,
}

#[derive(clap::Args)]
struct CanIArgs {
    /// get, create, update, delete, sync, override, action/..., invoke.
    action: String,
    /// applications, applicationsets, clusters, repositories, projects, accounts, ...
    resource: String,
    /// `<project>/<app>` for applications, else the object's name (`*` for any).
    object: String,
}

#[derive(Deserialize)]
struct Account {
    name: String,
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    tokens: Vec<TokenRecord>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenRecord {
    id: String,
    #[serde(default)]
    issued_at: i64,
    #[serde(default)]
    expires_at: i64,
}

pub async fn run(global: &ServerArgs, args: Args) -> anyhow::Result<ExitCode> {
    let Some(session) = global.session()? else {
        bail!("ferry account needs a server: log in with `ferry login <server>` or give --server");
    };
    let api = &session.api;
    match args.command {
        Command::List(args) => {
            let list: Value = api.get("/api/v1/account", &[]).await?;
            let accounts: Vec<Account> =
                serde_json::from_value(list["items"].clone()).unwrap_or_default();
            match args.output {
                ListFormat::Json => print_json(&list["items"])?,
                ListFormat::Yaml => print_yaml(&list["items"])?,
                ListFormat::Name => accounts.iter().for_each(|a| println!("{}", a.name)),
                ListFormat::Wide => print!("{}", account_table(&accounts).render()),
            }
        }
        Command::Get(args) => {
            let name = account_or_own(api, args.account).await?;
            let raw: Value = api
                .get(&format!("/api/v1/account/{}", segment(&name)), &[])
                .await?;
            match args.output {
                ObjectFormat::Json => print_json(&raw)?,
                ObjectFormat::Yaml => print_yaml(&raw)?,
                ObjectFormat::Wide => print!("{}", account_text(&serde_json::from_value(raw)?)),
            }
        }
        Command::GetUserInfo(args) => {
            let info: Value = api.get("/api/v1/session/userinfo", &[]).await?;
            match args.output {
                ObjectFormat::Json => print_json(&info)?,
                ObjectFormat::Yaml => print_yaml(&info)?,
                ObjectFormat::Wide => print!("{}", user_info_text(&info)),
            }
        }
        Command::UpdatePassword(args) => update_password(&session, args).await?,
        Command::GenerateToken(args) => {
            let name = account_or_own(api, args.account).await?;
            let mut body = json!({"expiresIn": args.expires_in});
            if let Some(id) = args.id {
                body["id"] = id.into();
            }
            let answer: Value = api
                .call(
                    Method::POST,
                    &format!("/api/v1/account/{}/token", segment(&name)),
                    &[],
                    Some(&body),
                )
                .await
                .with_context(|| format!("generating a token for account {name}"))?;
            let token = answer["token"]
                .as_str()
                .context("the server answered without a token")?;
            println!("{token}");
        }
        Command::DeleteToken(args) => {
            let name = account_or_own(api, args.account).await?;
            api.call::<Value>(
                Method::DELETE,
                &format!(
                    "/api/v1/account/{}/token/{}",
                    segment(&name),
                    segment(&args.id)
                ),
                &[],
                None::<&Value>,
            )
            .await
            .with_context(|| format!("deleting token {} of account {name}", args.id))?;
            println!("token '{}' of account '{name}' deleted", args.id);
        }
        Command::CanI(args) => {
            // The object may hold `/` (`project/app`): each part is escaped on its own.
            let object: Vec<String> = args.object.split('/').map(segment).collect();
            let answer: Value = api
                .get(
                    &format!(
                        "/api/v1/account/can-i/{}/{}/{}",
                        segment(&args.resource),
                        segment(&args.action),
                        object.join("/")
                    ),
                    &[],
                )
                .await?;
            println!("{}", answer["value"].as_str().unwrap_or("no"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The named account, else the caller's own.
async fn account_or_own(api: &ApiClient, account: Option<String>) -> anyhow::Result<String> {
    if let Some(account) = account {
        return Ok(account);
    }
    let info: Value = api.get("/api/v1/session/userinfo", &[]).await?;
    match info["username"].as_str() {
        Some(name) if info["loggedIn"] == true => Ok(name.to_string()),
        _ => bail!("not logged in or the session expired: run `ferry login <server>`"),
    }
}

/// Changes the password; for the caller's own account the config's session, which the change
/// revokes, is replaced by a new login with the new password (as argocd does).
async fn update_password(session: &Session, args: PasswordArgs) -> anyhow::Result<()> {
    let api = &session.api;
    let me = account_or_own(api, None).await?;
    let target = args.account.unwrap_or_else(|| me.clone());
    let current = match args.current_password {
        Some(password) => password,
        None => prompt_secret("Current password: ")?,
    };
    let new = match args.new_password {
        Some(password) => password,
        None => {
            let first = prompt_secret("New password: ")?;
            if prompt_secret("Confirm new password: ")? != first {
                bail!("the passwords do not match");
            }
            first
        }
    };
    api.call::<Value>(
        Method::PUT,
        "/api/v1/account/password",
        &[],
        Some(&json!({"currentPassword": current, "newPassword": new, "name": target})),
    )
    .await
    .with_context(|| format!("updating the password of account {target}"))?;
    println!("Password updated");
    if target == me
        && let Some(context) = &session.context
    {
        let token = login_again(api, &me, &new).await?;
        let mut config = Config::load(&session.config_path)?;
        config.set_token(context, token)?;
        config.save(&session.config_path)?;
        println!("Context '{context}' updated");
    }
    Ok(())
}

/// A login with a password just set. A server may take a moment to see it (ferry's reads its
/// settings through a watch), so a refusal is retried for a few seconds.
async fn login_again(api: &ApiClient, account: &str, password: &str) -> anyhow::Result<String> {
    let mut attempts = 0;
    loop {
        match session_token(api, account, password).await {
            Ok(token) => return Ok(token),
            Err(_) if attempts < LOGIN_RETRIES => {
                tokio::time::sleep(std::time::Duration::from_millis(250 << attempts)).await;
                attempts += 1;
            }
            Err(err) => return Err(err),
        }
    }
}

fn account_table(accounts: &[Account]) -> Table {
    let mut table = Table::new(&["NAME", "ENABLED", "CAPABILITIES"]);
    for account in accounts {
        table.row(vec![
            account.name.clone(),
            account.enabled.to_string(),
            account.capabilities.join(", "),
        ]);
    }
    table
}

fn account_text(account: &Account) -> String {
    let mut out = summary(&[
        ("Name", account.name.clone()),
        ("Enabled", account.enabled.to_string()),
        ("Capabilities", account.capabilities.join(", ")),
    ]);
    out.push_str("\nTokens:\n");
    if account.tokens.is_empty() {
        out.push_str("NONE\n");
        return out;
    }
    let mut table = Table::new(&["ID", "ISSUED AT", "EXPIRING AT"]);
    for token in &account.tokens {
        let expires = if token.expires_at == 0 {
            "never".to_string()
        } else {
            time_text(token.expires_at)
        };
        table.row(vec![token.id.clone(), time_text(token.issued_at), expires]);
    }
    out.push_str(&table.render());
    out
}

fn time_text(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| seconds.to_string())
}

fn user_info_text(info: &Value) -> String {
    let text = |key: &str| info[key].as_str().unwrap_or_default().to_string();
    let groups: Vec<&str> = info["groups"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    summary(&[
        ("Logged In", (info["loggedIn"] == true).to_string()),
        ("Username", or_none(&text("username"))),
        ("Issuer", or_none(&text("iss"))),
        ("Groups", groups.join(",")),
    ])
}

/// `90s`, `30m`, `12h`, `7d` or a sum like `1h30m`, in seconds.
fn parse_duration(text: &str) -> Result<u64, String> {
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => {
                return Err(format!(
                    "{text:?}: expected a duration such as 30m, 12h or 7d"
                ));
            }
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{text:?}: a number is missing before {c:?}"))?;
        total += n * unit;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!(
            "{text:?}: the number {number} has no unit (s, m, h, d)"
        ));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_argocds() {
        assert_eq!(parse_duration("0s"), Ok(0));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("7d"), Ok(604800));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn accounts_show_token_records_never_tokens() {
        let account: Account = serde_json::from_value(json!({
            "name": "ci", "enabled": true, "capabilities": ["apiKey"],
            "tokens": [{"id": "t1", "issuedAt": 1_700_000_000, "expiresAt": 0}]
        }))
        .unwrap();
        let text = account_text(&account);
        assert!(text.contains("Capabilities:  apiKey\n"), "{text}");
        assert!(text.contains("t1  2023-11-14T22:13:20Z  never"), "{text}");
        let table = account_table(&[account]).render();
        assert_eq!(
            table,
            "NAME  ENABLED  CAPABILITIES\nci    true     apiKey\n"
        );
    }
}
