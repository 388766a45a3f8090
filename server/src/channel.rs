//! Agent-dialed connections: how the server reads an agent it cannot connect to.
//!
//! An agent behind NAT, in another network or on a laptop reaches the server, but the server
//! cannot reach it. Such an agent keeps a long poll open instead:
//! `POST /api/v1/agents/{instance}/channel` waits up to `--channel-wait` for a request and
//! answers it as JSON ([`Request`]), or `204` when none came. The agent runs the request
//! through the same handler that serves its port, with the same `Authorization` the server
//! would have sent, and posts the answer to `POST /api/v1/agents/{instance}/channel/{id}`
//! ([`Reply`]). The server then treats it exactly as the answer of a pull (`pull.rs`): same
//! checks, same limits, same timeout. Plain HTTP requests, each shorter than common proxy and
//! load balancer idle timeouts, so the connection works through them.
//!
//! Which way a pull goes: through the instance's channel while its agent polls this server (a
//! poll is waiting, or one ended within [`GRACE`]); through the database while it polls
//! another server sharing it (its `channel_seen` is recent: [`Channels::elsewhere`]), whose
//! [`serve_relayed`] takes the request, hands it to the agent and writes the answer back;
//! directly otherwise. An agent opens its channel when the server's heartbeat answer asks for
//! it: always under `--agent-channel always`, and under `auto` once a pull of it could not
//! connect.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Notify, oneshot};

/// How long after its last poll ended an agent still counts as connected: the time it takes
/// to post an answer and poll again.
pub const GRACE: Duration = Duration::from_secs(5);

/// When the server asks agents to open their channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Once a pull of the instance could not connect.
    #[default]
    Auto,
    /// Always: every pull goes through a channel.
    Always,
    /// Never: the server only pulls.
    Never,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s {
            "auto" => Ok(Mode::Auto),
            "always" => Ok(Mode::Always),
            "never" => Ok(Mode::Never),
            _ => Err(format!("{s:?}: want auto, always or never")),
        }
    }
}

/// A request for an agent, as a poll answers it.
#[derive(Debug, Clone, Serialize)]
pub struct Request {
    /// Names the answer: `POST …/channel/{id}`.
    pub id: String,
    pub method: &'static str,
    /// Path and query on the agent, as a pull would ask it (`/livecov/v1/counters`).
    pub path: String,
    /// What a pull would send as `Authorization`: the instance's secret or the agent token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
}

/// An agent's answer to a [`Request`] (defined with the store, which relays answers between
/// servers).
pub use crate::store::AgentReply as Reply;

/// A request posted to an instance and not yet answered.
struct Pending {
    request: Request,
    /// The largest body the asker accepts.
    limit: usize,
    answer: oneshot::Sender<Reply>,
    /// The secret shown by the poll that took it, which its answer must show too.
    secret: Option<String>,
}

/// Whether a request waits for an answer (`Channels::awaited`).
#[derive(Debug, PartialEq, Eq)]
pub enum Awaited {
    /// It does, of at most this many bytes.
    Yes(usize),
    /// It does, but not from whoever shows this secret.
    WrongSecret,
    /// No such request waits.
    No,
}

/// One instance's channel.
#[derive(Default)]
struct Link {
    state: Mutex<LinkState>,
    /// Woken when a request is queued.
    queued: Notify,
}

#[derive(Default)]
struct LinkState {
    /// Requests not yet taken by a poll.
    queue: VecDeque<Pending>,
    /// Requests taken by a poll, by id, until their answer comes.
    taken: HashMap<String, Pending>,
    /// Polls waiting now.
    polls: usize,
    /// When the last poll ended.
    last: Option<Instant>,
}

impl LinkState {
    fn connected(&self, now: Instant) -> bool {
        self.polls > 0 || self.last.is_some_and(|t| now.duration_since(t) < GRACE)
    }
}

/// Why a request through a channel got no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum ChannelError {
    /// The instance keeps no channel to this server.
    NotConnected,
    /// No answer within the timeout.
    Timeout,
    /// The answer is larger than the asker accepts.
    TooLarge(usize),
}

impl std::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelError::NotConnected => write!(f, "the agent no longer polls its server"),
            ChannelError::Timeout => write!(f, "no answer from the agent in time"),
            ChannelError::TooLarge(n) => write!(f, "the answer is over the limit of {n} bytes"),
        }
    }
}

