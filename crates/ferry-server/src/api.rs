//! The HTTP API, on Argo CD's paths and in its JSON shapes, so Argo CD's clients can talk to
//! ferry: [`router`] builds it over an [`AppState`].

mod account;
mod account_store;
mod app_actions;
mod app_filter;
mod app_links;
mod app_logs;
mod app_namespace;
mod app_operations;
mod app_resources;
mod app_sync_windows;
mod app_tree_stream;
mod app_uploads;
mod app_views;
mod app_watch;
mod app_writes;
mod applications;
mod applicationsets;
mod argo_secrets;
mod audit;
mod authn;
mod authz;
mod badge;
mod certificates;
mod cluster_actions;
mod clusters;
mod cron_workflows;
mod csrf;
mod destinations;
mod error;
mod gpg_keys;
mod openapi;
mod projects;
mod query;
mod repo_access;
mod repo_app_details;
mod repo_apps;
mod repo_helm_charts;
mod repositories;
mod resource_overrides;
mod selector;
mod session;
mod settings;
mod sso;
mod state;
mod static_assets;
mod stream;
mod version;
mod webhook;
mod workflow_events;
mod workflow_logs;
mod workflow_objects;
mod workflow_templates;
mod workflows;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post, put};

pub use authn::{Caller, TOKEN_COOKIE};
pub use error::{ApiError, Code};
pub use state::{AppState, Snapshot};
pub use static_assets::StaticAssets;

/// Argo CD's gRPC API and grpc-web over the REST routes ([`ferry_grpc::beside`]), and every REST
/// route: `/api/version`, `/api/v1/session`, `/api/v1/settings`, `/api/badge` and the SSO flow's
/// `/auth/*` for anyone, `/api/webhook` for deliveries that carry their provider's signature, the
/// rest for verified callers; any other path is the web UI's when the server has its files
/// ([`StaticAssets`]).
pub fn router(state: AppState) -> Router {
    // `appNamespace` is folded into the app's name before the routes see the request.
    let rest = tower::ServiceExt::map_request(rest_router(state), app_namespace::qualify);
    ferry_grpc::beside(Router::new().fallback_service(rest))
}

