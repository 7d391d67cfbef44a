//! The web UI's files, served as Argo CD's server serves its own: a file as it is, and
//! `index.html` for any other page a browser asks for, so the UI's client-side routes
//! (`/applications/guestbook`) load it (the History API fallback). API paths keep their JSON
//! 404s. Hashed build output (`assets/`) is cached for good, the page itself never, and every
//! answer carries the framing and indexing headers Argo CD sets. The files are those built into
//! the binary (`ui/dist` when it was compiled, see [`BuiltUi`]) or, with `--staticassets`, a
//! directory's.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use tower::ServiceExt as _;
use tower_http::services::{ServeDir, ServeFile};

use super::error::{ApiError, no_route};
use super::state::AppState;

/// Where Vite puts the files whose names carry a hash of their content.
const HASHED_DIR: &str = "/assets/";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Argo CD's headers for the page: every load asks the server, so a new build shows at once.
const NO_CACHE: [(HeaderName, &str); 3] = [
    (header::CACHE_CONTROL, "no-cache, private, max-age=0"),
    (header::PRAGMA, "no-cache"),
    (header::EXPIRES, "Thu, 01 Jan 1970 00:00:00 GMT"),
];

/// `ui/dist` as `scripts/ui` built it: in the binary in release builds; read from the source
/// tree at run time in debug builds (rust-embed's default), so a rebuilt UI needs no Rust build.
/// A build without `ui/dist` has no UI and serves the API alone (`build.rs` says so).
#[derive(RustEmbed)]
#[folder = "$CARGO_MANIFEST_DIR/../../ui/dist"]
#[allow_missing = true]
struct BuiltUi;

/// Where the UI's files come from.
#[derive(Debug, Clone)]
enum Files {
    Dir(PathBuf),
    BuiltIn,
}

/// The UI's built files and the headers they are served with.
#[derive(Debug, Clone)]
pub struct StaticAssets {
    files: Files,
    /// `X-Frame-Options`; empty leaves it out (Argo CD's `--x-frame-options`).
    x_frame_options: String,
    /// `Content-Security-Policy`; empty leaves it out (Argo CD's `--content-security-policy`).
    content_security_policy: String,
}

impl StaticAssets {
    /// The files of `dir`, which must hold the UI's `index.html`.
    pub fn new(
        dir: &Path,
        x_frame_options: &str,
        content_security_policy: &str,
    ) -> Result<Self, String> {
        if !dir.join("index.html").is_file() {
            return Err(format!(
                "{} has no index.html: build the UI first (scripts/ui puts it in ui/dist)",
                dir.display()
            ));
        }
        Ok(Self {
            files: Files::Dir(dir.to_path_buf()),
            x_frame_options: x_frame_options.trim().to_string(),
            content_security_policy: content_security_policy.trim().to_string(),
        })
    }

    /// The UI built into the binary, if it was built when the binary was.
    pub fn built_in(x_frame_options: &str, content_security_policy: &str) -> Option<Self> {
        BuiltUi::get("index.html")?;
        Some(Self {
            files: Files::BuiltIn,
            x_frame_options: x_frame_options.trim().to_string(),
            content_security_policy: content_security_policy.trim().to_string(),
        })
    }

    /// Where the files come from, for the log.
    pub fn source(&self) -> String {
        match &self.files {
            Files::Dir(dir) => dir.display().to_string(),
            Files::BuiltIn => "built in".into(),
        }
    }

