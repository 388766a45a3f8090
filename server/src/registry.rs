//! The agent registry: registrations, heartbeats, and expiry.
//!
//! The registry lives in the store, so a restarted server knows every instance it knew.
//! An instance's address is the IP the registration came from with the port the agent gave:
//! a registration cannot point the server at another host. An agent hands over a secret of its
//! own process in its registration; the server presents it on every pull, and only a
//! registration or heartbeat that shows it again changes the instance: knowing an instance's
//! id (the dashboard shows them) is not enough to point the server elsewhere.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::App;
use crate::meta::is_build_id;
use crate::pull::Dial;
use crate::snapshot::info as info_of_snapshot;
use crate::store::{Claim, InstanceRow, NewInstance, Registering, ServiceRow, StoreError, now_ms};
use crate::types::{InstanceInfo, Registered, Registration, ServiceDetail, ServiceInfo};

/// Why the registry refused or could not answer.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A field of a registration (or a name) that does not pass its check.
    #[error("{0}")]
    Invalid(String),
    /// A heartbeat from an instance the server does not hold live.
    #[error("no live instance {0}: register again")]
    UnknownInstance(String),
    #[error("no service {0:?}")]
    UnknownService(String),
    /// A quota or the registration rate of a peer is exceeded, and which.
    #[error("{0}")]
    TooMany(String),
    /// The instance is registered with a secret that this request does not show.
    #[error(
        "instance {0} is registered by another process: its registration and heartbeats need \
         that process's secret"
    )]
    WrongSecret(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A request of an agent that the server refused: shown on the dashboard, counted in the
/// metrics and logged, so that a misconfigured agent (a wrong token, a bad field) does not
/// fail unseen.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub at: i64,
    /// The peer the request came from.
    pub peer: Option<IpAddr>,
    /// The request: `register` or `heartbeat`, and the service or instance it named if known.
    pub what: String,
    pub why: String,
}

/// The last refusals, and when each peer was last logged.
#[derive(Default)]
pub struct Refusals {
    inner: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    /// Newest last.
    recent: VecDeque<Refusal>,
    logged: HashMap<Option<IpAddr>, Instant>,
}

/// Refusals kept for the dashboard.
const KEPT_REFUSALS: usize = 50;
/// A peer's refusals are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(60);

impl Refusals {
    /// Records a refusal; logs it unless its peer was logged within [`LOG_EVERY`].
    pub fn add(&self, r: Refusal) {
        let mut inner = self.inner.lock().unwrap();
        let Kept { recent, logged } = &mut *inner;
        let now = Instant::now();
        if logged
            .get(&r.peer)
            .is_none_or(|t| now.duration_since(*t) >= LOG_EVERY)
        {
            logged.insert(r.peer, now);
            if logged.len() > 4 * KEPT_REFUSALS {
                logged.retain(|_, t| now.duration_since(*t) < LOG_EVERY);
            }
            tracing::warn!(
                peer = r.peer.map(|p| p.to_string()),
                what = r.what,
                why = r.why,
                "agent refused (logged once a minute per peer)"
            );
        }
        if recent.len() == KEPT_REFUSALS {
            recent.pop_front();
        }
        recent.push_back(r);
    }

    /// The kept refusals, newest first.
    pub fn recent(&self) -> Vec<Refusal> {
        self.inner
            .lock()
            .unwrap()
            .recent
            .iter()
            .rev()
            .cloned()
            .collect()
    }
}

/// Registrations per peer in the current minute: a fixed window, reset each minute.
#[derive(Default)]
pub struct Rate {
    inner: Mutex<(Option<Instant>, HashMap<IpAddr, u32>)>,
}

impl Rate {
    /// Counts a registration from `ip`; false if it is over `per_minute` in this minute.
    pub fn allow(&self, ip: IpAddr, per_minute: u32) -> bool {
        let mut inner = self.inner.lock().unwrap();
        let now = Instant::now();
        if inner
            .0
            .is_none_or(|start| now.duration_since(start) >= Duration::from_secs(60))
        {
            *inner = (Some(now), HashMap::new());
        }
        let n = inner.1.entry(ip).or_default();
        *n = n.saturating_add(1);
        *n <= per_minute
    }
}

