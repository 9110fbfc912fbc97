//! One stratum connection: a reader task that cuts lines (and enforces the line cap), and the
//! session task that answers them, pushes jobs, retargets and times out.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::protocol::{
    job_notification, parse_nonce, parse_request, reply_error, reply_ok, ErrorCode, JobFields,
    LoginParams, Request, ShareTarget, SubmitParams,
};
use super::{lock, seconds_since, Admission, JobTemplate, SessionSnapshot, StratumServer};
use crate::store::KvStore;
use bystack_engine::pow::HeaderTemplate;
use bystack_engine::Hash;

/// Longest login string kept.
const MAX_LOGIN: usize = 256;
/// How often vardiff looks at the session.
const VARDIFF_TICK: Duration = Duration::from_millis(500);
/// How long a login waits for the server's first template.
const FIRST_TEMPLATE_WAIT: Duration = Duration::from_secs(5);
/// Largest vardiff step, either way.
const MAX_STEP: f64 = 4.0;

/// What the reader task hands over.
enum Incoming {
    Line(Vec<u8>),
    TooLong,
}

async fn read_lines(read: OwnedReadHalf, max_line: usize, lines: mpsc::Sender<Incoming>) {
    let mut reader = BufReader::new(read);
    loop {
        let mut line = Vec::new();
        let limit = max_line as u64 + 2; // the line, "\r\n"
        match (&mut reader).take(limit).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let complete = line.last() == Some(&b'\n');
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.len() > max_line {
            let _ = lines.send(Incoming::TooLong).await;
            return;
        }
        if !complete {
            return; // end of stream inside a line
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if lines.send(Incoming::Line(line)).await.is_err() {
            return;
        }
    }
}

/// A job this session was sent.
struct Job {
    id: u64,
    template: Arc<JobTemplate>,
    /// The job's own timestamp: two jobs of one template never share a header, so a miner
    /// that restarts its nonces on every job (as miners do) never repeats a share.
    timestamp: u64,
    /// The header ID preimage at that timestamp.
    header: HeaderTemplate,
    target: ShareTarget,
}

struct Session<K: KvStore> {
    server: Arc<StratumServer<K>>,
    slot: usize,
    login: Option<String>,
    jobs: VecDeque<Job>,
    difficulty: u64,
    stats: Arc<Mutex<SessionSnapshot>>,
    login_time: Option<Instant>,
    /// Sum of the difficulties of accepted shares (expected hashes).
    work: f64,
    window_start: Instant,
    window_shares: u64,
}

pub(super) async fn run<K: KvStore + 'static>(
    server: Arc<StratumServer<K>>,
    stream: TcpStream,
    peer: SocketAddr,
    admission: Admission<K>,
) {
    let slot = admission.slot;
    let config = server.config.clone();
    let (read, mut write) = stream.into_split();
    let (lines_tx, mut lines) = mpsc::channel(4);
    let reader = tokio::spawn(read_lines(read, config.max_line, lines_tx));
    let difficulty = config
        .initial_difficulty
        .clamp(config.min_difficulty, config.max_difficulty);
    let stats = Arc::new(Mutex::new(SessionSnapshot {
        slot,
        peer,
        login: None,
        agent: None,
        difficulty: ShareTarget::from_difficulty(difficulty).difficulty(),
        accepted: 0,
        rejected: 0,
        blocks: 0,
        hash_rate: 0.0,
        mining_seconds: 0.0,
    }));
    lock(&server.sessions).insert(slot, stats.clone());
    let mut jobs_rx = server.jobs.subscribe();
    jobs_rx.mark_unchanged();
    let mut shutdown = server.shutdown.subscribe();
    let mut session = Session {
        server: server.clone(),
        slot,
        login: None,
        jobs: VecDeque::new(),
        difficulty,
        stats,
        login_time: None,
        work: 0.0,
        window_start: Instant::now(),
        window_shares: 0,
    };
    let mut vardiff = tokio::time::interval(VARDIFF_TICK);
    let idle = tokio::time::sleep(config.idle_timeout);
    tokio::pin!(idle);
    loop {
        let mut out = Vec::new();
        let mut close = false;
        tokio::select! {
            incoming = lines.recv() => match incoming {
                Some(Incoming::Line(line)) => {
                    idle.as_mut().reset(tokio::time::Instant::now() + config.idle_timeout);
                    close = session.handle(&line, &mut out).await;
                }
                Some(Incoming::TooLong) => {
                    server.counters.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "stratum: line over the cap");
                    break;
                }
                None => break,
            },
            changed = jobs_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                if session.login.is_some() && !session.has_newest_template() {
                    if let Some(job) = session.new_job() {
                        idle.as_mut().reset(tokio::time::Instant::now() + config.idle_timeout);
                        out.push(job_notification(&job));
                    }
                }
            },
            _ = vardiff.tick() => {
                if session.retarget() {
                    if let Some(job) = session.new_job() {
                        out.push(job_notification(&job));
                    }
                }
            },
            _ = &mut idle => {
                tracing::debug!(%peer, "stratum: idle timeout");
                break;
            },
            _ = shutdown.changed() => break,
        }
        if !out.is_empty() && !send(&mut write, &out, config.write_timeout).await {
            break;
        }
        if close {
            break;
        }
    }
    reader.abort();
    drop(admission);
}

