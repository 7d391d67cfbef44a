//! `GET /api/badge`: an SVG badge with an app's (or a set of projects') health and sync status,
//! for READMEs and dashboards, with Argo CD's query parameters (`name`, `namespace`, `project`,
//! `revision`, `keepFullRevision`, `width`, `showAppName`). Like Argo CD's it needs no login and
//! shows only `Unknown` unless argocd-cm's `statusbadge.enabled` is `true`: turning it on is the
//! operator's choice to publish these statuses by app name.

use std::collections::HashMap;
use std::fmt::Write;

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ferry_types::Application;
use ferry_types::application::{HealthStatusCode, SyncStatusCode};

use super::state::AppState;

/// Row height and the width of one character of the 11px font, in pixels.
const ROW: usize = 20;
const CHAR: usize = 7;
/// The health segment's minimum width, so badges of several apps line up.
const MIN_LEFT: usize = 77;
const MIN_RIGHT: usize = 54;
/// How much of a commit a badge shows unless `keepFullRevision=true`.
const SHORT_REVISION: usize = 7;

pub async fn get(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let query = Query::parse(query.as_deref().unwrap_or_default());
    let enabled = state
        .settings()
        .argocd_cm()
        .get("statusbadge.enabled")
        .is_some_and(|value| value.trim() == "true");
    let badge = if enabled {
        match status(&state, &query).await {
            Ok(badge) => badge,
            Err(status) => return status.into_response(),
        }
    } else {
        Badge::unknown()
    };
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            // A cached badge would go stale.
            (header::CACHE_CONTROL, "private, no-store"),
            // Dashboards fetch badges from other origins.
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        badge.svg(&query),
    )
        .into_response()
}

/// What a badge shows.
#[derive(Debug, PartialEq)]
struct Badge {
    health: HealthStatusCode,
    sync: SyncStatusCode,
    app: Option<String>,
    revision: Option<String>,
    not_found: bool,
}

impl Badge {
    fn unknown() -> Self {
        Self {
            health: HealthStatusCode::Unknown,
            sync: SyncStatusCode::Unknown,
            app: None,
            revision: None,
            not_found: false,
        }
    }

    fn svg(&self, query: &Query) -> String {
        let (left, right) = if self.not_found {
            ("Not Found".to_string(), String::new())
        } else {
            (self.health.to_string(), self.sync.to_string())
        };
        let revision = self
            .revision
            .as_deref()
            .filter(|_| !self.not_found && query.flag("revision"))
            .map(|revision| match query.flag("keepFullRevision") {
                false => format!("({})", truncate(revision, SHORT_REVISION)),
                true => format!("({revision})"),
            });
        let left_width = segment(&left).max(MIN_LEFT);
        let mut right_width = segment(&right).max(MIN_RIGHT);
        let revision_width = revision.as_deref().map_or(0, segment);
        let natural = left_width + right_width + revision_width;
        // `width` stretches (or squeezes) the last segment, as Argo CD's does.
        let mut width = query
            .get("width")
            .and_then(|width| width.parse::<usize>().ok())
            .filter(|width| *width > left_width)
            .unwrap_or(natural);
        let title = self.app.as_deref().filter(|_| query.flag("showAppName"));
        if let Some(title) = title {
            width = width.max(segment(title));
        }
        if revision.is_none() {
            right_width = width - left_width;
        }
        let top = if title.is_some() { ROW } else { 0 };
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{label}"><title>{label}</title>"#,
            height = top + ROW,
            label = escape([title.unwrap_or_default(), &left, &right].join(" ").trim()),
        );
        svg.push_str(r#"<g font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">"#);
        if let Some(title) = title {
            rect(&mut svg, 0, 0, width, "#555");
            text(&mut svg, 0, 0, width, title);
        }
        rect(
            &mut svg,
            0,
            top,
            left_width,
            health_color(self.health, self.not_found),
        );
        text(&mut svg, 0, top, left_width, &left);
        let sync_color = sync_color(self.sync, self.not_found);
        rect(&mut svg, left_width, top, right_width, sync_color);
        text(&mut svg, left_width, top, right_width, &right);
        if let Some(revision) = &revision {
            let x = left_width + right_width;
            rect(&mut svg, x, top, width.saturating_sub(x), sync_color);
            text(&mut svg, x, top, width.saturating_sub(x), revision);
        }
        svg.push_str("</g></svg>");
        svg
    }
}

