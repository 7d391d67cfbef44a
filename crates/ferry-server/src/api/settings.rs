//! `GET /api/v1/settings`: the settings Argo CD's login page and CLI read, before anyone has
//! logged in (how to log in with SSO, above all), in the shape of Argo CD's `Settings` message.
//! A logged-in caller also gets the banner, the control namespace and the password pattern, as
//! from Argo CD, and anyone argocd-cm's resource customizations (`resourceOverrides`), as from
//! Argo CD. The client secret is never part of it. `GET /api/v1/settings/plugins` names the
//! config-management plugins (`--plugin-config-dir`) to logged-in callers.

use std::collections::BTreeMap;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Map, Value, json};

use super::authn::{Caller, authenticate};
use super::resource_overrides::resource_overrides;
use super::state::AppState;
use crate::auth::{Capability, DEFAULT_PASSWORD_PATTERN, PASSWORD_PATTERN_KEY};

/// The label Argo CD tracks resources by when `application.instanceLabelKey` names none.
const DEFAULT_APP_LABEL_KEY: &str = "app.kubernetes.io/instance";

pub async fn get(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let settings = state.settings();
    let cm = settings.argocd_cm();
    let text = |key: &str| cm.get(key).map_or("", |value| value.trim());
    let flag = |key: &str| text(key) == "true";
    let or_default = |key: &str, default: &'static str| match text(key) {
        "" => default.to_string(),
        value => value.to_string(),
    };
    // Nobody may log in with a password when no enabled account has the capability; unreadable
    // accounts count as none.
    let user_logins_disabled = settings.sessions().map_or(true, |sessions| {
        !sessions
            .settings()
            .accounts
            .iter()
            .any(|(_, account)| account.enabled && account.has_capability(Capability::Login))
    });
    let mut body = json!({
        "url": text("url"),
        "appLabelKey": or_default("application.instanceLabelKey", DEFAULT_APP_LABEL_KEY),
        "resourceOverrides": resource_overrides(cm),
        "statusBadgeEnabled": flag("statusbadge.enabled"),
        "statusBadgeRootUrl": text("statusbadge.url"),
        "googleAnalytics": {
            "trackingID": text("ga.trackingid"),
            "anonymizeUsers": text("ga.anonymizeusers") != "false",
        },
        "help": {
            "chatUrl": text("help.chatUrl"),
            "chatText": text("help.chatText"),
            "binaryUrls": binary_urls(cm),
        },
        "userLoginsDisabled": user_logins_disabled,
        "kustomizeOptions": {"buildOptions": text("kustomize.buildOptions")},
        "uiCssURL": text("ui.cssurl"),
        "trackingMethod": or_default("application.resourceTrackingMethod", "annotation"),
        "installationID": text("installationID"),
        // ferry has no web terminal, no apps outside the control namespace and no hydrator.
        "execEnabled": false,
        "appsInAnyNamespaceEnabled": false,
        // The controller reads the same key at every sync and then syncs as the project's
        // destinationServiceAccounts (ferry_controller's impersonation module).
        "impersonationEnabled": flag("application.sync.impersonation.enabled"),
        "hydratorEnabled": false,
    });
    if authenticate(&state, &headers).await.is_ok() {
        let extra = json!({
            "uiBannerContent": text("ui.bannercontent"),
            "uiBannerURL": text("ui.bannerurl"),
            "uiBannerPermanent": flag("ui.bannerpermanent"),
            "uiBannerPosition": text("ui.bannerposition"),
            "controllerNamespace": state.namespace(),
            "passwordPattern": or_default(PASSWORD_PATTERN_KEY, DEFAULT_PASSWORD_PATTERN),
        });
        merge(&mut body, extra);
    }
    if let Some(oidc) = settings.sso().ok().and_then(|sso| sso.oidc.as_deref()) {
        let mut config = json!({
            "name": oidc.name,
            "issuer": oidc.issuer,
            "clientID": oidc.client_id,
            "cliClientID": oidc.cli_client_id.as_deref().unwrap_or_default(),
            "scopes": oidc.requested_scopes,
            // PKCE is always on, for the web flow as for the CLI.
            "enablePKCEAuthentication": true,
        });
        if !oidc.requested_id_token_claims.is_empty() {
            config["idTokenClaims"] = json!(oidc.requested_id_token_claims);
        }
        body["oidcConfig"] = config;
    }
    Json(body)
}

/// `help.download.<platform>` keys, by platform.
fn binary_urls(cm: &BTreeMap<String, String>) -> Map<String, Value> {
    cm.iter()
        .filter_map(|(key, url)| {
            let platform = key.strip_prefix("help.download.")?;
            Some((platform.to_string(), Value::from(url.trim())))
        })
        .collect()
}

fn merge(body: &mut Value, extra: Value) {
    if let (Value::Object(body), Value::Object(extra)) = (body, extra) {
        body.extend(extra);
    }
}

/// `GET /api/v1/settings/plugins` (Argo CD's `GetPlugins`): the plugins sources may name, as
/// the repo server lists its sidecars' (`<name>-<version>`, or `<name>`), for any caller who is
/// logged in.
pub async fn plugins(State(state): State<AppState>, _: Extension<Caller>) -> Json<Value> {
    let plugins: Vec<Value> = state
        .plugins()
        .iter()
        .map(|plugin| json!({"name": plugin.full_name()}))
        .collect();
    Json(json!({ "plugins": plugins }))
}