/// Every channel of this server.
#[derive(Default)]
pub struct Channels {
    links: Mutex<HashMap<String, Arc<Link>>>,
    /// Instances a pull could not connect to, and when: their heartbeats ask for a channel.
    unreachable: Mutex<HashMap<String, Instant>>,
    next: AtomicU64,
    mode: Mode,
    /// `--channel-wait`: a poll lasts at most this.
    wait: Duration,
}

impl Channels {
    pub fn new(mode: Mode, wait: Duration) -> Channels {
        Channels {
            mode,
            wait,
            ..Channels::default()
        }
    }

    /// Whether an instance whose agent last polled a server at `seen` (ms since the epoch,
    /// `channel_seen`) still does: it polls another server if not this one.
    pub fn elsewhere(&self, seen: Option<i64>) -> bool {
        let recent = (self.wait + GRACE).as_millis() as i64;
        self.mode != Mode::Never && seen.is_some_and(|t| crate::store::now_ms() - t < recent)
    }

    /// Whether the agent of `instance` should keep a channel open (its heartbeat answer).
    pub fn wanted(&self, instance: &str) -> bool {
        match self.mode {
            Mode::Always => true,
            Mode::Never => false,
            Mode::Auto => self.unreachable.lock().unwrap().contains_key(instance),
        }
    }

    /// Records that a pull of `instance` could not connect.
    pub fn unreachable(&self, instance: &str) {
        if self.mode == Mode::Auto {
            self.unreachable
                .lock()
                .unwrap()
                .insert(instance.to_string(), Instant::now());
        }
    }

    /// Whether the agent of `instance` polls this server now.
    pub fn connected(&self, instance: &str) -> bool {
        self.mode != Mode::Never
            && self
                .links
                .lock()
                .unwrap()
                .get(instance)
                .is_some_and(|l| l.state.lock().unwrap().connected(Instant::now()))
    }

    /// Whether the server reads `instance`, whose agent last polled a server at `seen`, over
    /// a channel: its own or another server's.
    pub fn reads_over(&self, instance: &str, seen: Option<i64>) -> bool {
        self.connected(instance) || self.elsewhere(seen)
    }

    /// How many agents poll this server now.
    pub fn open(&self) -> usize {
        let now = Instant::now();
        self.links
            .lock()
            .unwrap()
            .values()
            .filter(|l| l.state.lock().unwrap().connected(now))
            .count()
    }

    fn link(&self, instance: &str) -> Arc<Link> {
        self.links
            .lock()
            .unwrap()
            .entry(instance.to_string())
            .or_default()
            .clone()
    }

