//! The gRPC (and grpc-web) service: each call becomes its REST request, sent through the REST
//! router in process.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt, TryStreamExt};
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE};
use http::{HeaderMap, HeaderValue};
use prost_reflect::{DynamicMessage, MethodDescriptor};
use serde_json::value::RawValue;
use tonic::{Code, Status};
use tower::{Service, ServiceExt};

use crate::binding::request_for;
use crate::codec::GatewayCodec;
use crate::reply::Encoder;

/// The metadata key Argo CD's clients put their token under.
const TOKEN_METADATA: &str = "token";
/// What a unary answer may weigh.
const RESPONSE_LIMIT: usize = 64 * 1024 * 1024;

/// `rest` with the gRPC and grpc-web calls (by their content type, `application/grpc…`) taken
/// off to a [`Gateway`] over it: gRPC, grpc-web and REST on one listener.
pub fn beside(rest: axum::Router) -> axum::Router {
    let grpc = Gateway::new(rest.clone()).with_grpc_web();
    rest.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let grpc = grpc.clone();
            async move {
                if !is_grpc(request.headers()) {
                    return next.run(request).await;
                }
                let Ok(response) = grpc.oneshot(request).await;
                response.map(Body::new)
            }
        },
    ))
}

/// Whether a request is gRPC or grpc-web, by its content type.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

/// Marks a REST answer to a path no route serves (put in the response's extensions by the REST
/// router's fallback): the method is then `Unimplemented`, not `NotFound`.
#[derive(Debug, Clone, Copy)]
pub struct Unrouted;

/// Argo CD's gRPC services over `rest`, the REST router; grpc-web too, through tonic-web.
#[derive(Clone)]
pub struct Gateway<S> {
    rest: S,
    encoder: Encoder,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type MessageStream = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

impl<S> Gateway<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    pub fn new(rest: S) -> Self {
        Self {
            rest,
            encoder: Encoder::new(),
        }
    }

    /// This gateway as a service that also speaks grpc-web (HTTP/1.1 included).
    pub fn with_grpc_web(self) -> tonic_web::GrpcWebService<Self> {
        tower::Layer::layer(&tonic_web::GrpcWebLayer::new(), self)
    }
}

impl<S, B> Service<http::Request<B>> for Gateway<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (rest, encoder) = (self.rest.clone(), self.encoder.clone());
        Box::pin(async move {
            let path = request.uri().path().to_string();
            let Some(method) = crate::method(&path) else {
                return Ok(Status::unimplemented(format!("unknown method {path}")).into_http());
            };
            let mut grpc = tonic::server::Grpc::new(GatewayCodec::new(method.input()));
            if method.is_client_streaming() && method.is_server_streaming() {
                return Ok(unimplemented(&method).into_http());
            }
            let response = if method.is_client_streaming() {
                let call = tower::service_fn(move |request| {
                    let (rest, method, encoder) = (rest.clone(), method.clone(), encoder.clone());
                    async move { client_stream(rest, method, encoder, request).await }
                });
                grpc.client_streaming(call, request).await
            } else if method.is_server_streaming() {
                let call = tower::service_fn(move |request| {
                    let (rest, method, encoder) = (rest.clone(), method.clone(), encoder.clone());
                    async move { stream(rest, method, encoder, request).await }
                });
                grpc.server_streaming(call, request).await
            } else {
                let call = tower::service_fn(move |request| {
                    let (rest, method, encoder) = (rest.clone(), method.clone(), encoder.clone());
                    async move { unary(rest, method, encoder, request).await }
                });
                grpc.unary(call, request).await
            };
            Ok(response)
        })
    }
}

fn unimplemented(method: &MethodDescriptor) -> Status {
    Status::unimplemented(format!(
        "{} is not implemented by ferry",
        method.full_name()
    ))
}

async fn unary<S>(
    rest: S,
    method: MethodDescriptor,
    encoder: Encoder,
    request: tonic::Request<DynamicMessage>,
) -> Result<tonic::Response<Bytes>, Status>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
{
    let response = call_rest(rest, &method, request).await?;
    answer(&method, &encoder, response).await
}

/// A client stream (`GetManifestsWithFiles`' query, then its archive's chunks) as one REST
/// request: the first message decides the path and query, and the body is every message's JSON,
/// one per line — as grpc-gateway reads a streamed body — passed on as the messages arrive, so
/// the route reads (and limits) the stream itself. The answer is unary.
async fn client_stream<S>(
    rest: S,
    method: MethodDescriptor,
    encoder: Encoder,
    request: tonic::Request<tonic::Streaming<DynamicMessage>>,
) -> Result<tonic::Response<Bytes>, Status>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
{
    let (metadata, extensions, mut messages) = request.into_parts();
    let first = messages
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument(format!("{}: no message", method.full_name())))?;
    let rest_request = request_for(&method, &first)
        .ok_or_else(|| unimplemented(&method))?
        .map_err(|err| Status::invalid_argument(format!("{}: {err}", method.full_name())))?;
    let line = |message: &DynamicMessage| {
        let mut line =
            serde_json::to_vec(&crate::json::from_message(message)).expect("JSON values serialize");
        line.push(b'\n');
        Bytes::from(line)
    };
    let head = futures::stream::once(std::future::ready(Ok::<_, Status>(line(&first))));
    let tail = futures::stream::unfold(messages, move |mut messages| async move {
        match messages.message().await {
            Ok(Some(message)) => Some((Ok(line(&message)), messages)),
            Ok(None) => None,
            Err(status) => Some((Err(status), messages)),
        }
    });
    let body = Body::from_stream(head.chain(tail));
    let response = send_rest(
        rest,
        &method,
        (metadata, extensions),
        rest_request.method,
        rest_request.path_and_query,
        Some(body),
    )
    .await?;
    answer(&method, &encoder, response).await
}

