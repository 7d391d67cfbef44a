//! A tower layer on the controller's client that holds back the events of its Application
//! watches: the controller's view of its apps then trails what it wrote itself, as it does for
//! a moment when the API server or the controller is busy.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use tokio::time::Instant;
use tower::{Layer, Service};

/// How long Application watch events are held back (zero at first), shared with the layer.
#[derive(Clone, Default)]
pub struct WatchLag {
    millis: Arc<AtomicU64>,
    held_back: Arc<AtomicU64>,
}

impl WatchLag {
    /// Events arriving from now on are delivered `lag` after they arrived.
    pub fn set(&self, lag: Duration) {
        self.millis.store(lag.as_millis() as u64, Ordering::SeqCst);
    }

    /// How many pieces of Application watch streams were held back so far.
    pub fn held_back(&self) -> u64 {
        self.held_back.load(Ordering::SeqCst)
    }
}

impl<S> Layer<S> for WatchLag {
    type Service = Lagging<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Lagging {
            inner,
            lag: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Lagging<S> {
    inner: S,
    lag: WatchLag,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Lagging<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: BodyExt + Send + 'static,
    ResBody::Data: Send,
    ResBody::Error: Send,
{
    type Response = Response<UnsyncBoxBody<ResBody::Data, ResBody::Error>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let uri = request.uri();
        let watches_apps = uri.path().ends_with("/applications")
            && uri
                .query()
                .is_some_and(|q| q.split('&').any(|p| p == "watch=true"));
        let lag = self.lag.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(if watches_apps {
                response.map(|body| held_back(body, lag))
            } else {
                response.map(BodyExt::boxed_unsync)
            })
        })
    }
}

/// `body` with each piece delivered the lag (as it was when the piece arrived) after it
/// arrived, in order.
fn held_back<B>(body: B, lag: WatchLag) -> UnsyncBoxBody<B::Data, B::Error>
where
    B: BodyExt + Send + 'static,
    B::Data: Send,
    B::Error: Send,
{
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut body = std::pin::pin!(body);
        while let Some(frame) = body.frame().await {
            let millis = lag.millis.load(Ordering::SeqCst);
            if millis > 0 {
                lag.held_back.fetch_add(1, Ordering::SeqCst);
            }
            let due = Instant::now() + Duration::from_millis(millis);
            if sender.send((due, frame)).is_err() {
                break;
            }
        }
    });
    let frames = futures::stream::unfold(receiver, |mut receiver| async move {
        let (due, frame) = receiver.recv().await?;
        tokio::time::sleep_until(due).await;
        Some((frame, receiver))
    });
    StreamBody::new(frames).boxed_unsync()
}
