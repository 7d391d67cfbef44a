//! Remotes over git://, smart HTTP and ssh, served by real servers on loopback; credentials,
//! host key checking, and the errors for each failure.

mod common;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{cache, history};
use ferry_git::{CheckoutOptions, ClientCert, Credentials, GitError, RepoCredential, TlsCerts};
use ferry_testkit::TestCa;
use ferry_testkit::git::{GitDaemon, GitRepo, HttpServer, SshKey, SshServer};
use ferry_testkit::github_app::GithubAppApi;
use ferry_testkit::http_proxy::HttpProxy;

#[tokio::test]
async fn git_daemon() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let daemon = GitDaemon::start(&repo)?;
    let (cache, _root) = cache(Credentials::new());
    let resolved = cache.resolve(&daemon.url(), "v1.2.0").await?;
    assert_eq!(resolved.sha, h.second);
    let checkout = cache
        .checkout(&daemon.url(), &h.dev, &CheckoutOptions::default())
        .await?;
    assert_eq!(
        std::fs::read_to_string(checkout.path().join("app/cm.yaml"))?,
        "version: dev\n"
    );
    Ok(())
}

#[tokio::test]
async fn http_with_basic_auth() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let http = HttpServer::start(&repo, Some(("alice", "s3cret")))?;
    let url = http.url();

    let good = Credentials::new().with_repo(&url, RepoCredential::basic("alice", "s3cret"));
    let (cache, _root) = cache(good);
    let resolved = cache.resolve(&url, "main").await?;
    assert_eq!(resolved.sha, h.third);
    // resolve fetched the commit, so checking it out needs no request.
    let requests = http.requests();
    let checkout = cache
        .checkout(&url, &resolved.sha, &CheckoutOptions::default())
        .await?;
    assert_eq!(http.requests(), requests);
    assert_eq!(
        std::fs::read_to_string(checkout.path().join("app/cm.yaml"))?,
        "version: 3\n"
    );

    let bad = Credentials::new().with_repo(&url, RepoCredential::basic("alice", "wrong-pass"));
    let (cache, _root) = common::cache(bad);
    let err = cache.resolve(&url, "main").await.unwrap_err();
    assert!(matches!(err, GitError::AuthFailed { .. }), "{err}");
    assert!(err.to_string().contains(&url), "{err}");
    assert!(!format!("{err} {err:?}").contains("wrong-pass"), "{err}");

    let (cache, _root) = common::cache(Credentials::new());
    let err = cache.resolve(&url, "main").await.unwrap_err();
    assert!(matches!(err, GitError::AuthFailed { .. }), "{err}");
    assert!(err.to_string().contains("none are configured"), "{err}");
    Ok(())
}

#[tokio::test]
async fn https_trusts_the_certificates_configured_for_its_host_only() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let https = HttpServer::start_tls(&repo, Some(("alice", "s3cret")))?;
    let url = https.url();
    let certificate = https.certificate().expect("an https server").to_string();
    let basic = RepoCredential::basic("alice", "s3cret");

    // The self-signed certificate is no system CA's: refused, and the credentials never sent.
    let (cache, _root) = common::cache(Credentials::new().with_repo(&url, basic.clone()));
    let err = cache.resolve(&url, "main").await.unwrap_err();
    assert!(!matches!(err, GitError::AuthFailed { .. }), "{err}");
    assert_eq!(https.requests(), 0, "nothing reached the server: {err}");

    // argocd-tls-certs-cm trusting it for 127.0.0.1 (the host of the URL).
    let trusted = |host: &str| -> anyhow::Result<_> {
        let data = [(host.to_string(), certificate.clone())].into();
        Ok(Credentials::new()
            .with_repo(&url, basic.clone())
            .with_tls_certs(ferry_git::TlsCerts::parse(&data).0))
    };
    let (cache, _root) = common::cache(trusted("127.0.0.1")?);
    assert_eq!(cache.resolve(&url, "main").await?.sha, h.third);

    // Configured for another host only: not trusted here.
    let (cache, _root) = common::cache(trusted("git.example.com")?);
    let err = cache.resolve(&url, "main").await.unwrap_err();
    assert!(!matches!(err, GitError::AuthFailed { .. }), "{err}");

    // Another server's certificate configured for this host: refused with the reason.
    let other = HttpServer::start_tls(&repo, None)?;
    let data = [(
        "127.0.0.1".to_string(),
        other.certificate().unwrap().to_string(),
    )]
    .into();
    let wrong = Credentials::new()
        .with_repo(&url, basic.clone())
        .with_tls_certs(ferry_git::TlsCerts::parse(&data).0);
    let (cache, _root) = common::cache(wrong);
    let err = cache.resolve(&url, "main").await.unwrap_err();
    assert!(
        matches!(&err, GitError::CertificateRejected { message, .. } if message.contains("not signed by")),
        "{err}"
    );
    Ok(())
}

