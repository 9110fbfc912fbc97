//! Solo mining against any Bytom-compatible node (bytomd, bystack-node) through its HTTP API
//! (spec protocols.md §A): `get-work-json` polled every `poll` interval, a new job published
//! when the template's `previous_block_hash` changes, shares posted to `submit-work-json`.
//!
//! The job keeps the timestamp of the get-work that made it; the node copies only the nonce
//! and the timestamp from a submission, so the header it checks is exactly the one mined.

use std::collections::VecDeque;
use std::time::Duration;

use bystack_engine::{BlockHeader, Hash};
use bystack_node::api::types::HeaderJson;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use crate::http::Endpoint;
use crate::work::{
    block_share_target, Job, Share, SourceError, SourceEvent, WorkSource, NONCE_LIMIT,
};

/// Jobs remembered for late shares.
const RECENT_JOBS: usize = 8;

/// The text bytomd and bystack-node give for work on a replaced template.
pub const STALE_WORK_TEXT: &str = "pending mining block has been changed";

#[derive(Debug, Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    msg: Option<String>,
    #[serde(default)]
    error_detail: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WorkJson {
    block_header: HeaderJson,
    seed: String,
}

/// What `submit-work-json` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `data: true`.
    Accepted,
    /// The template had changed.
    Stale,
    /// Any other refusal, with the node's text.
    Rejected(String),
}

/// A node's mining API.
#[derive(Debug, Clone)]
pub struct NodeClient {
    endpoint: Endpoint,
    timeout: Duration,
}

impl NodeClient {
    /// A client for `url` (`http://HOST:PORT`), each call limited to `timeout`.
    ///
    /// # Errors
    /// [`SourceError::Config`] for a bad URL.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, SourceError> {
        Ok(Self {
            endpoint: Endpoint::parse(url)?,
            timeout,
        })
    }

    /// The node's address for logs.
    pub fn base(&self) -> String {
        self.endpoint.base()
    }

    async fn call(&self, method: &str, body: &str) -> Result<Envelope, SourceError> {
        let (status, reply) = self
            .endpoint
            .post(&format!("/{method}"), body, self.timeout)
            .await?;
        match serde_json::from_slice::<Envelope>(&reply) {
            Ok(envelope) => Ok(envelope),
            Err(e) if status == 200 => {
                Err(self.protocol(format!("{method}: bad JSON envelope: {e}")))
            }
            Err(_) => Err(SourceError::Http {
                endpoint: self.base(),
                reason: format!(
                    "{method}: status {status}: {}",
                    String::from_utf8_lossy(&reply[..reply.len().min(200)])
                ),
            }),
        }
    }

    fn protocol(&self, reason: String) -> SourceError {
        SourceError::Protocol {
            endpoint: self.base(),
            reason,
        }
    }

    /// `get-work-json`: the header to mine and its seed.
    ///
    /// # Errors
    /// Transport errors, [`SourceError::Refused`] for a `fail` envelope,
    /// [`SourceError::Protocol`] for a malformed reply.
    pub async fn get_work(&self) -> Result<(BlockHeader, Hash), SourceError> {
        let envelope = self.call("get-work-json", "{}").await?;
        if envelope.status != "success" {
            return Err(SourceError::Refused {
                endpoint: self.base(),
                request: "get-work-json".into(),
                reason: failure_text(&envelope),
            });
        }
        let data = envelope
            .data
            .ok_or_else(|| self.protocol("get-work-json: success without data".into()))?;
        let work: WorkJson = serde_json::from_value(data)
            .map_err(|e| self.protocol(format!("get-work-json: {e}")))?;
        let header = work
            .block_header
            .to_header()
            .map_err(|e| self.protocol(format!("get-work-json: {e}")))?;
        let seed = Hash::from_hex(&work.seed)
            .map_err(|e| self.protocol(format!("get-work-json: seed {:?}: {e}", work.seed)))?;
        Ok((header, seed))
    }

    /// `submit-work-json` of a solved header.
    ///
    /// # Errors
    /// Transport errors and [`SourceError::Protocol`] for a malformed reply.
    pub async fn submit_work(&self, header: &BlockHeader) -> Result<Verdict, SourceError> {
        let body = serde_json::json!({ "block_header": HeaderJson::from_header(header) });
        let envelope = self.call("submit-work-json", &body.to_string()).await?;
        if envelope.status == "success" {
            return match envelope.data {
                Some(serde_json::Value::Bool(true)) => Ok(Verdict::Accepted),
                other => Err(self.protocol(format!(
                    "submit-work-json: success with data {other:?}, expected true"
                ))),
            };
        }
        let text = failure_text(&envelope);
        Ok(if text.contains(STALE_WORK_TEXT) {
            Verdict::Stale
        } else {
            Verdict::Rejected(text)
        })
    }
}