/// Looks the app (or projects) up in the server's watch of Applications; `Err` for a query that
/// names something that cannot exist.
async fn status(state: &AppState, query: &Query) -> Result<Badge, StatusCode> {
    let mut badge = Badge::unknown();
    if let Some(namespace) = query.get("namespace") {
        if !is_dns_label(namespace) {
            return Err(StatusCode::BAD_REQUEST);
        }
        // Apps live only in the control namespace.
        if namespace != state.namespace() {
            badge.not_found = true;
            return Ok(badge);
        }
    }
    let projects = query.all("project");
    if projects
        .iter()
        .any(|p| !p.is_empty() && !is_dns_label(&p.to_lowercase()))
    {
        return Err(StatusCode::BAD_REQUEST);
    }
    let apps = state.apps().snapshot().await;
    if let Some(name) = query.get("name") {
        if !is_app_name(name) {
            return Err(StatusCode::BAD_REQUEST);
        }
        match apps
            .iter()
            .find(|watched| watched.app.metadata.name.as_deref() == Some(name))
        {
            Some(watched) => badge = of_app(&watched.app),
            None => {
                badge.not_found = true;
                return Ok(badge);
            }
        }
    }
    if !projects.is_empty() {
        let selected = apps
            .iter()
            .map(|watched| &*watched.app)
            .filter(|app| projects.iter().any(|p| p == app.project()));
        if let Some((health, sync)) = aggregate(selected) {
            badge.health = health;
            badge.sync = sync;
        }
    }
    Ok(badge)
}

fn of_app(app: &Application) -> Badge {
    let status = app.status.clone().unwrap_or_default();
    let revision = status
        .operation_state
        .and_then(|state| state.sync_result)
        .and_then(|result| {
            result
                .revisions
                .into_iter()
                .next()
                .or(Some(result.revision))
        })
        .filter(|revision| !revision.is_empty());
    Badge {
        health: status.health.status,
        sync: status.sync.status,
        app: app.metadata.name.clone(),
        revision,
        not_found: false,
    }
}

/// Healthy and Synced when every app is; otherwise Degraded / OutOfSync. None without apps.
fn aggregate<'a>(
    apps: impl Iterator<Item = &'a Application>,
) -> Option<(HealthStatusCode, SyncStatusCode)> {
    let mut any = false;
    let (mut health, mut sync) = (HealthStatusCode::Healthy, SyncStatusCode::Synced);
    for app in apps {
        any = true;
        let status = app.status.as_ref();
        if status.map(|s| s.health.status) != Some(HealthStatusCode::Healthy) {
            health = HealthStatusCode::Degraded;
        }
        if status.map(|s| s.sync.status) != Some(SyncStatusCode::Synced) {
            sync = SyncStatusCode::OutOfSync;
        }
    }
    any.then_some((health, sync))
}

fn health_color(health: HealthStatusCode, not_found: bool) -> &'static str {
    match health {
        _ if not_found => "#9f9f9f",
        HealthStatusCode::Healthy => "#18be52",
        HealthStatusCode::Progressing => "#0dadea",
        HealthStatusCode::Degraded => "#e96d76",
        HealthStatusCode::Suspended => "#766f94",
        HealthStatusCode::Missing => "#f4c030",
        HealthStatusCode::Unknown => "#9f9f9f",
    }
}

fn sync_color(sync: SyncStatusCode, not_found: bool) -> &'static str {
    match sync {
        _ if not_found => "#9f9f9f",
        SyncStatusCode::Synced => "#18be52",
        SyncStatusCode::OutOfSync => "#f4c030",
        SyncStatusCode::Unknown => "#9f9f9f",
    }
}

fn segment(text: &str) -> usize {
    text.chars().count() * CHAR + 2 * CHAR
}

fn rect(svg: &mut String, x: usize, y: usize, width: usize, fill: &str) {
    let _ = write!(
        svg,
        r#"<rect x="{x}" y="{y}" width="{width}" height="{ROW}" fill="{fill}"/>"#
    );
}

fn text(svg: &mut String, x: usize, y: usize, width: usize, content: &str) {
    let _ = write!(
        svg,
        r##"<text x="{}" y="{}" fill="#fff" text-anchor="middle">{}</text>"##,
        x + width / 2,
        y + 14,
        escape(content)
    );
}

