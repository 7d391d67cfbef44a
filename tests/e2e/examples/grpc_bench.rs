//! Argo CD's gRPC API against the REST route it is answered by: `--apps N` Application objects
//! (default 1,000) served by the real ferry-server on a sandbox, then `--requests R` calls
//! (default 2,000) of `ApplicationService.List` and of `ApplicationService.Get`, `--concurrency C`
//! at a time (default 16), through tonic (Argo CD's messages, HTTP/2) and through REST
//! (reqwest, HTTP/1.1 keep-alive); prints latency p50/p99 and throughput of each. A List of
//! all apps is the heavy call (the whole list encoded as protobuf), a Get the light one.
//!
//! `cargo build -p ferry-server && cargo run -p ferry-e2e --example grpc_bench -- --apps 1000`

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::{Buf, Bytes};
use ferry_e2e::Story;
use ferry_grpc::codec::DynamicCodec;
use ferry_grpc::json::to_message;
use futures::StreamExt;
use kube::api::{DynamicObject, PostParams};
use serde_json::json;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic::transport::Channel;

/// Encodes requests as `DynamicCodec` does and keeps answers as their bytes.
#[derive(Clone)]
struct RawCodec(DynamicCodec);

struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

impl Codec for RawCodec {
    type Encode = prost_reflect::DynamicMessage;
    type Decode = Bytes;
    type Encoder = <DynamicCodec as Codec>::Encoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

fn flag(name: &str, default: usize) -> Result<usize> {
    Ok(std::env::args()
        .skip_while(|arg| arg != name)
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(default))
}

fn app(namespace: &str, index: usize) -> Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": format!("bench-{index:04}"), "namespace": namespace,
                     "labels": {"team": format!("team-{}", index % 7)}},
        "spec": {
            "project": "default",
            "source": {"repoURL": format!("https://git.example/repo-{}.git", index % 13),
                       "path": "guestbook", "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc",
                            "namespace": format!("ns-{}", index % 20)},
        },
        "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}},
    }))?)
}

/// One way of making a call.
#[derive(Clone)]
enum Caller {
    Grpc {
        channel: Channel,
        token: String,
    },
    Rest {
        http: reqwest::Client,
        base: String,
        token: String,
    },
}

impl Caller {
    /// One call of `method` (`List` or `Get`); how many bytes of answer it got.
    async fn call(&self, method: &str, app: &str) -> Result<usize> {
        match self {
            Caller::Grpc { channel, token } => {
                let path = format!("/application.ApplicationService/{method}");
                let descriptor = ferry_grpc::method(&path).context("a method of Argo CD's")?;
                let request = if method == "Get" {
                    json!({"name": app})
                } else {
                    json!({})
                };
                let mut request = tonic::Request::new(
                    to_message(&descriptor.input(), request).map_err(anyhow::Error::msg)?,
                );
                request.metadata_mut().insert("token", token.parse()?);
                let mut grpc = tonic::client::Grpc::new(channel.clone());
                grpc.ready().await?;
                // The answer's bytes, not decoded here: the REST side does not parse its JSON
                // either, so both measure the server.
                let response = grpc
                    .unary(
                        request,
                        http::uri::PathAndQuery::from_str(&path)?,
                        RawCodec(DynamicCodec::new(descriptor.output())),
                    )
                    .await?;
                Ok(response.get_ref().len())
            }
            Caller::Rest { http, base, token } => {
                let url = if method == "Get" {
                    format!("{base}/api/v1/applications/{app}")
                } else {
                    format!("{base}/api/v1/applications")
                };
                let body = http
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await?;
                Ok(body.len())
            }
        }
    }
}

/// `requests` calls, `concurrency` at a time: the sorted latencies, the wall time, the answer size.
async fn measure(
    caller: &Caller,
    method: &str,
    apps: usize,
    requests: usize,
    concurrency: usize,
) -> Result<(Vec<Duration>, Duration, usize)> {
    let caller = Arc::new(caller.clone());
    let started = Instant::now();
    let results: Vec<Result<(Duration, usize)>> = futures::stream::iter(0..requests)
        .map(|index| {
            let caller = Arc::clone(&caller);
            async move {
                let app = format!("bench-{:04}", (index * 7919) % apps);
                let start = Instant::now();
                let size = caller.call(method, &app).await?;
                Ok((start.elapsed(), size))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    let mut latencies = Vec::with_capacity(requests);
    let mut size = 0;
    for result in results {
        let (latency, bytes) = result?;
        latencies.push(latency);
        size = bytes;
    }
    latencies.sort();
    Ok((latencies, wall, size))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let apps = flag("--apps", 1000)?;
    let requests = flag("--requests", 2000)?;
    let concurrency = flag("--concurrency", 16)?;
    let story = Story::new().await?;
    for index in 0..apps {
        story
            .apps()
            .create(&PostParams::default(), &app(story.namespace(), index)?)
            .await?;
    }
    let server = story.start_server().await?;
    let base = format!("http://{}", server.address());
    let http = reqwest::Client::new();
    let token = story.admin_token(&server).await?;
    let grpc = Caller::Grpc {
        channel: Channel::from_shared(base.clone())?.connect().await?,
        token: token.clone(),
    };
    let rest = Caller::Rest { http, base, token };
    println!("{apps} apps, {requests} calls each, {concurrency} at a time");
    for method in ["List", "Get"] {
        // A warm-up round, so that both paths start with open connections and listed apps.
        for caller in [&grpc, &rest] {
            measure(caller, method, apps, concurrency * 2, concurrency).await?;
        }
        // Fewer Lists of the whole set: each one carries every app.
        let calls = if method == "List" {
            requests / 10
        } else {
            requests
        };
        for (name, caller) in [("gRPC", &grpc), ("REST", &rest)] {
            let (latencies, wall, size) = measure(caller, method, apps, calls, concurrency).await?;
            println!(
                "{method:<4} {name}: {calls} calls, p50 {:.1} ms, p99 {:.1} ms, {:.0} calls/s, {:.0} KiB per answer",
                percentile(&latencies, 0.50),
                percentile(&latencies, 0.99),
                calls as f64 / wall.as_secs_f64(),
                size as f64 / 1024.0,
            );
        }
    }
    Ok(())
}