/// A server requiring TLS client certificates, its certificate signed by a CA made here:
/// ferry trusts the CA from argocd-tls-certs-cm (per host) and presents the client certificate
/// of the repository Secret (`tlsClientCertData`, `tlsClientCertKey`).
#[tokio::test]
async fn https_with_a_client_certificate_and_a_custom_ca() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let ca = TestCa::generate("ferry test CA")?;
    let https = HttpServer::start_mtls(&repo, Some(("alice", "s3cret")), &ca)?;
    let url = https.url();
    let basic = RepoCredential::basic("alice", "s3cret");
    let client_cert = |issued: ferry_testkit::Issued| RepoCredential {
        tls_client_cert: Some(ClientCert {
            cert_pem: issued.cert,
            key_pem: issued.key,
        }),
        ..basic.clone()
    };
    let with_cert = client_cert(ca.client("ferry")?);
    let ca_data = [("127.0.0.1".to_string(), ca.certificate().to_string())].into();
    let resolve = |credential: RepoCredential, trust_ca: bool| {
        let mut credentials = Credentials::new().with_repo(&url, credential);
        if trust_ca {
            credentials = credentials.with_tls_certs(TlsCerts::parse(&ca_data).0);
        }
        let url = url.clone();
        async move {
            let (cache, root) = common::cache(credentials);
            let resolved = cache.resolve(&url, "main").await;
            (cache, root, resolved)
        }
    };

    let (cache, _root, resolved) = resolve(with_cert.clone(), true).await;
    let resolved = resolved?;
    assert_eq!(resolved.sha, h.third);
    let checkout = cache
        .checkout(&url, &h.second, &CheckoutOptions::default())
        .await?;
    assert_eq!(
        std::fs::read_to_string(checkout.path().join("app/cm.yaml"))?,
        "version: 2\n"
    );

    // Without a client certificate the server ends the handshake.
    let err = resolve(basic.clone(), true).await.2.unwrap_err();
    assert!(
        matches!(&err, GitError::Tls { message, .. } if message.contains("SSL error")),
        "{err}"
    );
    assert!(err.to_string().contains(&url), "{err}");
    assert!(err.to_string().contains("tlsClientCertData"), "{err}");
    // A certificate another CA signed is refused too.
    let stranger = client_cert(TestCa::generate("another CA")?.client("ferry")?);
    let err = resolve(stranger, true).await.2.unwrap_err();
    assert!(matches!(err, GitError::Tls { .. }), "{err}");
    assert!(err.to_string().contains(&url), "{err}");

    // Without the CA the server's certificate is not trusted; `insecure` skips that check.
    let err = resolve(with_cert.clone(), false).await.2.unwrap_err();
    assert!(
        matches!(&err, GitError::Tls { message, .. } if message.contains("UnknownIssuer")),
        "{err}"
    );
    assert_eq!(
        resolve(with_cert.clone().insecure(true), false)
            .await
            .2?
            .sha,
        h.third
    );

    // The client certificate does not replace the password.
    let wrong_password = RepoCredential {
        password: Some("wrong".into()),
        ..with_cert.clone()
    };
    let err = resolve(wrong_password, true).await.2.unwrap_err();
    assert!(matches!(err, GitError::AuthFailed { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains("wrong"), "{err}");
    Ok(())
}

/// A repository Secret's `proxy`: requests go through a real HTTP proxy (tinyproxy), CONNECT
/// for https and absolute-form requests for http, except to the hosts `noProxy` lists.
#[tokio::test]
async fn proxy_and_no_proxy() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let http = HttpServer::start(&repo, Some(("alice", "s3cret")))?;
    let https = HttpServer::start_tls(&repo, None)?;
    let proxy = HttpProxy::start()?;
    let through = |proxy: &str, no_proxy: Option<&str>| RepoCredential {
        proxy: Some(proxy.to_owned()),
        no_proxy: no_proxy.map(str::to_owned),
        ..RepoCredential::basic("alice", "s3cret")
    };
    let cert_data = [(
        "127.0.0.1".to_string(),
        https.certificate().unwrap().to_string(),
    )]
    .into();
    let resolve = |url: String, credential: RepoCredential| {
        let credentials = Credentials::new()
            .with_repo(&url, credential)
            .with_tls_certs(TlsCerts::parse(&cert_data).0);
        async move {
            let (cache, _root) = common::cache(credentials);
            cache.resolve(&url, "main").await
        }
    };

    // http: absolute-form requests through the proxy, basic auth included.
    let http_url = http.url();
    assert_eq!(
        resolve(http_url.clone(), through(&proxy.url(), None))
            .await?
            .sha,
        h.third
    );
    let requests = proxy.requests();
    let refs = format!("GET {http_url}/info/refs?service=git-upload-pack HTTP/1.1");
    assert!(requests.contains(&refs), "{requests:#?}");
    let pack = format!("POST {http_url}/git-upload-pack HTTP/1.1");
    assert!(requests.contains(&pack), "{requests:#?}");

    // https: a CONNECT tunnel, the server's certificate checked as without proxy.
    let https_url = https.url();
    assert_eq!(
        resolve(https_url.clone(), through(&proxy.url(), None))
            .await?
            .sha,
        h.third
    );
    let authority = https_url
        .trim_start_matches("https://")
        .trim_end_matches("/repo.git");
    let connect = format!("CONNECT {authority} HTTP/1.1");
    assert!(
        proxy.requests().contains(&connect),
        "{:#?}",
        proxy.requests()
    );

    // noProxy: straight to the server, the proxy sees nothing.
    let seen = proxy.requests().len();
    let served = http.requests();
    let direct = through(&proxy.url(), Some(".example.com, 127.0.0.1"));
    assert_eq!(resolve(http_url.clone(), direct).await?.sha, h.third);
    assert_eq!(proxy.requests().len(), seen);
    assert!(http.requests() > served);

    // A proxy that is not there: an error naming the repository; noProxy still bypasses it.
    let gone = "http://127.0.0.1:1";
    let err = resolve(http_url.clone(), through(gone, None))
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&http_url), "{err}");
    let bypass = through(gone, Some("127.0.0.0/8"));
    assert_eq!(resolve(http_url, bypass).await?.sha, h.third);
    Ok(())
}