/// Writes `messages` as lines; false when the peer is gone or too slow.
async fn send(write: &mut OwnedWriteHalf, messages: &[Value], timeout: Duration) -> bool {
    let mut bytes = Vec::new();
    for message in messages {
        if serde_json::to_writer(&mut bytes, message).is_err() {
            return false;
        }
        bytes.push(b'\n');
    }
    matches!(
        tokio::time::timeout(timeout, write.write_all(&bytes)).await,
        Ok(Ok(()))
    )
}

impl<K: KvStore + 'static> Session<K> {
    /// Answers one line into `out`; true when the session must end.
    async fn handle(&mut self, line: &[u8], out: &mut Vec<Value>) -> bool {
        let counters = &self.server.counters;
        let (id, request) = match parse_request(line) {
            Ok(parsed) => parsed,
            Err(bad) => {
                counters.protocol_errors.fetch_add(1, Ordering::Relaxed);
                out.push(reply_error(&bad.id, bad.code, &bad.message));
                return true;
            }
        };
        match request {
            Ok(Request::Login(params)) => self.login(&id, params, out).await,
            Ok(Request::Submit(params)) => {
                let reply = match self.submit(params).await {
                    Ok(()) => reply_ok(&id, json!({"status": "OK"})),
                    Err((code, message)) => {
                        lock(&self.stats).rejected += 1;
                        reply_error(&id, code, message)
                    }
                };
                out.push(reply);
            }
            Err((code, message)) => {
                if code == ErrorCode::InvalidSubmitFormat {
                    counters.cheap_rejections.fetch_add(1, Ordering::Relaxed);
                    lock(&self.stats).rejected += 1;
                }
                out.push(reply_error(&id, code, &message));
            }
        }
        false
    }

    async fn login(&mut self, id: &Value, params: LoginParams, out: &mut Vec<Value>) {
        if self.login.is_some() {
            out.push(reply_error(
                id,
                ErrorCode::MultipleAuthorization,
                "Multiple Authorization",
            ));
            return;
        }
        let login = params.login.trim();
        let valid = !login.is_empty()
            && login.len() <= MAX_LOGIN
            && !login.starts_with('.')
            && login.chars().all(|c| !c.is_control());
        if !valid {
            out.push(reply_error(
                id,
                ErrorCode::InvalidAuthorizeFormat,
                "Invalid Authorize Format",
            ));
            return;
        }
        // Right after start the first template may still be on its way.
        let mut jobs = self.server.jobs.subscribe();
        let _ = tokio::time::timeout(FIRST_TEMPLATE_WAIT, jobs.wait_for(Option::is_some)).await;
        self.login = Some(login.to_string());
        let now = Instant::now();
        self.login_time = Some(now);
        self.window_start = now;
        {
            let mut stats = lock(&self.stats);
            stats.login = Some(login.to_string());
            stats.agent = params.agent.map(|a| a.chars().take(MAX_LOGIN).collect());
        }
        match self.new_job() {
            Some(job) => {
                out.push(reply_ok(
                    id,
                    json!({"id": login, "status": "OK", "job": job}),
                ));
                out.push(job_notification(&job));
            }
            None => out.push(reply_error(id, ErrorCode::Unknown, "no job available")),
        }
    }

    /// Whether the newest job sent is of the server's current template.
    fn has_newest_template(&self) -> bool {
        let current = self.server.jobs.borrow();
        match (current.as_ref(), self.jobs.back()) {
            (Some(current), Some(job)) => Arc::ptr_eq(current, &job.template),
            _ => false,
        }
    }

    /// A job of the current template at the current difficulty, remembered in the ring.
    fn new_job(&mut self) -> Option<Value> {
        let template = self.server.jobs.borrow().clone()?;
        let target = ShareTarget::from_difficulty(self.difficulty);
        let id = self.server.new_job_id();
        let header = &template.block.header;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut timestamp = header.timestamp.max(now);
        if let Some(last) = self.jobs.back() {
            if Arc::ptr_eq(&last.template, &template) && timestamp <= last.timestamp {
                timestamp = last.timestamp + 1;
            }
        }
        let fields = JobFields {
            job_id: id,
            version: header.version,
            height: header.height,
            previous_block_hash: header.previous_block_hash,
            timestamp,
            transactions_merkle_root: header.transactions_merkle_root,
            transaction_status_hash: header.transaction_status_hash,
            nonce: self.server.nonce_prefix(self.slot),
            bits: header.bits,
            seed: Hash(template.seed),
            target,
        };
        let header = HeaderTemplate::new(
            header.version,
            header.height,
            &header.previous_block_hash.0,
            timestamp,
            &header.transactions_merkle_root.0,
            &header.transaction_status_hash.0,
            header.bits,
        );
        self.jobs.push_back(Job {
            id,
            template,
            timestamp,
            header,
            target,
        });
        while self.jobs.len() > self.server.config.job_ring {
            self.jobs.pop_front();
        }
        lock(&self.stats).difficulty = target.difficulty();
        Some(fields.to_json())
    }

    /// Checks and verifies one share.
    async fn submit(&mut self, params: SubmitParams) -> Result<(), (ErrorCode, &'static str)> {
        let counters = &self.server.counters;
        let cheap = |code, message| {
            counters.cheap_rejections.fetch_add(1, Ordering::Relaxed);
            Err((code, message))
        };
        if self.login.as_deref() != Some(params.id.as_str()) {
            return cheap(ErrorCode::UnauthorizedWorker, "Unauthorized Worker");
        }
        let Some(job) = params
            .job_id
            .parse::<u64>()
            .ok()
            .and_then(|id| self.jobs.iter().find(|j| j.id == id))
        else {
            return cheap(ErrorCode::JobNotFound, "Job Not Found");
        };
        let Some(nonce) = parse_nonce(&params.nonce) else {
            return cheap(
                ErrorCode::InvalidSubmitFormat,
                "Invalid Submit Format: nonce",
            );
        };
        let current_height = self.server.jobs.borrow().as_ref().map(|t| t.height());
        if current_height != Some(job.template.height()) {
            return cheap(ErrorCode::InvalidSubmitFormat, "Stale share");
        }
        let claimed_low = params.result.as_deref().is_some_and(|r| {
            bystack_kernels::hex::decode32(r).is_ok_and(|pow| {
                !job.target.is_met_by(&pow) && !job.template.block_target.is_met_by(&pow)
            })
        });
        if claimed_low {
            return cheap(ErrorCode::LowDifficulty, "Low difficulty share");
        }
        let share_key = (job.timestamp, nonce);
        if !lock(&job.template.submitted).insert(share_key) {
            return cheap(ErrorCode::DuplicateShare, "Duplicate Share");
        }
        let template = job.template.clone();
        let target = job.target;
        let timestamp = job.timestamp;
        let header_hash = job.header.header_hash(nonce);
        let verified = self
            .server
            .verifier
            .verify(template.seed, header_hash)
            .await;
        counters.verified.fetch_add(1, Ordering::Relaxed);
        let pow = match verified {
            Ok(pow) => pow,
            Err(e) => {
                tracing::warn!(error = %e, "stratum: share verification failed");
                lock(&template.submitted).remove(&share_key);
                return Err((ErrorCode::Unknown, "verification failed"));
            }
        };
        // A block is always a share (spec §B.4 checks the network target first), credited at
        // the easier of the two targets: the one a miner effectively searches with.
        let is_block = template.block_target.is_met_by(&pow);
        if !is_block && !target.is_met_by(&pow) {
            lock(&template.submitted).remove(&share_key);
            counters.low_difficulty.fetch_add(1, Ordering::Relaxed);
            return Err((ErrorCode::LowDifficulty, "Low difficulty share"));
        }
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        self.work += target.difficulty().min(template.block_difficulty);
        self.window_shares += 1;
        {
            let mut stats = lock(&self.stats);
            stats.accepted += 1;
            if is_block {
                stats.blocks += 1;
            }
            self.update_rate(&mut stats);
        }
        if is_block {
            counters.blocks_found.fetch_add(1, Ordering::Relaxed);
            self.submit_block(&template, nonce, timestamp);
        }
        Ok(())
    }

    fn update_rate(&self, stats: &mut SessionSnapshot) {
        if let Some(start) = self.login_time {
            let seconds = seconds_since(start);
            stats.mining_seconds = seconds;
            stats.hash_rate = if seconds > 0.0 {
                self.work / seconds
            } else {
                0.0
            };
        }
    }

    /// Hands a block found by a share to the node, off the runtime.
    fn submit_block(&self, template: &JobTemplate, nonce: u64, timestamp: u64) {
        let mut block = template.block.clone();
        block.header.timestamp = timestamp;
        block.header.nonce = nonce;
        let server = self.server.clone();
        let login = self.login.clone().unwrap_or_default();
        tokio::task::spawn_blocking(move || match server.node.submit_block(block) {
            Ok(outcome) => {
                server.counters.count_block(Some(outcome.status));
                tracing::info!(%login, height = outcome.tip.height, status = ?outcome.status, "stratum: block found");
            }
            Err(e) => {
                server.counters.count_block(None);
                tracing::warn!(%login, error = %e, "stratum: found block refused");
            }
        });
    }

    /// Vardiff: moves the difficulty towards one share per target interval. True when it
    /// changed (the caller sends a job with the new target).
    fn retarget(&mut self) -> bool {
        {
            let mut stats = lock(&self.stats);
            self.update_rate(&mut stats);
        }
        if self.login.is_none() {
            return false;
        }
        let config = &self.server.config;
        let elapsed = self.window_start.elapsed();
        let interval = config.target_share_interval.as_secs_f64().max(1e-3);
        let expected_in_window = config.retarget_window.as_secs_f64() / interval;
        let flooding = self.window_shares as f64 >= 2.0 * expected_in_window.max(1.0);
        if elapsed < config.retarget_window && !flooding {
            return false;
        }
        let observed = self.window_shares as f64 * interval / elapsed.as_secs_f64().max(1e-3);
        let factor = if self.window_shares == 0 {
            1.0 / MAX_STEP
        } else {
            observed.clamp(1.0 / MAX_STEP, MAX_STEP)
        };
        self.window_start = Instant::now();
        self.window_shares = 0;
        let wanted = (self.difficulty as f64 * factor).round() as u64;
        // Above the block's own difficulty every share is a block: no point going higher.
        let block_cap = self
            .server
            .jobs
            .borrow()
            .as_ref()
            .map_or(f64::INFINITY, |t| t.block_difficulty.ceil());
        let ceiling = if block_cap < config.max_difficulty as f64 {
            (block_cap as u64).max(config.min_difficulty)
        } else {
            config.max_difficulty
        };
        let next = wanted.clamp(config.min_difficulty, ceiling);
        if next == self.difficulty {
            return false;
        }
        self.difficulty = next;
        true
    }
}
