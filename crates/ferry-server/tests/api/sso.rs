//! Single sign-on against a real OpenID provider: Dex (built by `scripts/toolchain`) on loopback,
//! logged into through `/auth/login` and `/auth/callback` by a small browser (redirects followed
//! by hand, cookies kept per origin), with ferry-server's RBAC applied to the groups Dex gives.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use ferry_auth::oidc::Provider;
use ferry_testkit::dex::{Dex, DexClient, MOCK_GROUPS, MOCK_USER_ID};
use ferry_testkit::kube::TestContext;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Patch, PatchParams, PostParams};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use url::Url;

use crate::harness::{self, Server, create_app, install_crds};

const CLIENT_SECRET: &str = "dex-client-s3cret-for-ferry";
const OTHER_SECRET: &str = "other-app-s3cret";
/// Where a CLI login's browser is sent back to; nothing listens there in these tests.
const CLI_REDIRECT: &str = "http://localhost:8085/auth/callback";
const OTHER_REDIRECT: &str = "http://127.0.0.1:9/callback";

#[tokio::test]
async fn sso_users_log_in_through_dex_and_get_the_roles_of_their_groups() -> Result<()> {
    let ctx = TestContext::new().await?;
    install_crds(ctx.client()).await?;
    create_app(&ctx, "guestbook", "default").await?;
    let server = Server::start(&ctx).await?;
    let base = server.url();
    let dex = Dex::start(&[
        DexClient::confidential("ferry", CLIENT_SECRET, &[&format!("{base}/auth/callback")]),
        DexClient::public("ferry-cli", &[CLI_REDIRECT]),
        DexClient::confidential("other-app", OTHER_SECRET, &[OTHER_REDIRECT]),
    ])?;
    let issuer = dex.issuer();

    // The client secret is a reference to a labelled Secret that does not exist yet: SSO is
    // unavailable and says why, password logins are not affected.
    let oidc_config = format!(
        "name: Dex\nissuer: {issuer}\nclientID: ferry\nclientSecret: $ferry-oidc:clientSecret\n\
         cliClientID: ferry-cli\nrequestedScopes: [openid, profile, email, groups, federated:id]\n\
         logoutURL: {issuer}/logout?id_token_hint={{{{token}}}}&back={{{{logoutRedirectURL}}}}\n"
    );
    apply_config_map(
        &ctx,
        "argocd-cm",
        &[("url", &base), ("oidc.config", &oidc_config)],
    )
    .await?;
    apply_config_map(
        &ctx,
        "argocd-rbac-cm",
        &[("policy.csv", "g, authors, role:readonly")],
    )
    .await?;
    let (server_ref, base_ref, issuer_ref) = (&server, base.as_str(), issuer.as_str());
    let refused = wait_for(|| async move {
        let (status, body) = Browser::new()
            .get(&format!("{base_ref}/auth/login"))
            .await?;
        Ok((status == StatusCode::SERVICE_UNAVAILABLE).then_some(body))
    })
    .await?;
    assert!(
        refused.contains("clientSecret: $ferry-oidc:clientSecret names Secret \\\"ferry-oidc\\\""),
        "{refused}"
    );
    let admin = server
        .login("admin", &harness::admin_password(&ctx).await?)
        .await?;
    assert_eq!(admin.status, 200);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {
            "name": "ferry-oidc",
            "labels": {"app.kubernetes.io/part-of": "argocd"},
        },
        "stringData": {"clientSecret": CLIENT_SECRET},
    }))?;
    ctx.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    wait_for(|| async move {
        let settings = server_ref.get("/api/v1/settings", None).await?;
        Ok((settings.body["oidcConfig"]["issuer"] == issuer_ref).then_some(()))
    })
    .await?;

    // Anyone may read how to log in; never the client secret.
    let settings = server.get("/api/v1/settings", None).await?.body;
    assert_eq!(settings["url"], base);
    assert_eq!(
        settings["oidcConfig"],
        json!({
            "name": "Dex", "issuer": issuer, "clientID": "ferry", "cliClientID": "ferry-cli",
            "scopes": ["openid", "profile", "email", "groups", "federated:id"],
            "enablePKCEAuthentication": true,
        })
    );
    assert_eq!(settings["execEnabled"], false);
    assert!(settings.get("controllerNamespace").is_none());
    assert!(!settings.to_string().contains(CLIENT_SECRET));

    // Only this server is a place to come back to.
    for evil in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
    ] {
        let (status, body) = Browser::new()
            .get(&format!("{base}/auth/login?return_url={}", encode(evil)))
            .await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{evil}: {body}");
        assert!(body.contains("Invalid redirect URL"), "{body}");
    }

    // A login: to Dex with PKCE, back with a code, the ID token in the session cookie.
    let mut browser = Browser::new();
    let callback = browser.start_login(&base, "/applications?x=1").await?;
    let provider_request = browser
        .last_provider_request
        .clone()
        .context("no request")?;
    let query: HashMap<_, _> = provider_request.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["client_id"], "ferry");
    assert_eq!(query["scope"], "openid profile email groups federated:id");
    assert!(!query["nonce"].is_empty());

    // Tampering with the state is refused, as is the login of another browser.
    let mut tampered = callback.clone();
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .map(|(k, v)| match &*k {
            "state" => (k.into_owned(), format!("{v}x")),
            _ => (k.into_owned(), v.into_owned()),
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    let (status, body) = browser.get(tampered.as_str()).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("state does not match"), "{body}");
    let (status, body) = Browser::new().get(callback.as_str()).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("no login in progress"), "{body}");
    let mut forged = browser.clone();
    forged.tamper_cookie(&base, "argocd.oauthstate");
    let (status, body) = forged.get(callback.as_str()).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("not signed by this server"), "{body}");

    let code = callback
        .query_pairs()
        .find(|(key, _)| key == "code")
        .context("no code")?
        .1
        .into_owned();
    let token = browser.finish_login(&callback, "/applications?x=1").await?;
    let set_cookie = browser.last_set_cookies.join("\n");
    assert!(
        set_cookie.contains("argocd.token=") && set_cookie.contains("HttpOnly"),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("SameSite=Lax") && !set_cookie.contains("Secure"));

    // The browser's cookie is a session. The user is Dex's upstream user id (asked for with
    // `federated:id`), the groups come from the `groups` claim.
    let (status, info) = browser
        .get(&format!("{base}/api/v1/session/userinfo"))
        .await?;
    assert_eq!(status, StatusCode::OK);
    let info: Value = serde_json::from_str(&info)?;
    assert_eq!(
        info,
        json!({"loggedIn": true, "username": MOCK_USER_ID, "iss": issuer, "groups": MOCK_GROUPS})
    );
    let controller_namespace = server.get("/api/v1/settings", Some(&token)).await?.body;
    assert_eq!(controller_namespace["controllerNamespace"], ctx.namespace());

    // `g, authors, role:readonly`: the user may list apps, not sync them.
    let apps = server.get("/api/v1/applications", Some(&token)).await?;
    assert_eq!(apps.status, 200, "{:?}", apps.body);
    assert_eq!(apps.body["items"][0]["metadata"]["name"], "guestbook");
    let sync = server
        .post(
            "/api/v1/applications/guestbook/sync",
            Some(&token),
            json!({}),
        )
        .await?;
    assert_eq!(sync.status, 403, "{:?}", sync.body);

    // Tokens for ferry's CLI client are sessions too; tokens for another client are not.
    let cli_token = provider_token(&dex, "ferry-cli", None, CLI_REDIRECT).await?;
    assert_eq!(
        server
            .get("/api/v1/applications", Some(&cli_token))
            .await?
            .status,
        200
    );
    let other_token = provider_token(&dex, "other-app", Some(OTHER_SECRET), OTHER_REDIRECT).await?;
    let other = server
        .get("/api/v1/applications", Some(&other_token))
        .await?;
    assert_eq!(other.status, 401, "{:?}", other.body);
    assert!(
        other.body["message"]
            .as_str()
            .unwrap()
            .contains("other-app"),
        "{:?}",
        other.body
    );

    // `g, authors, role:admin`, live: now the same token may sync.
    apply_config_map(
        &ctx,
        "argocd-rbac-cm",
        &[("policy.csv", "g, authors, role:admin")],
    )
    .await?;
    let token_ref = token.as_str();
    wait_for(|| async move {
        let answer = server_ref
            .get(
                "/api/v1/account/can-i/applications/sync/default/guestbook",
                Some(token_ref),
            )
            .await?;
        Ok((answer.body["value"] == "yes").then_some(()))
    })
    .await?;
    let sync = server
        .post(
            "/api/v1/applications/guestbook/sync",
            Some(&token),
            json!({}),
        )
        .await?;
    assert_eq!(sync.status, 200, "{:?}", sync.body);
    assert_eq!(
        sync.body["operation"]["initiatedBy"]["username"],
        MOCK_USER_ID
    );

    // Dex restarts with new signing keys: its old tokens no longer verify (the server fetches
    // the keys again for the unknown key id), logins go on with the new keys.
    let dex = dex.restart()?;
    let mut browser = Browser::new();
    let callback = browser.start_login(&base, "").await?;
    let new_token = browser.finish_login(&callback, "/").await?;
    let old = server.get("/api/v1/applications", Some(&token)).await?;
    assert_eq!(old.status, 401, "{:?}", old.body);
    let new = server.get("/api/v1/applications", Some(&new_token)).await?;
    assert_eq!(new.status, 200, "{:?}", new.body);

    // Logging out ends the cookie and goes on to the provider's logout URL.
    let (status, _) = browser.get(&format!("{base}/auth/logout")).await?;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        browser.last_location.as_deref(),
        Some(format!("{issuer}/logout?id_token_hint={new_token}&back={base}/").as_str())
    );
    assert!(
        browser
            .last_set_cookies
            .iter()
            .any(|cookie| cookie.starts_with("argocd.token=;") && cookie.contains("Max-Age=0"))
    );
    // ... and revokes the ID token here, though the provider would still vouch for it.
    let revoked = server.get("/api/v1/applications", Some(&new_token)).await?;
    assert_eq!(revoked.status, 401, "{:?}", revoked.body);

    // A local account of the same name as the SSO user: the IdP cannot speak for it, so the SSO
    // user is refused rather than given the account's roles.
    apply_config_map(
        &ctx,
        "argocd-cm",
        &[
            ("url", &base),
            ("oidc.config", &oidc_config),
            (&format!("accounts.{MOCK_USER_ID}"), "login"),
        ],
    )
    .await?;
    let refused = wait_for(|| async move {
        let mut browser = Browser::new();
        let callback = browser.start_login(base_ref, "").await?;
        let (status, body) = browser.get(callback.as_str()).await?;
        Ok((status == StatusCode::UNAUTHORIZED).then_some(body))
    })
    .await?;
    assert!(refused.contains("the name of a local account"), "{refused}");

    let log = server.stop().await?;
    harness::assert_no_secrets(
        &log,
        &[
            CLIENT_SECRET,
            OTHER_SECRET,
            &code,
            &token,
            &new_token,
            &cli_token,
        ],
    );
    assert!(log.contains("SSO login succeeded"), "{log}");
    assert!(
        log.contains("argocd-cm oidc.config: clientSecret: $ferry-oidc:clientSecret"),
        "{log}"
    );
    drop(dex);
    Ok(())
}