/// A unary answer: the REST answer's JSON as the response message.
async fn answer(
    method: &MethodDescriptor,
    encoder: &Encoder,
    response: http::Response<Body>,
) -> Result<tonic::Response<Bytes>, Status> {
    let body = axum::body::to_bytes(response.into_body(), RESPONSE_LIMIT)
        .await
        .map_err(|err| Status::internal(format!("reading the answer: {err}")))?;
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    let json: &RawValue = serde_json::from_slice(&body)
        .map_err(|err| Status::internal(format!("the answer is no JSON: {err}")))?;
    Ok(tonic::Response::new(response_message(
        method, encoder, json,
    )?))
}

async fn stream<S>(
    rest: S,
    method: MethodDescriptor,
    encoder: Encoder,
    request: tonic::Request<DynamicMessage>,
) -> Result<tonic::Response<MessageStream>, Status>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
{
    let response = call_rest(rest, &method, request).await?;
    let chunks = response
        .into_body()
        .into_data_stream()
        .map_err(|err| Status::unavailable(format!("the stream broke: {err}")));
    let messages = event_data(chunks).filter_map(move |data| {
        let (method, encoder) = (method.clone(), encoder.clone());
        async move {
            match data {
                Ok(data) => stream_message(&method, &encoder, &data),
                Err(status) => Some(Err(status)),
            }
        }
    });
    Ok(tonic::Response::new(Box::pin(messages)))
}

/// One event of a REST stream (`{"result": …}` or `{"error": …}`) as a response message;
/// nothing for anything else.
fn stream_message(
    method: &MethodDescriptor,
    encoder: &Encoder,
    data: &[u8],
) -> Option<Result<Bytes, Status>> {
    #[derive(serde::Deserialize)]
    struct Event<'a> {
        #[serde(borrow)]
        result: Option<&'a RawValue>,
    }
    if let Ok(Event {
        result: Some(result),
    }) = serde_json::from_slice(data)
    {
        return Some(response_message(method, encoder, result));
    }
    let event: serde_json::Value = serde_json::from_slice(data).ok()?;
    event.get("error").map(|_| Err(status(&event, method)))
}