fn truncate(text: &str, chars: usize) -> &str {
    text.char_indices()
        .nth(chars)
        .map_or(text, |(at, _)| &text[..at])
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn is_dns_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A name an Application can have (a DNS subdomain).
fn is_app_name(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// The query string, with repeated keys (`project=a&project=b`) kept.
struct Query(HashMap<String, Vec<String>>);

impl Query {
    fn parse(raw: &str) -> Self {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            map.entry(key.into_owned())
                .or_default()
                .push(value.into_owned());
        }
        Self(map)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .and_then(|values| values.first())
            .map(String::as_str)
    }

    fn all(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|value| value.eq_ignore_ascii_case("true"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn badge(health: HealthStatusCode, sync: SyncStatusCode) -> Badge {
        Badge {
            health,
            sync,
            app: Some("guestbook".into()),
            revision: Some("0123456789abcdef".into()),
            not_found: false,
        }
    }

    #[test]
    fn shows_health_and_sync_with_their_colors() {
        let svg =
            badge(HealthStatusCode::Healthy, SyncStatusCode::OutOfSync).svg(&Query::parse(""));
        assert!(
            svg.contains(">Healthy</text>") && svg.contains(">OutOfSync</text>"),
            "{svg}"
        );
        assert!(svg.contains(r##"fill="#18be52""##) && svg.contains(r##"fill="#f4c030""##));
        assert!(
            !svg.contains("0123456") && !svg.contains("guestbook</text>"),
            "{svg}"
        );
    }

    #[test]
    fn revision_is_short_unless_asked_for_in_full() {
        let b = badge(HealthStatusCode::Healthy, SyncStatusCode::Synced);
        let short = b.svg(&Query::parse("revision=true"));
        assert!(short.contains(">(0123456)</text>"), "{short}");
        let full = b.svg(&Query::parse("revision=TRUE&keepFullRevision=true"));
        assert!(full.contains(">(0123456789abcdef)</text>"), "{full}");
        assert!(width(&full) > width(&short));
    }

    #[test]
    fn app_name_adds_a_title_row_and_width_is_honoured() {
        let b = badge(HealthStatusCode::Degraded, SyncStatusCode::Synced);
        let svg = b.svg(&Query::parse("showAppName=true&width=300"));
        assert!(
            svg.contains(r#"height="40""#) && svg.contains(">guestbook</text>"),
            "{svg}"
        );
        assert_eq!(width(&svg), 300);
    }

    #[test]
    fn not_found_hides_statuses_and_revision() {
        let mut b = badge(HealthStatusCode::Healthy, SyncStatusCode::Synced);
        b.not_found = true;
        let svg = b.svg(&Query::parse("revision=true"));
        assert!(
            svg.contains(">Not Found</text>") && !svg.contains("Healthy"),
            "{svg}"
        );
        assert!(!svg.contains("0123456"));
    }

    #[test]
    fn projects_aggregate_to_the_worst_status() {
        let app = |health, sync| {
            let mut app = Application::new("a", Default::default());
            let status = app.status.get_or_insert_default();
            status.health.status = health;
            status.sync.status = sync;
            app
        };
        let good = app(HealthStatusCode::Healthy, SyncStatusCode::Synced);
        let drifted = app(HealthStatusCode::Healthy, SyncStatusCode::OutOfSync);
        let sick = app(HealthStatusCode::Progressing, SyncStatusCode::Synced);
        assert_eq!(
            aggregate([&good].into_iter()),
            Some((HealthStatusCode::Healthy, SyncStatusCode::Synced))
        );
        assert_eq!(
            aggregate([&good, &drifted].into_iter()),
            Some((HealthStatusCode::Healthy, SyncStatusCode::OutOfSync))
        );
        assert_eq!(
            aggregate([&good, &sick].into_iter()),
            Some((HealthStatusCode::Degraded, SyncStatusCode::Synced))
        );
        assert_eq!(aggregate(std::iter::empty()), None);
    }

    #[test]
    fn names_are_validated_and_text_escaped() {
        assert!(is_app_name("guestbook") && is_app_name("a.b-c"));
        assert!(!is_app_name("Guestbook") && !is_app_name("a/b") && !is_app_name(""));
        assert_eq!(
            escape(r#"<a href="x">&"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }

    fn width(svg: &str) -> usize {
        let rest = &svg[svg.find("width=\"").unwrap() + 7..];
        rest[..rest.find('"').unwrap()].parse().unwrap()
    }
}