/// The REST routes alone, which the gRPC gateway calls too.
fn rest_router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/api/v1/account", get(account::list))
        .route("/api/v1/account/password", put(account::update_password))
        .route(
            "/api/v1/account/can-i/{resource}/{action}/{*object}",
            get(account::can_i),
        )
        .route("/api/v1/account/{name}", get(account::get))
        .route("/api/v1/account/{name}/token", post(account::create_token))
        .route(
            "/api/v1/account/{name}/token/{id}",
            delete(account::delete_token),
        )
        .route(
            "/api/v1/applications",
            get(applications::list).post(app_writes::create),
        )
        .route(
            "/api/v1/applications/manifestsWithFiles",
            post(app_uploads::manifests_with_files),
        )
        .route(
            "/api/v1/applications/{name}",
            get(applications::get)
                .put(app_writes::update)
                .patch(app_writes::patch)
                .delete(app_writes::delete),
        )
        .route(
            "/api/v1/applications/{name}/spec",
            put(app_writes::update_spec),
        )
        .route(
            "/api/v1/applications/{name}/sync",
            post(app_operations::sync),
        )
        .route(
            "/api/v1/applications/{name}/rollback",
            post(app_operations::rollback),
        )
        .route(
            "/api/v1/applications/{name}/operation",
            delete(app_operations::terminate),
        )
        .route(
            "/api/v1/applications/{name}/resource",
            get(app_resources::get)
                .post(app_resources::patch)
                .delete(app_resources::delete),
        )
        .route(
            "/api/v1/applications/{name}/resource/actions",
            get(app_actions::list).post(app_actions::run_v1),
        )
        .route(
            "/api/v1/applications/{name}/resource/links",
            get(app_links::list_for_resource),
        )
        .route("/api/v1/applications/{name}/links", get(app_links::list))
        .route(
            "/api/v1/applications/{name}/resource/actions/v2",
            post(app_actions::run_v2),
        )
        .route(
            "/api/v1/applications/{name}/managed-resources",
            get(app_views::managed_resources),
        )
        .route(
            "/api/v1/applications/{name}/syncwindows",
            get(app_sync_windows::get),
        )
        .route(
            "/api/v1/applications/{name}/resource-tree",
            get(app_views::resource_tree),
        )
        .route(
            "/api/v1/applications/{name}/manifests",
            get(app_views::manifests),
        )
        .route(
            "/api/v1/applications/{name}/revisions/{revision}/metadata",
            get(app_views::revision_metadata),
        )
        .route(
            "/api/v1/applications/{name}/revisions/{revision}/chartdetails",
            get(app_views::chart_details),
        )
        .route(
            "/api/v1/applications/{name}/revisions/{revision}/ocimetadata",
            get(app_views::oci_metadata),
        )
        .route(
            "/api/v1/applications/{name}/server-side-diff",
            get(app_views::server_side_diff).layer(DefaultBodyLimit::max(
                app_views::SERVER_SIDE_DIFF_BODY_LIMIT,
            )),
        )
        .route(
            "/api/v1/applications/{name}/events",
            get(app_resources::events),
        )
        .route(
            "/api/v1/applications/{name}/pods/{pod}/logs",
            get(app_resources::logs),
        )
        .route("/api/v1/applications/{name}/logs", get(app_logs::app_logs))
        .route("/api/v1/stream/applications", get(stream::applications))
        .route(
            "/api/v1/stream/applications/{name}/resource-tree",
            get(app_tree_stream::resource_tree),
        )
        .merge(applicationsets::routes())
        .merge(projects::routes())
        .route(
            "/api/v1/repositories/{url}/validate",
            post(repo_access::validate),
        )
        .route(
            "/api/v1/write-repositories/{url}/validate",
            post(repo_access::validate_write),
        )
        .route("/api/v1/repositories/{url}/refs", get(repo_access::refs))
        .route(
            "/api/v1/repositories/{url}/oci-tags",
            get(repo_access::oci_tags),
        )
        .route(
            "/api/v1/repositories/{url}/helmcharts",
            get(repo_helm_charts::list),
        )
        .route("/api/v1/repositories/{url}/apps", get(repo_apps::list))
        .route(
            "/api/v1/repositories/{url}/appdetails",
            post(repo_app_details::get),
        )
        .merge(repositories::routes())
        .merge(clusters::routes())
        .merge(certificates::routes())
        .route(
            "/api/v1/gpgkeys",
            get(gpg_keys::list)
                .post(gpg_keys::create)
                .delete(gpg_keys::delete),
        )
        .route("/api/v1/gpgkeys/{key_id}", get(gpg_keys::get))
        .route("/api/v1/settings/plugins", get(settings::plugins))
        .merge(workflows::routes())
        .merge(workflow_templates::routes())
        .merge(cron_workflows::routes())
        .merge(workflow_events::routes())
        .route_layer(from_fn_with_state(state.clone(), authn::require_caller));
    Router::new()
        .route("/api/version", get(version::version))
        .route("/healthz", get(version::healthz))
        .route("/api/openapi.json", get(openapi::document))
        .route("/swagger.json", get(openapi::document))
        .route(
            "/api/v1/session",
            post(session::login).delete(session::logout),
        )
        .route("/api/v1/session/userinfo", get(session::user_info))
        .route("/api/v1/settings", get(settings::get))
        .route("/api/badge", get(badge::get))
        .route("/auth/login", get(sso::login))
        .route("/auth/callback", get(sso::callback))
        .route("/auth/logout", get(sso::logout))
        .route(
            "/api/webhook",
            post(webhook::receive).layer(DefaultBodyLimit::max(crate::webhook::MAX_PAYLOAD_BYTES)),
        )
        .merge(protected)
        .fallback(static_assets::serve)
        .layer(from_fn_with_state(
            state.clone(),
            csrf::require_json_for_cookie_writes,
        ))
        .layer(axum::middleware::from_fn(error::json_errors))
        // Outermost, after every route is added: sees every answer, refusals included.
        .layer(from_fn_with_state(
            state.metrics().clone(),
            crate::metrics::track,
        ))
        .with_state(state)
}
