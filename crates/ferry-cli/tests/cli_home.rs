//! Tests never run `ferry` with the machine user's own settings: a user logged in to a server
//! (`ferry login`, whose context makes every command go there) and with a kubeconfig of their
//! own would otherwise send the tests' commands to that server or cluster. ferry-testkit's
//! `CliHome` runs them in a home of their own.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::Result;
use ferry_testkit::cli::CliHome;
use ferry_testkit::kube::TestContext;

/// Where nothing listens: commands sent there fail.
const GONE: &str = "127.0.0.1:9";

/// A user's home after `ferry login` to a server that has since gone away, with a kubeconfig
/// for a cluster that is gone too, and the variables such a user may have set.
fn logged_in_user(home: &Path, command: &mut Command) {
    let config = home.join(".config/ferry/config");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            "contexts:\n- {{name: {GONE}, server: {GONE}, user: {GONE}}}\ncurrent-context: {GONE}\n\
             servers:\n- {{server: {GONE}, plain-text: true}}\nusers:\n- {{name: {GONE}, auth-token: bogus}}\n"
        ),
    )
    .unwrap();
    let kubeconfig = home.join(".kube/config");
    std::fs::create_dir_all(kubeconfig.parent().unwrap()).unwrap();
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: 'https://{GONE}'}}}}]\n\
             users: [{{name: u, user: {{token: bogus}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u}}}}]\n\
             current-context: c\n"
        ),
    )
    .unwrap();
    command
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("FERRY_CONFIG")
        .env("KUBECONFIG", &kubeconfig)
        .env("FERRY_NAMESPACE", "elsewhere");
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn a_logged_in_users_settings_do_not_reach_the_tests() -> Result<()> {
    let ctx = TestContext::new().await?;
    let user_home = tempfile::tempdir()?;

    // As the user's shell runs it: the command goes to the server they logged in to.
    let mut as_user = Command::new(env!("CARGO_BIN_EXE_ferry"));
    logged_in_user(user_home.path(), &mut as_user);
    let out = as_user.args(["proj", "list"]).output()?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(GONE), "{}", text(&out));

    // As the tests run it, from the same environment: the sandbox's namespace answers.
    let home = CliHome::new()?;
    let mut as_test = Command::new(env!("CARGO_BIN_EXE_ferry"));
    logged_in_user(user_home.path(), &mut as_test);
    let out = home
        .isolate(&mut as_test)
        .args(["proj", "list", "-N", ctx.namespace(), "--kubeconfig"])
        .arg(ctx.kubeconfig())
        .output()?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(GONE), "{}", text(&out));
    Ok(())
}