/// Records that the server refused an agent's `what` from `peer`, and why.
pub fn refused(app: &App, peer: Option<IpAddr>, what: String, why: String, reason: &'static str) {
    app.metrics.agent_refused(reason);
    app.refusals.add(Refusal {
        at: now_ms(),
        peer,
        what,
        why,
    });
}

/// Checks a registration and records it; starts fetching the build's metadata if new. A
/// refusal is recorded (see [`Refusal`]).
pub async fn register(
    app: &Arc<App>,
    peer: SocketAddr,
    forwarded_for: Option<&str>,
    r: Registration,
) -> Result<Registered, RegistryError> {
    let what = format!("register {:?} as {:?}", r.instance, r.service);
    let result = register_checked(app, peer, forwarded_for, r).await;
    match &result {
        Err(e @ RegistryError::Invalid(_)) => {
            refused(app, Some(peer.ip()), what, e.to_string(), "invalid")
        }
        Err(e @ RegistryError::WrongSecret(_)) => {
            refused(app, Some(peer.ip()), what, e.to_string(), "secret")
        }
        Err(e @ RegistryError::TooMany(_)) => {
            refused(app, Some(peer.ip()), what, e.to_string(), "quota")
        }
        _ => {}
    }
    result
}

async fn register_checked(
    app: &Arc<App>,
    peer: SocketAddr,
    forwarded_for: Option<&str>,
    r: Registration,
) -> Result<Registered, RegistryError> {
    check_registration(&r)?;
    if r.port == 0 {
        return Err(RegistryError::Invalid("port: want 1 to 65535".into()));
    }
    let ip = registering_ip(app, peer, forwarded_for)?;
    let address = SocketAddr::new(ip, r.port).to_string();
    let instance = NewInstance {
        id: r.instance.clone(),
        service: r.service,
        build: r.build.clone(),
        mode: r.mode,
        hostname: r.hostname,
        pid: r.pid,
        start_time: r.start_time,
        go_version: r.go_version,
        address: address.clone(),
        secret: r.secret,
        labels: r.labels,
    };
    let quota = crate::store::Quota {
        services: app.config.max_services,
        instances: app.config.max_instances,
    };
    match app.store.register(&instance, quota, now_ms()).await? {
        Registering::Accepted => {}
        Registering::WrongSecret => return Err(RegistryError::WrongSecret(instance.id)),
        Registering::TooManyServices => {
            return Err(RegistryError::TooMany(format!(
                "the server keeps {} services at most (its --max-services): service {:?} is \
                 not registered",
                quota.services, instance.service
            )));
        }
        Registering::TooManyInstances => {
            return Err(RegistryError::TooMany(format!(
                "service {:?} has {} live instances, the most the server keeps (its \
                 --max-instances)",
                instance.service, quota.instances
            )));
        }
    }
    app.metrics.registered();
    tracing::info!(
        service = instance.service,
        instance = instance.id,
        build = instance.build,
        address,
        "instance registered"
    );
    app.prefetch(
        r.build,
        Dial {
            instance: instance.id.clone(),
            address: address.clone(),
            secret: instance.secret.clone(),
            channel_seen: None,
        },
    );
    Ok(Registered {
        channel: app.agents.channels.wanted(&r.instance),
        instance: r.instance,
        address,
        instance_ttl_seconds: app.config.instance_ttl.as_secs(),
    })
}

/// Records a heartbeat that shows the instance's secret; an instance the server does not
/// hold live is a 404, which tells the agent to register again.
pub async fn heartbeat(
    app: &App,
    peer: SocketAddr,
    instance: &str,
    secret: Option<&str>,
    channel: bool,
) -> Result<(), RegistryError> {
    let claim = app
        .store
        .heartbeat(instance, secret, now_ms(), channel)
        .await?;
    app.metrics.heartbeat(claim == Claim::Accepted);
    match claim {
        Claim::Accepted => Ok(()),
        Claim::Unknown => Err(RegistryError::UnknownInstance(instance.to_string())),
        Claim::WrongSecret => {
            let e = RegistryError::WrongSecret(instance.to_string());
            let what = format!("heartbeat of {instance:?}");
            refused(app, Some(peer.ip()), what, e.to_string(), "secret");
            Err(e)
        }
    }
}