/// The data lines of a Server-Sent Events body, as ferry's REST streams send them.
fn event_data(
    chunks: impl Stream<Item = Result<Bytes, Status>> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, Status>> + Send {
    futures::stream::unfold(
        (Box::pin(chunks), BytesMut::new(), false),
        |(mut chunks, mut buffer, mut done)| async move {
            loop {
                if let Some(end) = buffer.iter().position(|byte| *byte == b'\n') {
                    let line = buffer.split_to(end + 1).freeze();
                    let line = line.trim_ascii_end();
                    if let Some(data) = line.strip_prefix(b"data:") {
                        let data = Bytes::copy_from_slice(data.trim_ascii_start());
                        return Some((Ok(data), (chunks, buffer, done)));
                    }
                    continue;
                }
                if done {
                    return None;
                }
                match chunks.next().await {
                    Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                    Some(Err(status)) => {
                        done = true;
                        return Some((Err(status), (chunks, buffer, done)));
                    }
                    None => {
                        done = true;
                        buffer.extend_from_slice(b"\n");
                    }
                }
            }
        },
    )
}

/// Sends the REST request of a call; a refusal is the gRPC status of its JSON error.
async fn call_rest<S>(
    rest: S,
    method: &MethodDescriptor,
    request: tonic::Request<DynamicMessage>,
) -> Result<http::Response<Body>, Status>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
{
    let (metadata, extensions, message) = request.into_parts();
    let rest_request = request_for(method, &message)
        .ok_or_else(|| unimplemented(method))?
        .map_err(|err| Status::invalid_argument(format!("{}: {err}", method.full_name())))?;
    let body = rest_request
        .body
        .map(|body| Body::from(serde_json::to_vec(&body).expect("JSON values serialize")));
    send_rest(
        rest,
        method,
        (metadata, extensions),
        rest_request.method,
        rest_request.path_and_query,
        body,
    )
    .await
}

/// Sends a REST request with a call's credentials and extensions, and a JSON body if any.
async fn send_rest<S>(
    rest: S,
    method: &MethodDescriptor,
    (metadata, extensions): (tonic::metadata::MetadataMap, http::Extensions),
    verb: http::Method,
    path_and_query: String,
    body: Option<Body>,
) -> Result<http::Response<Body>, Status>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
{
    let mut builder = http::Request::builder().method(verb).uri(path_and_query);
    let headers = metadata.into_headers();
    let headers_out = builder.headers_mut().expect("a fresh request builder");
    forward_credentials(&headers, headers_out);
    let body = match body {
        Some(body) => {
            headers_out.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            body
        }
        None => Body::empty(),
    };
    let mut http_request = builder
        .body(body)
        .map_err(|err| Status::invalid_argument(format!("{err}")))?;
    // The peer's address and the like, which the REST handlers read (login limits per client).
    *http_request.extensions_mut() = extensions;
    let Ok(response) = rest.oneshot(http_request).await;
    if response.extensions().get::<Unrouted>().is_some() {
        return Err(unimplemented(method));
    }
    if response.status().is_success() {
        return Ok(response);
    }
    let body = axum::body::to_bytes(response.into_body(), RESPONSE_LIMIT)
        .await
        .unwrap_or_default();
    let error = serde_json::from_slice(&body).unwrap_or_default();
    Err(status(&error, method))
}

/// The token of a gRPC call (the `token` metadata of Argo CD's clients, or a bearer token), and
/// the cookies grpc-web calls from a browser carry.
fn forward_credentials(from: &HeaderMap, to: &mut HeaderMap) {
    if let Some(authorization) = from.get(AUTHORIZATION) {
        to.insert(AUTHORIZATION, authorization.clone());
    } else if let Some(token) = from
        .get(TOKEN_METADATA)
        .and_then(|value| value.to_str().ok())
        && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
    {
        to.insert(AUTHORIZATION, value);
    }
    for cookie in from.get_all(COOKIE) {
        to.append(COOKIE, cookie.clone());
    }
}

/// The status of a REST error body (`{"code": <gRPC code>, "message": …}`).
fn status(error: &serde_json::Value, method: &MethodDescriptor) -> Status {
    let code = error
        .get("code")
        .and_then(serde_json::Value::as_i64)
        .and_then(|code| i32::try_from(code).ok())
        .map_or(Code::Unknown, Code::from_i32);
    if code == Code::Unimplemented {
        return unimplemented(method);
    }
    let message = error
        .get("message")
        .or_else(|| error.get("error"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("the request failed");
    Status::new(code, message)
}

fn response_message(
    method: &MethodDescriptor,
    encoder: &Encoder,
    json: &RawValue,
) -> Result<Bytes, Status> {
    encoder.encode(&method.output(), json).map_err(|err| {
        tracing::error!(
            method = method.full_name(),
            error = err,
            "answer does not fit the proto"
        );
        Status::internal(format!("the answer does not fit {err}"))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn event_data_is_read_across_chunks_and_comments_are_skipped() {
        let chunks = [
            ": keep-alive\n\ndata: {\"result\":",
            " 1}\n\n",
            "data:{\"result\": 2}\n\ndata: {\"result\": 3}",
        ]
        .map(|chunk| Ok(Bytes::from_static(chunk.as_bytes())));
        let data: Vec<Bytes> = event_data(futures::stream::iter(chunks))
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(
            data,
            [
                Bytes::from_static(b"{\"result\": 1}"),
                Bytes::from_static(b"{\"result\": 2}"),
                Bytes::from_static(b"{\"result\": 3}"),
            ]
        );
    }

    #[test]
    fn rest_errors_keep_their_grpc_codes() {
        let method = crate::method("/application.ApplicationService/Get").unwrap();
        let denied = status(&json!({"code": 7, "message": "permission denied"}), &method);
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert_eq!(denied.message(), "permission denied");
        let unimplemented = status(
            &json!({"code": 12, "message": "Method Not Allowed"}),
            &method,
        );
        assert_eq!(unimplemented.code(), Code::Unimplemented);
        assert_eq!(
            unimplemented.message(),
            "application.ApplicationService.Get is not implemented by ferry"
        );
        assert_eq!(
            status(&json!("not an error body"), &method).code(),
            Code::Unknown
        );
    }

    #[test]
    fn tokens_come_from_argo_cds_metadata_or_the_authorization_header() {
        let mut from = HeaderMap::new();
        from.insert(TOKEN_METADATA, HeaderValue::from_static("t0k"));
        from.insert(COOKIE, HeaderValue::from_static("argocd.token=c00kie"));
        let mut to = HeaderMap::new();
        forward_credentials(&from, &mut to);
        assert_eq!(to[AUTHORIZATION], "Bearer t0k");
        assert_eq!(to[COOKIE], "argocd.token=c00kie");
        from.insert(AUTHORIZATION, HeaderValue::from_static("Bearer other"));
        let mut to = HeaderMap::new();
        forward_credentials(&from, &mut to);
        assert_eq!(to[AUTHORIZATION], "Bearer other");
    }
}