    /// A poll of `instance`'s agent, already authenticated by `secret`: the next request for
    /// it, or None if none came within `wait`.
    pub async fn poll(
        &self,
        instance: &str,
        wait: Duration,
        secret: Option<&str>,
    ) -> Option<Request> {
        let link = self.link(instance);
        link.state.lock().unwrap().polls += 1;
        // Ends the poll however the future ends: the client may hang up while it waits.
        struct Polling(Arc<Link>);
        impl Drop for Polling {
            fn drop(&mut self) {
                let mut s = self.0.state.lock().unwrap();
                s.polls -= 1;
                s.last = Some(Instant::now());
            }
        }
        let _polling = Polling(link.clone());
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before the queue is looked at, so that a request queued in between
            // still wakes this poll.
            let queued = link.queued.notified();
            {
                let mut s = link.state.lock().unwrap();
                while let Some(mut p) = s.queue.pop_front() {
                    // An asker that gave up no longer waits for this.
                    if p.answer.is_closed() {
                        continue;
                    }
                    p.secret = secret.map(str::to_string);
                    let request = p.request.clone();
                    s.taken.insert(request.id.clone(), p);
                    return Some(request);
                }
            }
            if tokio::time::timeout_at(deadline, queued).await.is_err() {
                return None;
            }
        }
    }

    /// Whether request `id` of `instance` waits for an answer from whoever shows `secret`:
    /// the agent whose poll took it. Checked in memory, so that an answer costs the database
    /// nothing.
    pub fn awaited(&self, instance: &str, id: &str, secret: Option<&str>) -> Awaited {
        let links = self.links.lock().unwrap();
        let Some(link) = links.get(instance) else {
            return Awaited::No;
        };
        let s = link.state.lock().unwrap();
        match s.taken.get(id).filter(|p| !p.answer.is_closed()) {
            None => Awaited::No,
            Some(p) => match &p.secret {
                Some(held) if !crate::secret::same(secret, held) => Awaited::WrongSecret,
                _ => Awaited::Yes(p.limit),
            },
        }
    }

    /// Hands the answer to request `id` of `instance` to its asker; false if none waits.
    pub fn answer(&self, instance: &str, id: &str, reply: Reply) -> bool {
        let pending = {
            let links = self.links.lock().unwrap();
            let Some(link) = links.get(instance) else {
                return false;
            };
            link.state.lock().unwrap().taken.remove(id)
        };
        match pending {
            Some(p) if reply.body.len() <= p.limit => p.answer.send(reply).is_ok(),
            Some(_) | None => false,
        }
    }

    /// Sends a request to `instance`'s agent over its channel and waits for the answer, at
    /// most `timeout` in all.
    pub async fn request(
        &self,
        instance: &str,
        method: &'static str,
        path: String,
        authorization: Option<String>,
        limit: usize,
        timeout: Duration,
    ) -> Result<Reply, ChannelError> {
        if !self.connected(instance) {
            return Err(ChannelError::NotConnected);
        }
        let link = self.link(instance);
        let id = format!("{:x}", self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let (tx, rx) = oneshot::channel();
        link.state.lock().unwrap().queue.push_back(Pending {
            request: Request {
                id: id.clone(),
                method,
                path,
                authorization,
            },
            limit,
            answer: tx,
            secret: None,
        });
        link.queued.notify_one();
        let out = tokio::time::timeout(timeout, rx).await;
        // Whatever happened, nothing of this request stays behind.
        {
            let mut s = link.state.lock().unwrap();
            s.taken.remove(&id);
            s.queue.retain(|p| p.request.id != id);
        }
        match out {
            Ok(Ok(reply)) => Ok(reply),
            // The answer was refused for its size (see `answer`).
            Ok(Err(_)) => Err(ChannelError::TooLarge(limit)),
            Err(_) => Err(ChannelError::Timeout),
        }
    }

    /// Forgets the channels whose agents stopped polling, and the instances that could not
    /// be connected to longer ago than `keep` (an agent that opened its channel keeps it;
    /// one that never polled is gone or cannot reach the server either).
    pub fn prune(&self, keep: Duration) {
        let now = Instant::now();
        self.links.lock().unwrap().retain(|_, l| {
            let s = l.state.lock().unwrap();
            s.connected(now) || !s.queue.is_empty() || !s.taken.is_empty()
        });
        self.unreachable
            .lock()
            .unwrap()
            .retain(|_, at| now.duration_since(*at) < keep);
    }
}

/// How often a server that holds channels looks for requests other servers wrote for them:
/// every [`RELAY_SOON`] after it found one, backing off to every [`RELAY_IDLE`] while it finds
/// none (what a server with channels costs the database when idle).
const RELAY_SOON: Duration = Duration::from_millis(50);
const RELAY_IDLE: Duration = Duration::from_millis(500);

