//! Helm charts from a real chart repository (`index.yaml` and archives made by `helm package`
//! and `helm repo index`, served over HTTP) pulled by the real `helm`, as Argo CD's repo server
//! does: exact versions and constraints resolved from the index, basic auth with the
//! credentials of an Argo CD repository Secret or credential template, `passCredentials`, TLS,
//! errors that say what went wrong without the password, and the render cache.

mod common;

use common::charts::*;
use common::*;
use ferry_git::{Credentials, RepoCredential};
use ferry_testkit::chart_repo::{ChartRepo, ChartRepoOptions};

/// A repository holding `web` at each of `versions`.
fn repo_with(options: ChartRepoOptions<'_>, versions: &[&str]) -> ChartRepo {
    let repo = ChartRepo::start(options).unwrap();
    for version in versions {
        let dir = chart_dir(version, "hello");
        repo.add_chart(&dir.path().join("web")).unwrap();
    }
    repo
}

fn private(versions: &[&str]) -> ChartRepo {
    repo_with(
        ChartRepoOptions {
            auth: Some((USER, PASSWORD)),
            ..Default::default()
        },
        versions,
    )
}

/// A renderer whose repository Secrets give `credential` for `url`.
fn harness_for(url: &str, credential: RepoCredential) -> Harness {
    harness_with(vec![], Credentials::new().with_repo(url, credential))
}

/// Argo CD's repository Secret for a Helm repository: `type: helm` and the repository's URL.
fn repository_secret(url: &str, password: &str) -> String {
    format!(
        r#"
metadata:
  name: charts
  labels: {{argocd.argoproj.io/secret-type: repository}}
stringData:
  url: {url}
  type: helm
  username: {USER}
  password: {password}
"#
    )
}

#[tokio::test]
async fn an_anonymous_repository_serves_exact_versions_and_constraints() {
    let repo = repo_with(
        ChartRepoOptions::default(),
        &["1.0.0", "1.2.0", "1.3.0-rc.1", "2.0.0"],
    );
    let h = harness(vec![]);
    let url = repo.url();

    let rendered = render(&h, &chart_source(&url, "web", "1.0.0"))
        .await
        .unwrap();
    assert_eq!(rendered.objects, helm_template("1.0.0", "hello"));
    assert_eq!(rendered.sources[0].revision, "1.0.0");
    assert_eq!(rendered.sources[0].repo_url, url);

    for (constraint, resolved) in [("1.*", "1.2.0"), (">=1.0.0 <2.0.0", "1.2.0"), ("", "2.0.0")] {
        let rendered = render(&h, &chart_source(&url, "web", constraint))
            .await
            .unwrap();
        assert_eq!(rendered.sources[0].revision, resolved, "{constraint:?}");
        assert_eq!(
            rendered.objects[0]["metadata"]["labels"]["chart-version"], resolved,
            "{constraint:?}"
        );
    }

    for (chart, version, reason) in [
        ("web", "9.9.9", "chart web version 9.9.9 not found"),
        ("web", "3.*", "no version of chart web matches 3.*"),
        ("nope", "1.0.0", "chart nope version 1.0.0 not found"),
    ] {
        let err = render(&h, &chart_source(&url, chart, version))
            .await
            .unwrap_err();
        let expected = format!("{url} chart {chart}: Helm repository: {reason} (helm pull: ");
        assert!(err.starts_with(&expected), "{err}");
    }
}