/// `data` as the whole of ConfigMap `name`, created or replaced.
async fn apply_config_map(ctx: &TestContext, name: &str, data: &[(&str, &str)]) -> Result<()> {
    let config_map: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": data.iter().copied().collect::<BTreeMap<_, _>>(),
    }))?;
    ctx.api::<ConfigMap>()
        .patch(
            name,
            &PatchParams::apply("ferry-tests").force(),
            &Patch::Apply(&config_map),
        )
        .await?;
    Ok(())
}

/// Polls `check` for up to 15 s, while settings changes reach the server.
async fn wait_for<T, F, Fut>(mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    for _ in 0..75 {
        if let Some(found) = check().await? {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the condition did not hold within 15 s")
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// An ID token for `client_id` straight from Dex, as another application (or ferry's CLI) would
/// get one: ferry's own OpenID client code drives the code flow.
async fn provider_token(
    dex: &Dex,
    client_id: &str,
    secret: Option<&str>,
    redirect_uri: &str,
) -> Result<String> {
    let provider = Provider::new(&dex.issuer(), None)?;
    let scopes = ["openid".to_string(), "groups".to_string()];
    let (url, pending) = provider
        .start_login(client_id, redirect_uri, &scopes, &BTreeMap::new())
        .await?;
    let callback = Browser::new().follow(url, redirect_uri).await?;
    let code = callback
        .query_pairs()
        .find(|(key, _)| key == "code")
        .context("no code")?
        .1
        .into_owned();
    let tokens = provider
        .finish_login(client_id, secret, redirect_uri, &code, &pending)
        .await?;
    Ok(tokens.id_token)
}

/// Enough of a browser for a login: no redirect is followed by itself, cookies are kept per
/// origin and sent back.
#[derive(Clone)]
struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, BTreeMap<String, String>>,
    last_location: Option<String>,
    last_set_cookies: Vec<String>,
    last_provider_request: Option<Url>,
}

impl Browser {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a plain client builds"),
            cookies: HashMap::new(),
            last_location: None,
            last_set_cookies: Vec::new(),
            last_provider_request: None,
        }
    }

    /// One GET, with this origin's cookies; keeps the cookies it sets.
    async fn get(&mut self, url: &str) -> Result<(StatusCode, String)> {
        let url = Url::parse(url)?;
        let origin = url.origin().ascii_serialization();
        let mut request = self.http.get(url.clone());
        if let Some(cookies) = self.cookies.get(&origin).filter(|c| !c.is_empty()) {
            let header = cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header(COOKIE, header);
        }
        let response = request.send().await?;
        self.last_location = response
            .headers()
            .get(LOCATION)
            .map(|location| location.to_str().map(str::to_string))
            .transpose()?;
        self.last_set_cookies = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|cookie| cookie.to_str().map(str::to_string))
            .collect::<Result<_, _>>()?;
        let jar = self.cookies.entry(origin).or_default();
        for cookie in &self.last_set_cookies {
            let (pair, attributes) = cookie.split_once(';').unwrap_or((cookie, ""));
            let (name, value) = pair.split_once('=').context("malformed cookie")?;
            if value.is_empty() || attributes.contains("Max-Age=0") {
                jar.remove(name);
            } else {
                jar.insert(name.to_string(), value.to_string());
            }
        }
        let status = response.status();
        Ok((status, response.text().await?))
    }

    /// Follows redirects from `url` until one leads to `stop` (a URL prefix), which is returned
    /// unvisited.
    async fn follow(&mut self, mut url: Url, stop: &str) -> Result<Url> {
        for _ in 0..10 {
            if url.as_str().starts_with(stop) {
                return Ok(url);
            }
            let (status, body) = self.get(url.as_str()).await?;
            ensure!(status.is_redirection(), "{url} answered {status}: {body}");
            let location = self.last_location.clone().context("no Location")?;
            url = url.join(&location)?;
        }
        bail!("more than 10 redirects")
    }

    /// `/auth/login` up to the provider's redirect back to `/auth/callback`, unvisited.
    async fn start_login(&mut self, base: &str, return_url: &str) -> Result<Url> {
        let login = format!("{base}/auth/login?return_url={}", encode(return_url));
        let (status, body) = self.get(&login).await?;
        ensure!(status == StatusCode::SEE_OTHER, "{status}: {body}");
        let provider = Url::parse(self.last_location.as_deref().context("no Location")?)?;
        self.last_provider_request = Some(provider.clone());
        self.follow(provider, &format!("{base}/auth/callback"))
            .await
    }

    /// Visits the callback; returns the session token it sets, after checking it goes back to
    /// `return_url`.
    async fn finish_login(&mut self, callback: &Url, return_url: &str) -> Result<String> {
        let (status, body) = self.get(callback.as_str()).await?;
        ensure!(status == StatusCode::SEE_OTHER, "{status}: {body}");
        ensure!(
            self.last_location.as_deref() == Some(return_url),
            "went to {:?}",
            self.last_location
        );
        let origin = callback.origin().ascii_serialization();
        ensure!(
            !self.cookies[&origin].contains_key("argocd.oauthstate"),
            "the login state outlived the login"
        );
        self.cookies[&origin]
            .get("argocd.token")
            .cloned()
            .context("no argocd.token cookie")
    }

    /// Changes one character of a cookie's value.
    fn tamper_cookie(&mut self, base: &str, name: &str) {
        let origin = Url::parse(base).unwrap().origin().ascii_serialization();
        let value = self
            .cookies
            .get_mut(&origin)
            .unwrap()
            .get_mut(name)
            .unwrap();
        let flipped = if value.starts_with('e') { 'f' } else { 'e' };
        value.replace_range(0..1, &flipped.to_string());
    }
}
