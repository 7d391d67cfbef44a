//! `POST /api/v1/clusters/{id}/invalidate-cache` and `.../rotate-auth` (Argo CD's
//! `InvalidateCache` and `RotateAuth`), for callers who may update the cluster.
//!
//! Invalidating writes Argo CD's refresh annotation (`argocd.argoproj.io/refresh`, the time
//! asked) on the cluster's Secret, as Argo CD's server does (the in-cluster destination gets a
//! Secret of its own, as there); ferry-controller, which rebuilds a cluster (client, cache, sync
//! engines) whenever its Secret changes, drops its cache of the cluster and lists it again.
//!
//! Rotating replaces the bearer token of a cluster `argocd cluster add` registered: its token is
//! that of a ServiceAccount token Secret (`argocd-manager-long-lived-token`), so a new such
//! Secret is made beside it on the cluster, filled by the cluster's token controller, tried, and
//! saved as the cluster's token; the ServiceAccount then lists the new Secret instead of the old,
//! which is deleted (its token stops working).

use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::{Extension, Json};
use base64::Engine as _;
use ferry_types::application::REFRESH_ANNOTATION;
use ferry_types::secrets::ClusterSecret;
use k8s_openapi::api::core::v1::{ObjectReference, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};

use super::authn::Caller;
use super::clusters::{self, ClusterId, Connection, all, authorized, client_for, view};
use super::error::ApiError;
use super::query::Query;
use super::state::AppState;
use crate::rbac::resources::UPDATE;

/// How long the cluster's token controller has to fill a new token Secret, as Argo CD waits.
const TOKEN_WAIT: Duration = Duration::from_secs(30);
const TOKEN_POLL: Duration = Duration::from_millis(500);
const SERVICE_ACCOUNT_TOKEN: &str = "kubernetes.io/service-account-token";

/// `POST /api/v1/clusters/{server}/invalidate-cache` (`{name}?id.type=name`): the cluster with
/// the refresh annotation set to now.
pub async fn invalidate_cache(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let id = ClusterId::parse(id, &Query::parse(query.as_deref()))?;
    let clusters = all(&state).await?;
    let found = authorized(&state.settings(), &caller, &clusters, &id, UPDATE)?;
    let (secret, current) = found[0];
    let mut next = current.clone();
    next.annotations.insert(
        REFRESH_ANNOTATION.to_string(),
        // RFC 3339 to the second, as Argo CD writes it.
        jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
    );
    let existing = secret.as_ref().map(|secret| (secret, current.clone()));
    clusters::save(&state, &caller, existing, &next, true).await?;
    Ok(Json(view(&next, Connection::unknown())))
}

/// `POST /api/v1/clusters/{server}/rotate-auth` (`{name}?id.type=name`: every cluster of that
/// name).
pub async fn rotate_auth(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let id = ClusterId::parse(id, &Query::parse(query.as_deref()))?;
    let clusters = all(&state).await?;
    let found = authorized(&state.settings(), &caller, &clusters, &id, UPDATE)?;
    for (secret, cluster) in found {
        rotate(&state, &caller, secret.as_ref(), cluster).await?;
    }
    Ok(Json(json!({})))
}

/// The claims of a legacy ServiceAccount token (one a token Secret holds) that name it.
#[derive(Debug, serde::Deserialize, PartialEq)]
struct TokenClaims {
    #[serde(rename = "kubernetes.io/serviceaccount/namespace")]
    namespace: String,
    #[serde(rename = "kubernetes.io/serviceaccount/secret.name")]
    secret_name: String,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.name")]
    service_account: String,
}

/// The claims of `token`, read without verifying it (the cluster verifies it), as Argo CD's
/// `ParseServiceAccountToken`. Errors never quote the token.
fn token_claims(token: &str) -> Result<TokenClaims, String> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or("the bearer token is not a JWT")?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "the bearer token's claims are not base64url")?;
    serde_json::from_slice(&json).map_err(|_| {
        "the bearer token is not a ServiceAccount token Secret's (as `argocd cluster add` \
         makes): it names no Secret"
            .to_string()
    })
}

/// The name a new token Secret is generated from: the old one's without its last `-` part, as
/// Argo CD's `GenerateNewClusterManagerSecret` (`argocd-manager-long-lived-token` gives
/// `argocd-manager-long-lived-…`).
fn generate_name(old: &str) -> String {
    match old.rsplit_once('-') {
        Some((stem, _)) => format!("{stem}-"),
        None => format!("{old}-"),
    }
}