/// A GitHub App credential: ferry signs a JWT with the app's key, exchanges it for an
/// installation token at the (GitHub Enterprise) API, which checks the signature with the
/// app's public key, and clones with the token as the password of `x-access-token`. The
/// token is reused until a minute before it expires.
#[tokio::test]
async fn github_app_installation_tokens() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let token = "ghs_installation_token";
    let http = HttpServer::start(&repo, Some(("x-access-token", token)))?;
    let url = http.url();
    let app_credential = |api: &GithubAppApi, app_id, installation_id| RepoCredential {
        github_app: Some(ferry_git::GithubApp {
            app_id,
            installation_id,
            private_key: api.private_key().to_owned(),
            enterprise_base_url: Some(api.url()),
        }),
        ..RepoCredential::default()
    };
    let resolve = |credential: RepoCredential| {
        let url = url.clone();
        async move {
            let (cache, _root) = common::cache(Credentials::new().with_repo(&url, credential));
            cache.resolve(&url, "main").await
        }
    };

    let api = GithubAppApi::start(41, 7, token, Duration::from_secs(3600))?;
    assert_eq!(resolve(app_credential(&api, 41, 7)).await?.sha, h.third);
    assert_eq!(api.exchanges(), 1);
    // Another cache, same app: the token is still valid, no new exchange.
    assert_eq!(resolve(app_credential(&api, 41, 7)).await?.sha, h.third);
    assert_eq!(api.exchanges(), 1);

    // A token about to expire is replaced before each use.
    let short = GithubAppApi::start(42, 7, token, Duration::from_secs(30))?;
    resolve(app_credential(&short, 42, 7)).await?;
    let first = short.exchanges();
    resolve(app_credential(&short, 42, 7)).await?;
    assert!(first >= 1 && short.exchanges() > first);

    // The API refuses a JWT naming another app, or signed with another key.
    let err = resolve(app_credential(&api, 99, 7)).await.unwrap_err();
    assert!(
        matches!(&err, GitError::AuthFailed { message, .. } if message.contains("401")),
        "{err}"
    );
    assert!(err.to_string().contains(&url), "{err}");
    let stranger = GithubAppApi::start(41, 7, token, Duration::from_secs(3600))?;
    let forged = RepoCredential {
        github_app: Some(ferry_git::GithubApp {
            private_key: stranger.private_key().to_owned(),
            ..app_credential(&api, 41, 7).github_app.unwrap()
        }),
        ..RepoCredential::default()
    };
    let err = resolve(forged).await.unwrap_err();
    assert!(matches!(err, GitError::AuthFailed { .. }), "{err}");
    assert!(!format!("{err:?}").contains("PRIVATE KEY"), "{err:?}");
    // An installation the app does not have.
    let err = resolve(app_credential(&api, 41, 8)).await.unwrap_err();
    assert!(
        matches!(&err, GitError::AuthFailed { message, .. } if message.contains("404")),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn http_credentials_from_a_template_and_from_the_url() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let http = HttpServer::start(&repo, Some(("alice", "s3cret")))?;
    let url = http.url();
    let host_prefix = url.trim_end_matches("/repo.git");

    let creds = Credentials::new()
        .with_template(
            "http://127.0.0.1",
            RepoCredential::basic("alice", "too-general"),
        )
        .with_template(host_prefix, RepoCredential::basic("alice", "s3cret"));
    let (cache, _root) = cache(creds);
    assert_eq!(cache.resolve(&url, "dev").await?.sha, h.dev);

    // Userinfo in the URL works, and is scrubbed from errors.
    let (cache, _root) = common::cache(Credentials::new());
    let with_password = url.replace("http://", "http://alice:s3cret@");
    assert_eq!(cache.resolve(&with_password, "dev").await?.sha, h.dev);
    let wrong = url.replace("http://", "http://alice:hunter2@");
    let err = cache.resolve(&wrong, "dev").await.unwrap_err();
    assert!(matches!(err, GitError::AuthFailed { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn the_observer_sees_each_network_operation_without_passwords() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let http = HttpServer::start(&repo, Some(("alice", "s3cret")))?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let observer: ferry_git::RequestObserver = Arc::new(move |request| {
        sink.lock().unwrap().push((
            request.repo.to_string(),
            request.operation,
            request.succeeded,
        ));
    });
    let root = tempfile::tempdir()?;
    let cache = ferry_git::RepoCache::new(root.path(), Credentials::new()).with_observer(observer);
    let with_password = http.url().replace("http://", "http://alice:s3cret@");
    let shown = http.url().replace("http://", "http://alice:***@");

    assert_eq!(cache.resolve(&with_password, "main").await?.sha, h.third);
    // The commit is in the mirror now: a second resolve only lists the refs.
    assert_eq!(
        cache.clone().resolve(&with_password, "main").await?.sha,
        h.third
    );
    // A wrong password shows the same.
    let wrong = http.url().replace("http://", "http://alice:hunter2@");
    assert!(cache.resolve(&wrong, "main").await.is_err());
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (shown.clone(), "ls-remote", true),
            (shown.clone(), "fetch", true),
            (shown.clone(), "ls-remote", true),
            (shown, "ls-remote", false),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn http_with_a_token() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let http = HttpServer::start(&repo, Some((ferry_git::TOKEN_USERNAME, "tok-123")))?;
    let creds = Credentials::new().with_repo(&http.url(), RepoCredential::token("tok-123"));
    let (cache, _root) = cache(creds);
    assert_eq!(cache.resolve(&http.url(), "v2.0.0").await?.sha, h.third);
    Ok(())
}

#[tokio::test]
async fn http_without_auth_and_missing_repository() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let http = HttpServer::start(&repo, None)?;
    let (cache, _root) = cache(Credentials::new());
    assert_eq!(cache.resolve(&http.url(), "v1.0.0").await?.sha, h.first);
    let missing = http.url().replace("repo.git", "nope.git");
    let err = cache.resolve(&missing, "main").await.unwrap_err();
    assert!(matches!(err, GitError::Unreachable { .. }), "{err}");
    Ok(())
}

fn ssh_credentials(ssh: &SshServer, key: &str, known_hosts: &str) -> anyhow::Result<Credentials> {
    Ok(Credentials::new()
        .with_repo(&ssh.url(), RepoCredential::ssh_key(key))
        .with_known_hosts(known_hosts)?)
}

#[tokio::test]
async fn ssh_with_key_and_known_hosts() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    let h = history(&repo)?;
    let ssh = SshServer::start(&repo)?;
    let url = ssh.url();

    let creds = ssh_credentials(&ssh, ssh.client_private_key(), &ssh.known_hosts_line())?;
    let (cache, _root) = cache(creds);
    let resolved = cache.resolve(&url, "~1.2").await?;
    assert_eq!(resolved.sha, h.second);
    let checkout = cache
        .checkout(&url, &h.first, &CheckoutOptions::default())
        .await?;
    assert_eq!(
        std::fs::read_to_string(checkout.path().join("app/cm.yaml"))?,
        "version: 1\n"
    );
    Ok(())
}

#[tokio::test]
async fn ssh_rejects_unknown_and_mismatched_host_keys() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    history(&repo)?;
    let ssh = SshServer::start(&repo)?;
    let url = ssh.url();
    let key = ssh.client_private_key();

    // No entry for this host at all.
    let other_host = format!("[127.0.0.1]:{} {}", ssh.port() + 1, ssh.host_public_key());
    let (cache, _root) = cache(ssh_credentials(&ssh, key, &other_host)?);
    let err = cache.resolve(&url, "main").await.unwrap_err();
    let rejected = matches!(&err, GitError::HostKeyRejected { message, .. }
        if message.contains("no known_hosts entry"));
    assert!(rejected, "{err}");

    // An entry with another key: someone else answers on that address.
    let impostor = format!("[127.0.0.1]:{} {}", ssh.port(), SshKey::generate()?.public);
    let (cache, _root) = common::cache(ssh_credentials(&ssh, key, &impostor)?);
    let err = cache.resolve(&url, "main").await.unwrap_err();
    assert!(
        matches!(&err, GitError::HostKeyRejected { message, .. } if message.contains("differs")),
        "{err}"
    );
    let err = cache.ls_remote(&url).await.unwrap_err();
    assert!(matches!(err, GitError::HostKeyRejected { .. }), "{err}");

    // insecure skips the check.
    let creds = Credentials::new().with_repo(&url, RepoCredential::ssh_key(key).insecure(true));
    let (cache, _root) = common::cache(creds);
    assert!(!cache.ls_remote(&url).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn ssh_rejects_a_key_the_server_does_not_know() -> anyhow::Result<()> {
    let repo = GitRepo::new()?;
    history(&repo)?;
    let ssh = SshServer::start(&repo)?;
    let stranger = SshKey::generate()?;
    let (cache, _root) = cache(ssh_credentials(
        &ssh,
        &stranger.private,
        &ssh.known_hosts_line(),
    )?);
    let err = cache.resolve(&ssh.url(), "main").await.unwrap_err();
    assert!(matches!(err, GitError::AuthFailed { .. }), "{err}");
    assert!(!format!("{err:?}").contains("PRIVATE KEY"), "{err:?}");

    let (cache, _root) =
        common::cache(ssh_credentials(&ssh, "not a key", &ssh.known_hosts_line())?);
    let err = cache.resolve(&ssh.url(), "main").await.unwrap_err();
    assert!(matches!(err, GitError::AuthFailed { .. }), "{err}");
    Ok(())
}

/// A loopback port with nothing listening.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn unreachable_repositories() -> anyhow::Result<()> {
    let (cache, _root) = cache(Credentials::new());
    let port = closed_port();
    for url in [
        format!("git://127.0.0.1:{port}/repo.git"),
        format!("http://127.0.0.1:{port}/repo.git"),
        format!("ssh://git@127.0.0.1:{port}/repo.git"),
        "file:///nonexistent/ferry/repo.git".to_owned(),
    ] {
        let err = cache.resolve(&url, "main").await.unwrap_err();
        assert!(
            matches!(&err, GitError::Unreachable { url: u, .. } if *u == url),
            "{url}: {err}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_silent_server_times_out() -> anyhow::Result<()> {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let (cache, _root) = cache(Credentials::new());
    let cache = cache.with_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let err = cache
        .ls_remote(&format!("git://127.0.0.1:{port}/repo.git"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            GitError::Timeout {
                operation: "ls-remote",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Closing the listener's connections lets the abandoned libgit2 call end.
    drop(listener);
    Ok(())
}