/// A service as the API lists it.
pub fn info(row: &ServiceRow) -> ServiceInfo {
    ServiceInfo {
        name: row.name.clone(),
        first_seen: report::rfc3339(row.created_at),
        live_instances: row.live_instances,
        instances: row.instances,
        builds: row.builds.clone(),
        latest_snapshot: row.latest.as_ref().map(info_of_snapshot),
    }
}

/// The statement coverage of a service's latest snapshot, 0 to 1 (the metrics' ratio); None
/// without a snapshot or statements.
pub fn coverage(row: &ServiceRow) -> Option<f64> {
    row.latest
        .as_ref()
        .filter(|l| l.totals.stmts > 0)
        .map(|l| l.totals.stmts_covered as f64 / l.totals.stmts as f64)
}

/// Every service, by name, with the builds its live instances run and its latest snapshot.
pub async fn services(app: &App) -> Result<Vec<ServiceRow>, RegistryError> {
    Ok(app.store.services().await?)
}

/// A page of the services, by name: at most `limit` (1,000 if not given, 1 to 1,000) of those
/// whose names sort after `after`, and the name to ask the next page after, if there is one.
pub async fn services_page(
    app: &App,
    after: Option<&str>,
    limit: Option<i64>,
) -> Result<(Vec<ServiceRow>, Option<String>), RegistryError> {
    let limit = limit.unwrap_or(1000).clamp(1, 1000);
    let mut page = app
        .store
        .services_page(after.unwrap_or(""), limit + 1)
        .await?;
    let next = (page.len() as i64 > limit).then(|| {
        page.truncate(limit as usize);
        page.last().map(|s| s.name.clone()).unwrap_or_default()
    });
    Ok((page, next))
}

/// The service `name` and all its instances, live ones first.
pub async fn service(
    app: &App,
    name: &str,
) -> Result<(ServiceRow, Vec<InstanceRow>), RegistryError> {
    let Some(service) = app.store.service(name).await? else {
        return Err(RegistryError::UnknownService(name.to_string()));
    };
    let instances = app.store.instances(name, false).await?;
    Ok((service, instances))
}

/// A service with its instances, as the API answers.
pub fn detail(app: &App, service: &ServiceRow, instances: Vec<InstanceRow>) -> ServiceDetail {
    ServiceDetail {
        service: info(service),
        instance_list: instances
            .into_iter()
            .map(|i| InstanceInfo {
                state: i.state().to_string(),
                channel: app.agents.channels.reads_over(&i.id, i.channel_seen),
                id: i.id,
                build: i.build,
                mode: i.mode,
                address: i.address,
                hostname: i.hostname,
                pid: i.pid,
                start_time: i.start_time,
                go_version: i.go_version,
                registered_at: report::rfc3339(i.registered_at),
                last_seen: report::rfc3339(i.last_seen),
                gone_at: i.gone_at.map(report::rfc3339),
                labels: i.labels,
                exited_at: i.exited_at.map(report::rfc3339),
            })
            .collect(),
    }
}

/// Marks gone the instances whose heartbeats stopped.
pub async fn sweep(app: &App) {
    app.agents.channels.prune(Duration::from_secs(600));
    let now = now_ms();
    let cutoff = now - app.config.instance_ttl.as_millis() as i64;
    match app.store.sweep(cutoff, now).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(instances = n, "instances without heartbeat marked gone"),
        Err(e) => tracing::warn!(error = %crate::error::Chain(&e), "expiring instances"),
    }
}

/// Checks a service name: see [`report::types::check_text`].
/// The IP a registration (or a final delivery) comes from, within its rate
/// (`--registrations-per-minute`).
pub(crate) fn registering_ip(
    app: &App,
    peer: SocketAddr,
    forwarded_for: Option<&str>,
) -> Result<IpAddr, RegistryError> {
    let ip = client_ip(peer.ip(), forwarded_for, &app.config.trusted_proxies)?;
    if !app
        .registrations
        .allow(ip, app.config.registrations_per_minute)
    {
        return Err(RegistryError::TooMany(format!(
            "more than {} registrations from {ip} in a minute (the server's \
             --registrations-per-minute): try again in a minute",
            app.config.registrations_per_minute
        )));
    }
    Ok(ip)
}