/// Requests that other servers wrote for the agents that poll this one: taken, handed to the
/// agent, answered in the database (an answer of status 0 says why there is none). Runs for
/// the life of the server; it reads the database only while some agent polls this server.
pub async fn serve_relayed(app: Arc<crate::App>) {
    let channels = app.agents.channels.clone();
    let mut every = RELAY_IDLE;
    let mut pruned = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        every = (every * 2).min(RELAY_IDLE);
        if pruned.elapsed() > Duration::from_secs(60) {
            pruned = Instant::now();
            // What askers that stopped while they waited left behind.
            let before = crate::store::now_ms() - 600_000;
            if let Err(e) = app.store.prune_relayed(before).await {
                tracing::warn!(error = %crate::error::Chain(&e), "deleting old channel requests");
            }
        }
        if channels.open() == 0 {
            continue;
        }
        let relayed = match app.store.relayed().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %crate::error::Chain(&e), "reading channel requests");
                continue;
            }
        };
        for r in relayed {
            if !channels.connected(&r.instance) {
                continue;
            }
            every = RELAY_SOON;
            match app.store.take_relayed(r.id, crate::store::now_ms()).await {
                Ok(true) => {}
                Ok(false) => continue, // another server the agent polls took it
                Err(e) => {
                    tracing::warn!(error = %crate::error::Chain(&e), "taking a channel request");
                    continue;
                }
            }
            let app = app.clone();
            tokio::spawn(async move {
                let method = if r.method == "POST" { "POST" } else { "GET" };
                let asked = app.agents.channels.request(
                    &r.instance,
                    method,
                    r.path.clone(),
                    r.auth.clone(),
                    r.max_bytes,
                    app.config.pull_timeout,
                );
                let reply = match asked.await {
                    Ok(reply) => reply,
                    Err(e) => Reply {
                        status: 0,
                        build: None,
                        epoch: None,
                        body: e.to_string().into_bytes(),
                    },
                };
                if let Err(e) = app
                    .store
                    .answer_relayed(r.id, &reply, crate::store::now_ms())
                    .await
                {
                    tracing::warn!(error = %crate::error::Chain(&e), "answering a channel request");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(body: &[u8]) -> Reply {
        Reply {
            status: 200,
            build: None,
            epoch: None,
            body: body.to_vec(),
        }
    }

    #[tokio::test]
    async fn a_request_goes_to_the_waiting_poll_and_its_answer_back() {
        let c = Arc::new(Channels::new(Mode::Auto, Duration::from_secs(1)));
        let polling = {
            let c = c.clone();
            tokio::spawn(async move { c.poll("i1", Duration::from_secs(5), Some("s1")).await })
        };
        while !c.connected("i1") {
            tokio::task::yield_now().await;
        }
        let asking = {
            let c = c.clone();
            tokio::spawn(async move {
                c.request(
                    "i1",
                    "GET",
                    "/livecov/v1/counters".into(),
                    Some("Bearer s".into()),
                    10,
                    Duration::from_secs(5),
                )
                .await
            })
        };
        let req = polling.await.unwrap().expect("a request");
        assert_eq!(req.path, "/livecov/v1/counters");
        assert_eq!(req.authorization.as_deref(), Some("Bearer s"));
        assert_eq!(c.awaited("i1", &req.id, Some("s1")), Awaited::Yes(10));
        assert_eq!(c.awaited("i1", &req.id, Some("s2")), Awaited::WrongSecret);
        assert_eq!(c.awaited("i1", &req.id, None), Awaited::WrongSecret);
        assert_eq!(c.awaited("i1", "nope", Some("s1")), Awaited::No);
        assert!(!c.answer("i2", &req.id, reply(b"x")), "another instance");
        assert!(c.answer("i1", &req.id, reply(b"LCC1")));
        assert!(!c.answer("i1", &req.id, reply(b"LCC1")), "answered once");
        assert_eq!(asking.await.unwrap().unwrap().body, b"LCC1");
    }

    #[tokio::test]
    async fn requests_queued_between_polls_wait_for_the_next_and_oversized_answers_fail() {
        let c = Channels::new(Mode::Auto, Duration::from_secs(1));
        assert_eq!(
            c.poll("i1", Duration::from_millis(1), Some("s1"))
                .await
                .map(|r| r.id),
            None
        );
        assert!(c.connected("i1"), "within the grace after a poll");
        let (asked, ()) = tokio::join!(
            c.request("i1", "GET", "/p".into(), None, 3, Duration::from_secs(5)),
            async {
                let req = c
                    .poll("i1", Duration::from_secs(5), Some("s1"))
                    .await
                    .unwrap();
                assert!(!c.answer("i1", &req.id, reply(b"four")));
            }
        );
        assert_eq!(asked.unwrap_err(), ChannelError::TooLarge(3));
    }

    #[tokio::test]
    async fn no_channel_no_request_and_unanswered_requests_time_out() {
        let c = Channels::new(Mode::Auto, Duration::from_secs(1));
        let r = c.request("i1", "GET", "/p".into(), None, 3, Duration::from_secs(1));
        assert_eq!(r.await.unwrap_err(), ChannelError::NotConnected);
        c.poll("i1", Duration::from_millis(1), Some("s1")).await;
        let r = c.request("i1", "GET", "/p".into(), None, 3, Duration::from_millis(20));
        assert_eq!(r.await.unwrap_err(), ChannelError::Timeout);
        // The request that timed out is not handed to a later poll.
        assert!(
            c.poll("i1", Duration::from_millis(20), Some("s1"))
                .await
                .is_none()
        );
    }

    #[test]
    fn modes_decide_what_heartbeats_ask() {
        let auto = Channels::new(Mode::Auto, Duration::from_secs(1));
        assert!(!auto.wanted("i1"));
        auto.unreachable("i1");
        assert!(auto.wanted("i1") && !auto.wanted("i2"));
        auto.prune(Duration::from_secs(60));
        assert!(auto.wanted("i1"), "kept a while");
        auto.prune(Duration::ZERO);
        assert!(!auto.wanted("i1"), "then forgotten");
        assert!(Channels::new(Mode::Always, Duration::from_secs(1)).wanted("i1"));
        let never = Channels::new(Mode::Never, Duration::from_secs(1));
        never.unreachable("i1");
        assert!(!never.wanted("i1"));
        assert!(Mode::parse("sometimes").is_err());
    }
}
