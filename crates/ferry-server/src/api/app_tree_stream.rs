//! `GET /api/v1/stream/applications/{name}/resource-tree` (Argo CD's `WatchResourceTree`):
//! Server-Sent Events of an Application's resource tree, `{"result": <ApplicationTree>}`, first
//! as it is, then each time it differs. The tree is the controller's view; it is asked again
//! whenever the app changes (a status written by the controller) and every few seconds (pods
//! come and go without the app's status changing). The stream ends when the app is deleted.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Json};
use futures::{Stream, StreamExt, stream};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::app_views::tree;
use super::app_watch::ChangeType;
use super::applications::authorized_app;
use super::authn::Caller;
use super::error::ApiError;
use super::state::AppState;
use crate::rbac::resources::GET;

/// How often the tree is asked for again when the app itself does not change.
const POLL: Duration = Duration::from_secs(5);

/// What wakes the stream up.
enum Wake {
    Changed,
    Deleted,
}

pub async fn resource_tree(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    authorized_app(&state, &caller, &name, GET).await?;
    let Json(first) = tree(&state, &name).await?;
    let (_, changes) = state.apps().subscribe().await;
    let app = name.clone();
    let app_changes = stream::unfold(changes, move |mut changes| {
        let app = app.clone();
        async move {
            loop {
                match changes.recv().await {
                    Ok(change) if change.app.metadata.name.as_deref() == Some(app.as_str()) => {
                        let wake = if change.change == ChangeType::Deleted {
                            Wake::Deleted
                        } else {
                            Wake::Changed
                        };
                        return Some((wake, changes));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => return Some((Wake::Changed, changes)),
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    let ticks = tokio_stream_interval(POLL).map(|()| Wake::Changed);
    let wakes = stream::select(app_changes, ticks)
        .take_while(|wake| std::future::ready(!matches!(wake, Wake::Deleted)));
    let later = stream::unfold(
        (Box::pin(wakes), first.clone()),
        move |(mut wakes, mut last)| {
            let (state, name) = (state.clone(), name.clone());
            async move {
                loop {
                    wakes.next().await?;
                    // A failed ask (the controller restarting) skips this round.
                    if let Ok(Json(current)) = tree(&state, &name).await
                        && current != last
                    {
                        last = current.clone();
                        return Some((current, (wakes, last)));
                    }
                }
            }
        },
    );
    let events = stream::once(async { first })
        .chain(later)
        .map(|tree: Value| Ok(Event::default().data(json!({ "result": tree }).to_string())));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// A tick every `period`, the first one after a period.
fn tokio_stream_interval(period: Duration) -> impl Stream<Item = ()> {
    stream::unfold(
        tokio::time::interval_at(tokio::time::Instant::now() + period, period),
        |mut interval| async move {
            interval.tick().await;
            Some(((), interval))
        },
    )
}