async fn rotate(
    state: &AppState,
    caller: &Caller,
    secret: Option<&Secret>,
    cluster: &ClusterSecret,
) -> Result<(), ApiError> {
    let server = &cluster.server;
    let (Some(secret), Some(token)) = (secret, cluster.config.bearer_token.as_deref()) else {
        return Err(ApiError::invalid_argument(format!(
            "Cluster '{server}' does not use bearer token authentication"
        )));
    };
    let failed = |doing: &str, err: &dyn std::fmt::Display| {
        ApiError::failed_precondition(format!(
            "rotating the token of cluster {server}: {doing}: {err}"
        ))
    };
    let claims = token_claims(token).map_err(|err| failed("reading its token", &err))?;
    let client = client_for(state, cluster)
        .await
        .map_err(|err| failed("connecting", &err))?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &claims.namespace);
    let old = secrets
        .get(&claims.secret_name)
        .await
        .map_err(|err| failed(&format!("reading Secret {}", claims.secret_name), &err))?;
    let new = Secret {
        metadata: ObjectMeta {
            generate_name: Some(generate_name(&claims.secret_name)),
            annotations: old.metadata.annotations.clone(),
            ..ObjectMeta::default()
        },
        type_: Some(SERVICE_ACCOUNT_TOKEN.into()),
        ..Secret::default()
    };
    let created = secrets
        .create(&PostParams::default(), &new)
        .await
        .map_err(|err| failed("creating a token Secret", &err))?;
    let new_name = created.metadata.name.clone().unwrap_or_default();
    let new_token = filled_token(&secrets, &new_name)
        .await
        .map_err(|err| failed(&format!("waiting for Secret {new_name}"), &err))?;

    // A token only, as Argo CD: no client certificate left beside it.
    let mut next = cluster.clone();
    next.config.bearer_token = Some(new_token);
    next.config.tls_client_config.cert_data = None;
    next.config.tls_client_config.key_data = None;
    // Tried before it is saved.
    client_for(state, &next)
        .await
        .map_err(|err| failed("connecting with the new token", &err))?
        .apiserver_version()
        .await
        .map_err(|err| failed("asking the version with the new token", &err))?;
    clusters::save(state, caller, Some((secret, cluster.clone())), &next, true).await?;

    let accounts: Api<ServiceAccount> = Api::namespaced(client, &claims.namespace);
    let mut account = accounts.get(&claims.service_account).await.map_err(|err| {
        failed(
            &format!("reading ServiceAccount {}", claims.service_account),
            &err,
        )
    })?;
    let mut listed: Vec<ObjectReference> = account
        .secrets
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|reference| reference.name.as_deref() != Some(claims.secret_name.as_str()))
        .collect();
    if !listed
        .iter()
        .any(|reference| reference.name.as_deref() == Some(new_name.as_str()))
    {
        listed.push(ObjectReference {
            name: Some(new_name.clone()),
            ..ObjectReference::default()
        });
    }
    account.secrets = Some(listed);
    accounts
        .replace(&claims.service_account, &PostParams::default(), &account)
        .await
        .map_err(|err| {
            failed(
                &format!("updating ServiceAccount {}", claims.service_account),
                &err,
            )
        })?;
    match secrets
        .delete(&claims.secret_name, &DeleteParams::default())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.is_not_found() => {}
        Err(err) => {
            return Err(failed(
                &format!("deleting the old Secret {}", claims.secret_name),
                &err,
            ));
        }
    }
    tracing::info!(cluster = %server, old = %claims.secret_name, new = %new_name, "rotated the cluster's token");
    Ok(())
}

/// The token the cluster's token controller puts in Secret `name`, once it has.
async fn filled_token(secrets: &Api<Secret>, name: &str) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + TOKEN_WAIT;
    loop {
        let secret = secrets.get(name).await.map_err(|err| err.to_string())?;
        if let Some(token) = secret.data.as_ref().and_then(|data| data.get("token")) {
            return String::from_utf8(token.0.clone()).map_err(|_| "the token is not text".into());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "no token after {} s (is the cluster's token controller running?)",
                TOKEN_WAIT.as_secs()
            ));
        }
        tokio::time::sleep(TOKEN_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn jwt(claims: Value) -> String {
        let part = |value: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
        };
        format!(
            "{}.{}.c2lnbmF0dXJl",
            part(&json!({"alg": "RS256"})),
            part(&claims)
        )
    }

    #[test]
    fn legacy_token_claims_name_the_secret_and_account() {
        let token = jwt(json!({
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": "kube-system",
            "kubernetes.io/serviceaccount/secret.name": "argocd-manager-long-lived-token",
            "kubernetes.io/serviceaccount/service-account.name": "argocd-manager",
        }));
        assert_eq!(
            token_claims(&token).unwrap(),
            TokenClaims {
                namespace: "kube-system".into(),
                secret_name: "argocd-manager-long-lived-token".into(),
                service_account: "argocd-manager".into(),
            }
        );
        // A bound token (from the TokenRequest API) names no Secret to rotate.
        let bound = jwt(json!({"kubernetes.io": {"namespace": "x"}}));
        let err = token_claims(&bound).unwrap_err();
        assert!(err.contains("names no Secret"), "{err}");
        assert!(!err.contains(&bound));
        assert_eq!(
            token_claims("opaque").unwrap_err(),
            "the bearer token is not a JWT"
        );
    }

    #[test]
    fn new_secrets_are_named_as_argo_cd_names_them() {
        assert_eq!(
            generate_name("argocd-manager-long-lived-token"),
            "argocd-manager-long-lived-"
        );
        assert_eq!(generate_name("argocd-manager-x7k2p"), "argocd-manager-");
        assert_eq!(generate_name("token"), "token-");
    }
}
