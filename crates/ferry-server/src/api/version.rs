//! `GET /api/version`, which Argo CD's CLI asks before anything else, and `GET /healthz` for
//! probes.

use axum::Json;
use serde_json::{Value, json};

pub async fn version() -> Json<Value> {
    Json(json!({
        "Version": concat!("v", env!("CARGO_PKG_VERSION")),
        "Platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
        "Compiler": "rustc",
    }))
}

/// `GET /healthz`: 200 once the server has its list of Applications (it can answer), 503
/// before, so a readiness probe holds traffic back until then.
pub async fn healthz(
    axum::extract::State(state): axum::extract::State<super::state::AppState>,
) -> (axum::http::StatusCode, Json<Value>) {
    if state.apps().wait_ready(std::time::Duration::ZERO).await {
        (axum::http::StatusCode::OK, Json(json!({"status": "ok"})))
    } else {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "starting"})),
        )
    }
}