fn failure_text(envelope: &Envelope) -> String {
    match (&envelope.error_detail, &envelope.msg) {
        (Some(detail), _) if !detail.is_empty() => detail.clone(),
        (_, Some(msg)) => msg.clone(),
        _ => format!("status {:?}", envelope.status),
    }
}

/// The [`WorkSource`] of `--node`.
pub struct NodeSource {
    client: NodeClient,
    poll: Duration,
}

impl NodeSource {
    /// A source for the node at `url`, polling every `poll`.
    ///
    /// # Errors
    /// [`SourceError::Config`] for a bad URL.
    pub fn new(url: &str, poll: Duration) -> Result<Self, SourceError> {
        Ok(Self {
            client: NodeClient::new(url, Duration::from_secs(10))?,
            poll,
        })
    }
}

impl WorkSource for NodeSource {
    fn name(&self) -> String {
        self.client.base()
    }

    fn run(
        self: Box<Self>,
        jobs: watch::Sender<Option<Job>>,
        shares: mpsc::Receiver<Share>,
        events: mpsc::Sender<SourceEvent>,
        shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        run_node(*self, jobs, shares, events, shutdown).boxed()
    }
}

async fn run_node(
    source: NodeSource,
    jobs: watch::Sender<Option<Job>>,
    mut shares: mpsc::Receiver<Share>,
    events: mpsc::Sender<SourceEvent>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), SourceError> {
    let client = source.client;
    let endpoint = client.base();
    let mut recent: VecDeque<Job> = VecDeque::new();
    let mut connected = false;
    let mut poll = tokio::time::interval(source.poll);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return Ok(());
                }
            }
            _ = poll.tick() => match client.get_work().await {
                Ok((header, seed)) => {
                    if !connected {
                        connected = true;
                        let _ = events.send(SourceEvent::Connected { endpoint: endpoint.clone() }).await;
                    }
                    publish_if_new(&endpoint, &jobs, &mut recent, header, seed)?;
                }
                Err(e) => {
                    if connected {
                        connected = false;
                        jobs.send_replace(None);
                        let _ = events.send(SourceEvent::Disconnected {
                            endpoint: endpoint.clone(),
                            reason: e.to_string(),
                        }).await;
                    }
                    tracing::warn!("get-work-json from {endpoint}: {e}");
                }
            },
            share = shares.recv() => {
                let Some(share) = share else { return Ok(()) };
                let event = match recent.iter().find(|j| j.id == share.job_id) {
                    None => SourceEvent::Stale { job_id: share.job_id },
                    Some(job) => match client.submit_work(&job.solved_header(share.nonce)).await {
                        Ok(Verdict::Accepted) => SourceEvent::Accepted { job_id: share.job_id, block: true },
                        Ok(Verdict::Stale) => SourceEvent::Stale { job_id: share.job_id },
                        Ok(Verdict::Rejected(reason)) => SourceEvent::Rejected { job_id: share.job_id, reason },
                        Err(e) => SourceEvent::Rejected { job_id: share.job_id, reason: format!("not delivered: {e}") },
                    },
                };
                let _ = events.send(event).await;
                // The template has most likely changed: look now rather than at the next tick.
                poll.reset_immediately();
            }
        }
    }
}