    fn security_headers(&self, headers: &mut HeaderMap) {
        for (name, value) in [
            (header::X_FRAME_OPTIONS, self.x_frame_options.as_str()),
            (
                header::CONTENT_SECURITY_POLICY,
                self.content_security_policy.as_str(),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Keeps search engines from indexing a deployment's UI, as Argo CD does.
            (HeaderName::from_static("x-robots-tag"), "noindex, nofollow"),
        ] {
            if let Ok(value) = HeaderValue::from_str(value)
                && !value.is_empty()
            {
                headers.insert(name, value);
            }
        }
    }
}

/// The router's fallback: the UI's files and pages when the server has them, JSON 404s for
/// everything else and for API paths.
pub async fn serve(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let readable = matches!(*request.method(), Method::GET | Method::HEAD);
    let Some(assets) = state.static_assets().filter(|_| readable && !is_api(&path)) else {
        return no_route().await.into_response();
    };
    let page = path == "/" || path == "/index.html" || accepts_html(request.headers());
    let hashed = path.starts_with(HASHED_DIR);
    let index_request = page.then(|| {
        let mut index = Request::new(Body::empty());
        *index.method_mut() = request.method().clone();
        *index.headers_mut() = request.headers().clone();
        index
    });
    let file = if path == "/" || path == "/index.html" {
        None
    } else {
        match &assets.files {
            Files::Dir(dir) => ServeDir::new(dir)
                .append_index_html_on_directories(false)
                .oneshot(request)
                .await
                .ok()
                .map(|response| response.map(Body::new)),
            Files::BuiltIn => Some(built_in(&request, path.trim_start_matches('/'))),
        }
        .filter(|response| response.status() != StatusCode::NOT_FOUND)
    };
    let mut response = match (file, index_request) {
        (Some(mut response), _) => {
            let cache = if hashed { IMMUTABLE } else { "no-cache" };
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
            response
        }
        (None, Some(index)) => {
            let mut response = match &assets.files {
                Files::Dir(dir) => {
                    match ServeFile::new(dir.join("index.html")).oneshot(index).await {
                        Ok(response) => response.map(Body::new),
                        Err(err) => {
                            return ApiError::internal("serving index.html", &err).into_response();
                        }
                    }
                }
                Files::BuiltIn => built_in(&index, "index.html"),
            };
            for (name, value) in NO_CACHE {
                response
                    .headers_mut()
                    .insert(name, HeaderValue::from_static(value));
            }
            response
        }
        (None, None) => ApiError::not_found(format!("no such file: {path}")).into_response(),
    };
    assets.security_headers(response.headers_mut());
    response
}

/// A file built into the binary, with its type and its content hash as ETag (a matching
/// `If-None-Match` answers 304); 404 when there is none.
fn built_in(request: &Request, path: &str) -> Response {
    let Some(file) = BuiltUi::get(path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let matches = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else if request.method() == Method::HEAD {
        Response::new(Body::empty())
    } else {
        Response::new(match file.data {
            Cow::Borrowed(bytes) => Body::from(bytes),
            Cow::Owned(bytes) => Body::from(bytes),
        })
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(mime) = HeaderValue::from_str(file.metadata.mimetype()) {
        headers.insert(header::CONTENT_TYPE, mime);
    }
    response
}

/// Paths of the API and the SSO flow, which never answer with the UI's page.
fn is_api(path: &str) -> bool {
    ["/api", "/auth"]
        .iter()
        .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")))
}

/// Whether the request is a browser's for a page (Argo CD's test: `text/html` among `Accept`).
fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| media.split(';').next().unwrap_or_default().trim() == "text/html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_are_not_pages() {
        for api in ["/api", "/api/v1/nothing", "/auth/login", "/auth"] {
            assert!(is_api(api), "{api}");
        }
        for page in ["/", "/applications", "/apiary", "/authors/x", "/login"] {
            assert!(!is_api(page), "{page}");
        }
    }

    #[test]
    fn a_page_request_accepts_html() {
        let mut headers = HeaderMap::new();
        assert!(!accepts_html(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
        );
        assert!(accepts_html(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!accepts_html(&headers));
    }

    /// Needs `ui/dist` (scripts/ui, which scripts/test runs before any build).
    #[tokio::test]
    async fn the_built_in_ui_serves_files_with_their_type_and_hash() {
        assert!(
            StaticAssets::built_in("sameorigin", "").is_some(),
            "no UI built in: run scripts/ui"
        );
        let get = |path: &str, etag: Option<&str>| {
            let mut request = Request::get(path).body(Body::empty()).unwrap();
            if let Some(etag) = etag {
                let value = HeaderValue::from_str(etag).unwrap();
                request.headers_mut().insert(header::IF_NONE_MATCH, value);
            }
            built_in(&request, path.trim_start_matches('/'))
        };
        let index = get("/index.html", None);
        assert_eq!(index.status(), StatusCode::OK);
        assert_eq!(index.headers()[header::CONTENT_TYPE], "text/html");
        let script = BuiltUi::iter()
            .find(|path| path.starts_with("assets/") && path.ends_with(".js"))
            .expect("a script in assets/");
        let first = get(&format!("/{script}"), None);
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()[header::CONTENT_TYPE], "text/javascript");
        let etag = first.headers()[header::ETAG].to_str().unwrap().to_string();
        let again = get(&format!("/{script}"), Some(&etag));
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        for path in [
            "/no-such-file.js",
            "/../Cargo.toml",
            "/assets/../../../Cargo.toml",
        ] {
            assert_eq!(get(path, None).status(), StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[test]
    fn a_directory_without_index_html_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = StaticAssets::new(dir.path(), "sameorigin", "").unwrap_err();
        assert!(err.contains("has no index.html"), "{err}");
        std::fs::write(dir.path().join("index.html"), "<html></html>").unwrap();
        assert!(StaticAssets::new(dir.path(), "sameorigin", "").is_ok());
    }
}