/// The credentials of the repository Secret reach helm through `helm repo add` in the render's
/// private helm home; constraints still resolve, from the index helm downloaded with them.
#[tokio::test]
async fn a_repository_with_basic_auth_takes_the_repository_secrets_credentials() {
    let repo = private(&["1.0.0", "1.1.0", "2.0.0"]);
    let url = repo.url();
    let h = harness_for(&url, secret_credential(&repository_secret(&url, PASSWORD)));
    let rendered = render(&h, &chart_source(&url, "web", "1.0.0"))
        .await
        .unwrap();
    assert_eq!(config_data(&rendered)["greeting"], "hello");
    let rendered = render(&h, &chart_source(&url, "web", "1.*")).await.unwrap();
    assert_eq!(rendered.sources[0].revision, "1.1.0");
    let err = render(&h, &chart_source(&url, "web", "3.*"))
        .await
        .unwrap_err();
    assert!(
        err.starts_with(&format!(
            "{url} chart web: Helm repository: no version of chart web matches 3.* (helm pull: "
        )),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_clear_errors_without_the_password() {
    let repo = private(&["1.0.0"]);
    let url = repo.url();
    let source = chart_source(&url, "web", "1.0.0");

    let err = render(&harness(vec![]), &source).await.unwrap_err();
    assert!(
        err.starts_with(&format!(
            "{url} chart web: Helm repository: authentication required: no repository Secret \
             with a username and password matches {url} (helm pull: "
        )),
        "{err}"
    );
    assert!(err.contains("401 Unauthorized"), "{err}");

    let wrong = "not-the-Pa55word";
    let h = harness_for(&url, secret_credential(&repository_secret(&url, wrong)));
    let err = render(&h, &source).await.unwrap_err();
    assert!(
        err.starts_with(&format!(
            "{url} chart web: Helm repository: authentication failed: the Helm repository \
             refused the credentials of the repository Secret (helm repo add: "
        )),
        "{err}"
    );
    assert!(!err.contains(wrong) && !err.contains(PASSWORD), "{err}");
}

/// `insecure: "true"` in the repository Secret skips verifying a self-signed certificate, for
/// the index (`helm repo add`) and the archive (`helm pull`) alike.
#[tokio::test]
async fn an_https_repository_with_a_self_signed_certificate_needs_insecure() {
    let repo = repo_with(
        ChartRepoOptions {
            auth: Some((USER, PASSWORD)),
            tls: true,
            ..Default::default()
        },
        &["1.0.0"],
    );
    let url = repo.url();
    assert!(url.starts_with("https://"), "{url}");
    let source = chart_source(&url, "web", "1.0.0");
    let secret = repository_secret(&url, PASSWORD);

    let h = harness_for(&url, secret_credential(&secret));
    let err = render(&h, &source).await.unwrap_err();
    assert!(
        err.starts_with(&format!(
            "{url} chart web: Helm repository: its TLS certificate is not trusted (trust its CA \
             for the host in argocd-tls-certs-cm, or skip verification with `insecure: \"true\"` \
             in the repository Secret) (helm repo add: "
        )),
        "{err}"
    );
    let h = harness_for(
        &url,
        secret_credential(&format!("{secret}  insecure: \"true\"\n")),
    );
    let rendered = render(&h, &source).await.unwrap();
    assert_eq!(config_data(&rendered)["greeting"], "hello");

    // Or its certificate trusted for 127.0.0.1 in argocd-tls-certs-cm: helm gets --ca-file.
    let data = [(
        "127.0.0.1".to_string(),
        repo.certificate().unwrap().to_string(),
    )]
    .into();
    let trusted = Credentials::new()
        .with_repo(&url, secret_credential(&secret))
        .with_tls_certs(ferry_git::TlsCerts::parse(&data).0);
    let rendered = render(&harness_with(vec![], trusted), &source)
        .await
        .unwrap();
    assert_eq!(config_data(&rendered)["greeting"], "hello");
}

/// A `repo-creds` Secret lends its credentials to every repository its URL is a prefix of.
#[tokio::test]
async fn a_credential_template_for_a_url_prefix_serves_the_repository() {
    let repo = private(&["1.0.0"]);
    let url = repo.url();
    let prefix = url.trim_end_matches("charts");
    let template = secret_credential(&format!(
        r#"
metadata:
  name: all-charts
  labels: {{argocd.argoproj.io/secret-type: repo-creds}}
stringData:
  url: {prefix}
  type: helm
  username: {USER}
  password: {PASSWORD}
"#
    ));
    let h = harness_with(vec![], Credentials::new().with_template(prefix, template));
    let rendered = render(&h, &chart_source(&url, "web", "1.0.0"))
        .await
        .unwrap();
    assert_eq!(config_data(&rendered)["greeting"], "hello");
}

/// An index may point to archives on another host; helm sends them the credentials only with
/// the source's `helm.passCredentials`, as in Argo CD. `localhost` is the same server under
/// another name.
#[tokio::test]
async fn pass_credentials_sends_them_to_the_host_of_the_archives() {
    let repo = repo_with(
        ChartRepoOptions {
            auth: Some((USER, PASSWORD)),
            chart_host: Some("localhost"),
            ..Default::default()
        },
        &["1.0.0"],
    );
    let url = repo.url();
    let h = harness_for(&url, RepoCredential::basic(USER, PASSWORD));
    let source = chart_source(&url, "web", "1.0.0");

    let err = render(&h, &source).await.unwrap_err();
    assert!(
        err.starts_with(&format!(
            "{url} chart web: Helm repository: authentication failed fetching chart web version \
             1.0.0: its archive is on another host than the repository, and helm sends the \
             credentials there only with `passCredentials: true` (helm pull: "
        )),
        "{err}"
    );
    let rendered = render(&h, &format!("{source}  helm: {{passCredentials: true}}\n"))
        .await
        .unwrap();
    assert_eq!(config_data(&rendered)["greeting"], "hello");
}

/// A render of an exact chart version is cached under repository URL, chart and version:
/// asking again runs no tool; another version or repository is rendered on its own.
#[tokio::test]
async fn the_render_cache_keys_on_repository_chart_and_version() {
    let first = private(&["1.0.0", "1.1.0"]);
    let second = repo_with(ChartRepoOptions::default(), &[]);
    let other = chart_dir("1.0.0", "from-the-second-repository");
    second.add_chart(&other.path().join("web")).unwrap();
    let h = harness_for(&first.url(), RepoCredential::basic(USER, PASSWORD));
    let at = |repo: &ChartRepo, version: &str| chart_source(&repo.url(), "web", version);

    let one = render(&h, &at(&first, "1.0.0")).await.unwrap();
    let runs = h.renderer.stats().tool_runs;
    assert_eq!(render(&h, &at(&first, "1.0.0")).await.unwrap(), one);
    assert_eq!(h.renderer.stats().tool_runs, runs, "a hit runs no tool");
    assert_eq!(h.renderer.stats().cache.hits, 1);

    let newer = render(&h, &at(&first, "1.1.0")).await.unwrap();
    assert_eq!(newer.sources[0].revision, "1.1.0");
    let elsewhere = render(&h, &at(&second, "1.0.0")).await.unwrap();
    assert_eq!(
        config_data(&elsewhere)["greeting"],
        "from-the-second-repository"
    );
    let stats = h.renderer.stats().cache;
    assert_eq!((stats.hits, stats.misses, stats.entries), (1, 3, 3));
}

/// The repository Secret's `tlsClientCertData` and `tlsClientCertKey` reach helm as
/// `--cert-file` and `--key-file`, for a repository that accepts clients its CA signed only:
/// anonymous pulls (`helm pull --repo`) and pulls with credentials (`helm repo add`) alike.
#[tokio::test]
async fn a_repository_requiring_client_certificates_gets_the_secrets() {
    let ca = ferry_testkit::TestCa::generate("company CA").unwrap();
    let repo = repo_with(
        ChartRepoOptions {
            client_ca: Some(&ca),
            ..Default::default()
        },
        &["1.0.0"],
    );
    let url = repo.url();
    let source = chart_source(&url, "web", "1.0.0");
    let trusted = [("127.0.0.1".to_string(), ca.certificate().to_string())].into();
    let render_with = |secret: String| {
        let credentials = Credentials::new()
            .with_repo(&url, secret_credential(&secret))
            .with_tls_certs(ferry_git::TlsCerts::parse(&trusted).0);
        let source = source.clone();
        async move { render(&harness_with(vec![], credentials), &source).await }
    };
    let client = ca.client("ferry").unwrap();
    let indented = |pem: &str| pem.trim_end().replace('\n', "\n    ");
    let with_cert = format!(
        "metadata:\n  name: charts\n  labels: {{argocd.argoproj.io/secret-type: repository}}\n\
         stringData:\n  url: {url}\n  type: helm\n  tlsClientCertData: |\n    {}\n  \
         tlsClientCertKey: |\n    {}\n",
        indented(&client.cert),
        indented(&client.key)
    );

    let rendered = render_with(with_cert.clone()).await.unwrap();
    assert_eq!(config_data(&rendered)["greeting"], "hello");
    let with_auth = format!("{with_cert}  username: {USER}\n  password: {PASSWORD}\n");
    let rendered = render_with(with_auth).await.unwrap();
    assert_eq!(config_data(&rendered)["greeting"], "hello");

    // Without the certificate the server closes the handshake: an error naming the chart.
    let without = with_cert
        .split("  tlsClientCertData")
        .next()
        .unwrap()
        .to_string();
    let err = render_with(without).await.unwrap_err();
    assert!(err.starts_with(&format!("{url} chart web: ")), "{err}");
}

/// The repository Secret's `proxy` carries helm's requests, except to the hosts `noProxy`
/// names. The repository listens beyond loopback: Go never proxies loopback requests.
#[tokio::test]
async fn a_repository_secrets_proxy_carries_helms_requests() {
    let repo = repo_with(
        ChartRepoOptions {
            beyond_loopback: true,
            ..Default::default()
        },
        &["1.0.0"],
    );
    let proxy = ferry_testkit::http_proxy::HttpProxy::start().unwrap();
    let url = repo.url();
    let host = url["http://".len()..]
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let source = chart_source(&url, "web", "1.0.0");
    let through = |proxy: &str, no_proxy: Option<&str>| RepoCredential {
        proxy: Some(proxy.to_owned()),
        no_proxy: no_proxy.map(str::to_owned),
        ..RepoCredential::default()
    };

    let rendered = render(&harness_for(&url, through(&proxy.url(), None)), &source)
        .await
        .unwrap();
    assert_eq!(config_data(&rendered)["greeting"], "hello");
    let proxied = proxy.requests();
    assert!(
        proxied
            .iter()
            .any(|r| r.starts_with(&format!("GET {url}/index.yaml"))),
        "{proxied:?}"
    );

    // noProxy names the host: straight there.
    render(
        &harness_for(&url, through(&proxy.url(), Some(&host))),
        &source,
    )
    .await
    .unwrap();
    assert_eq!(proxy.requests(), proxied);

    // A proxy that is not there: the pull fails rather than going around it.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let err = render(&harness_for(&url, through(&dead_url, None)), &source)
        .await
        .unwrap_err();
    assert!(err.starts_with(&format!("{url} chart web: ")), "{err}");
}
