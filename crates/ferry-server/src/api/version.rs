//! `GET /api/version`, which Argo CD's CLI asks before anything else.

use axum::Json;
use serde_json::{Value, json};

pub async fn version() -> Json<Value> {
    Json(json!({
        "Version": concat!("v", env!("CARGO_PKG_VERSION")),
        "Platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
        "Compiler": "rustc",
    }))
}