/// The checks of a registration's fields but its port (which a process that ends before it
/// listens has none of), field by field: the error names the field.
pub(crate) fn check_registration(r: &Registration) -> Result<(), RegistryError> {
    check_name("service", &r.service, 256)?;
    if r.instance.is_empty()
        || r.instance.len() > 128
        || !r
            .instance
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(RegistryError::Invalid(
            "instance: 1 to 128 letters, digits, '-', '_' or '.'".into(),
        ));
    }
    if !is_build_id(&r.build) {
        return Err(RegistryError::Invalid(
            "build: want 64 lower-case hex digits".into(),
        ));
    }
    if r.mode.parse::<instrumenter::Mode>().is_err() {
        return Err(RegistryError::Invalid(format!(
            "mode {:?}: want set, count or atomic",
            r.mode
        )));
    }
    for (what, v) in [
        ("hostname", &r.hostname),
        ("start_time", &r.start_time),
        ("go_version", &r.go_version),
    ] {
        if v.len() > 256 || v.chars().any(char::is_control) {
            return Err(RegistryError::Invalid(format!(
                "{what}: at most 256 characters, none of them control characters"
            )));
        }
    }
    report::types::check_labels(&r.labels).map_err(RegistryError::Invalid)?;
    if let Some(secret) = &r.secret
        && (secret.len() < 16
            || secret.len() > 128
            || !secret.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(RegistryError::Invalid(
            "secret: 16 to 128 ASCII letters or digits".into(),
        ));
    }
    Ok(())
}

fn check_name(what: &str, name: &str, max: usize) -> Result<(), RegistryError> {
    report::types::check_text(what, name, max).map_err(RegistryError::Invalid)
}

/// The IP of the agent that registers: the peer's, or, when the peer is a trusted proxy, the
/// last address in `X-Forwarded-For` that is not itself a trusted proxy (each proxy appends the
/// address it heard from, so the entries before an untrusted one may be forged).
pub fn client_ip(
    peer: IpAddr,
    forwarded_for: Option<&str>,
    trusted: &[Cidr],
) -> Result<IpAddr, RegistryError> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let mut ip = canonical(peer);
    if !is_trusted(ip) {
        return Ok(ip);
    }
    for hop in forwarded_for.unwrap_or("").rsplit(',') {
        let hop = hop.trim();
        if hop.is_empty() {
            continue;
        }
        ip = canonical(hop.parse().map_err(|_| {
            RegistryError::Invalid(format!("X-Forwarded-For: {hop:?} is not an IP address"))
        })?);
        if !is_trusted(ip) {
            break;
        }
    }
    Ok(ip)
}

/// An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d: that is an IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// A network, `10.0.0.0/8` or `fd00::/8`; a bare address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad = || format!("{s:?}: want an IP address or a network such as 10.0.0.0/8");
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let net = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b.parse::<u8>().ok().filter(|&b| b <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { net, bits })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks() {
        let n: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains(ip("10.200.1.1")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(!n.contains(ip("::1")));
        let one: Cidr = "192.168.1.7".parse().unwrap();
        assert!(one.contains(ip("192.168.1.7")) && !one.contains(ip("192.168.1.8")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        for bad in ["10.0.0.0/33", "x", "::/129", "10.0.0.0/"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let xff = Some("1.2.3.4, 172.16.0.9, 10.0.0.2");
        // From a proxy: the last hop that is not a proxy.
        assert_eq!(
            client_ip(ip("10.0.0.1"), xff, &trusted).unwrap(),
            ip("172.16.0.9")
        );
        // From anyone else: the header is ignored.
        assert_eq!(
            client_ip(ip("172.16.0.1"), xff, &trusted).unwrap(),
            ip("172.16.0.1")
        );
        // A proxy without the header, or with only proxies in it.
        assert_eq!(
            client_ip(ip("10.0.0.1"), None, &trusted).unwrap(),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some("10.9.9.9"), &trusted).unwrap(),
            ip("10.9.9.9")
        );
        assert!(client_ip(ip("10.0.0.1"), Some("nonsense"), &trusted).is_err());
        assert_eq!(
            client_ip(ip("::ffff:172.16.0.1"), None, &[]).unwrap(),
            ip("172.16.0.1")
        );
    }
}
