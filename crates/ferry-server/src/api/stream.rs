//! `GET /api/v1/stream/applications`: Server-Sent Events of Application changes, as Argo CD's
//! UI and `argocd app wait` consume them. Each event's data is
//! `{"result":{"type":"ADDED|MODIFIED|DELETED","application":{…}}}`; the stream starts with
//! every matching app as ADDED (unless the client passes the `resourceVersion` it already has and
//! names no one app), and only carries the apps the caller may `get`, under the settings of each
//! moment.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt, stream};
use tokio::sync::broadcast::error::RecvError;

use super::app_filter::AppFilter;
use super::app_watch::{Change, ChangeType};
use super::applications::rbac_object;
use super::authn::Caller;
use super::authz::visible;
use super::error::ApiError;
use super::state::AppState;
use crate::rbac::resources::{APPLICATIONS, GET};

/// How long a stream waits for the first list of Applications before answering 503.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn applications(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let filter = Arc::new(AppFilter::parse(query.as_deref(), state.namespace())?);
    // As Argo CD's: a watch of one app always starts with it (`argocd app wait` passes the
    // resourceVersion it just read and must not miss that the app already is as awaited).
    let given = |name: &str| {
        url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
            .any(|(key, value)| key == name && !value.is_empty())
    };
    let resumed = given("resourceVersion") && !given("name");
    if !state.apps().wait_ready(READY_TIMEOUT).await {
        return Err(ApiError::unavailable("the Applications are not listed yet"));
    }
    let (current, changes) = state.apps().subscribe().await;
    let initial: Vec<Arc<Change>> = if resumed {
        Vec::new()
    } else {
        current
            .into_iter()
            .map(|watched| Arc::new(Change::new(ChangeType::Added, &watched)))
            .collect()
    };
    let later = stream::unfold(changes, |mut changes| async move {
        match changes.recv().await {
            Ok(change) => Some((change, changes)),
            // A client this far behind reconnects and starts again from the current state.
            Err(RecvError::Lagged(_) | RecvError::Closed) => None,
        }
    });
    let stopping = state.stopping().clone().cancelled_owned();
    let events = stream::iter(initial)
        .chain(later)
        .take_until(stopping)
        .filter_map(move |change| {
            let shown = filter.admits(&change.app)
                && visible(
                    &state.settings(),
                    &caller,
                    APPLICATIONS,
                    GET,
                    &rbac_object(&change.app, state.namespace()),
                )
                .unwrap_or(false);
            let event = shown.then(|| Ok(Event::default().data(&*change.message)));
            async move { event }
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