/// Publishes a job for `header` unless the newest job already has its parent.
fn publish_if_new(
    endpoint: &str,
    jobs: &watch::Sender<Option<Job>>,
    recent: &mut VecDeque<Job>,
    header: BlockHeader,
    seed: Hash,
) -> Result<(), SourceError> {
    let current = jobs.borrow().is_some();
    if current
        && recent
            .back()
            .is_some_and(|j| j.header.previous_block_hash == header.previous_block_hash)
    {
        return Ok(());
    }
    let job = Job {
        id: format!(
            "{}-{}",
            header.height,
            &header.previous_block_hash.to_hex()[..8]
        ),
        share_target: block_share_target(endpoint, header.bits)?,
        header,
        seed,
        nonce_start: 0,
        nonce_end: NONCE_LIMIT,
        clean: true,
    };
    recent.push_back(job.clone());
    while recent.len() > RECENT_JOBS {
        recent.pop_front();
    }
    jobs.send_replace(Some(job));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves each reply in turn, one per connection, then closes.
    async fn canned(replies: Vec<&'static str>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for reply in replies {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        format!("http://{addr}")
    }

    fn ok(body: &str) -> &'static str {
        Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_boxed_str(),
        )
    }

    #[tokio::test]
    async fn malformed_node_replies_are_typed_errors() {
        let good_header = r#"{"version":1,"height":1,"previous_block_hash":"00000000000000000000000000000000000000000000000000000000000000aa","timestamp":5,"nonce":0,"bits":2305843009213956096,"block_commitment":{"transaction_merkle_root":"0000000000000000000000000000000000000000000000000000000000000001","transaction_status_hash":"0000000000000000000000000000000000000000000000000000000000000002"}}"#;
        let good = ok(Box::leak(
            format!(
                r#"{{"status":"success","data":{{"block_header":{good_header},"seed":"{}"}}}}"#,
                "11".repeat(32)
            )
            .into_boxed_str(),
        ));
        let url = canned(vec![
            good,
            ok("not json"),
            ok(r#"{"status":"success"}"#),
            ok(r#"{"status":"success","data":{"block_header":{"version":1},"seed":"00"}}"#),
            ok(r#"{"status":"fail","code":"BTM000","msg":"Bytom API Error","error_detail":"no template"}"#),
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops",
            ok(r#"{"status":"fail","code":"BTM000","msg":"Bytom API Error","error_detail":"pending mining block has been changed"}"#),
            ok(r#"{"status":"success","data":false}"#),
        ])
        .await;
        let client = NodeClient::new(&url, Duration::from_secs(5)).unwrap();
        let (header, seed) = client.get_work().await.unwrap();
        assert_eq!(header.height, 1);
        assert_eq!(header.bits, 0x2000_0000_0004_0000);
        assert_eq!(seed, Hash([0x11; 32]));
        assert_eq!(
            HeaderJson::from_header(&header).to_header().unwrap(),
            header
        );
        for expect_protocol in [true, true, true] {
            let err = client.get_work().await.unwrap_err();
            assert_eq!(
                matches!(err, SourceError::Protocol { .. }),
                expect_protocol,
                "{err}"
            );
        }
        assert!(matches!(
            client.get_work().await,
            Err(SourceError::Refused { .. })
        ));
        assert!(matches!(
            client.get_work().await,
            Err(SourceError::Http { .. })
        ));
        assert_eq!(client.submit_work(&header).await.unwrap(), Verdict::Stale);
        assert!(matches!(
            client.submit_work(&header).await,
            Err(SourceError::Protocol { .. })
        ));
    }
}
