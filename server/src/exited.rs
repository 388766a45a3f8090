//! Processes that end: their last counters, delivered by their agent when `main` returns
//! (`deliver`) or collected from the directory it kept them in after it died (`collect`), and
//! those counters joining the snapshots of the window the process ran in (`pulls`).
//!
//! An instance's counters only grow while its process runs (count mode counts, set mode epoch
//! stamps), so the server keeps, per counter, the largest value it was sent: a copy sent
//! twice, or an older one after a newer, changes nothing, and every process counts once in a
//! snapshot however often its counters came.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;

use crate::App;
use crate::BuildError;
use crate::lcc;
use crate::meta::Build;
use crate::pull::Answer;
use crate::registry::{RegistryError, check_registration, registering_ip};
use crate::snapshot::Pulled;
use crate::store::{Ended, InstanceRow, NewInstance, Quota, Registering, StoreError, now_ms};
use crate::types::{self, FinalDelivery, Selector};

/// Why last counters were not stored.
#[derive(Debug, thiserror::Error)]
pub enum EndedError {
    /// A field, the counters or the request that does not pass its checks.
    #[error("{0}")]
    Invalid(String),
    /// The server does not have the build's metadata, and no instance is left to ask.
    #[error(
        "build {0} is not stored: send its metadata first (PUT /api/v1/builds/{0}, the \
         agent's <build>.meta.json.gz; `livecov collect` sends the ones in its directory)"
    )]
    UnknownBuild(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Build(BuildError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores the last counters an agent delivered as its process ended.
pub async fn deliver(
    app: &Arc<App>,
    peer: SocketAddr,
    forwarded_for: Option<&str>,
    instance: &str,
    d: FinalDelivery,
) -> Result<types::Ended, EndedError> {
    let r = d.registration;
    if r.instance != instance {
        return Err(EndedError::Invalid(format!(
            "the path names instance {instance:?}, the registration {:?}",
            r.instance
        )));
    }
    check_registration(&r)?;
    let ip = registering_ip(app, peer, forwarded_for)?;
    let body = base64::engine::general_purpose::STANDARD
        .decode(d.counters.as_bytes())
        .map_err(|e| EndedError::Invalid(format!("counters: not base64: {e}")))?;
    let address = match r.port {
        0 => String::new(),
        port => SocketAddr::new(ip, port).to_string(),
    };
    let i = NewInstance {
        id: r.instance,
        service: r.service,
        build: r.build,
        mode: r.mode,
        hostname: r.hostname,
        pid: r.pid,
        start_time: r.start_time,
        go_version: r.go_version,
        address,
        secret: r.secret,
        labels: r.labels,
    };
    store(app, i, &body, Ended::Now).await
}

/// Stores the counters file (`LCC1`, as the agent keeps it in `LIVECOV_DIR`) of instance
/// `instance` of `service`: an instance the server never heard of is recorded as exited.
pub async fn collect(
    app: &Arc<App>,
    service: &str,
    instance: &str,
    body: &[u8],
) -> Result<types::Ended, EndedError> {
    report::types::check_text("service", service, 256).map_err(EndedError::Invalid)?;
    let build = lcc::build_of(body).map_err(|e| EndedError::Invalid(e.to_string()))?;
    if !crate::meta::is_build_id(&build) {
        return Err(EndedError::Invalid(format!(
            "the counters name build {build:?}, not a build id"
        )));
    }
    let known = app.store.instance(instance).await?;
    let i = match known {
        Some(k) if k.service != service => {
            return Err(EndedError::Invalid(format!(
                "instance {instance} is of service {:?}, not {service:?}",
                k.service
            )));
        }
        Some(k) if k.build != build => {
            return Err(EndedError::Invalid(format!(
                "instance {instance} runs build {}, the counters are of build {build}",
                k.build
            )));
        }
        Some(k) => NewInstance {
            id: k.id,
            service: k.service,
            build: k.build,
            mode: k.mode,
            hostname: k.hostname,
            pid: k.pid,
            start_time: k.start_time,
            go_version: k.go_version,
            address: k.address,
            secret: k.secret,
            labels: k.labels,
        },
        None => {
            // As a registration would name it: the file name gives nothing else.
            let r = types::Registration {
                service: service.to_string(),
                instance: instance.to_string(),
                build: build.clone(),
                hostname: String::new(),
                pid: 0,
                start_time: String::new(),
                mode: "set".into(),
                port: 0,
                go_version: String::new(),
                secret: None,
                labels: Default::default(),
            };
            check_registration(&r)?;
            NewInstance {
                id: r.instance,
                service: r.service,
                build: r.build,
                mode: String::new(),
                hostname: r.hostname,
                pid: 0,
                start_time: r.start_time,
                go_version: r.go_version,
                address: String::new(),
                secret: None,
                labels: r.labels,
            }
        }
    };
    store(app, i, body, Ended::Collected).await
}

/// Decodes `body` against the instance's build, merges it into what the server has of it and
/// stores the result, under the service's lock (a snapshot reads either before or after).
async fn store(
    app: &Arc<App>,
    mut i: NewInstance,
    body: &[u8],
    ended: Ended,
) -> Result<types::Ended, EndedError> {
    let build = match app.build(&i.build, &[]).await {
        Ok(b) => b,
        Err(BuildError::Unreachable { .. }) => return Err(EndedError::UnknownBuild(i.build)),
        Err(e) => return Err(EndedError::Build(e)),
    };
    let now = lcc::decode(body, &build.id, &build.shape)
        .map_err(|e| EndedError::Invalid(format!("counters: {e}")))?;
    if i.mode.is_empty() {
        i.mode = build.mode().as_str().to_string();
    }
    if now.mode != build.mode() {
        return Err(EndedError::Invalid(format!(
            "counters in {} mode, build {} counts in {} mode",
            now.mode.as_str(),
            build.id,
            build.mode().as_str()
        )));
    }
    let service = i.service.clone();
    let lock = app.service_lock(&service);
    let _held = lock.lock().await;
    let mut values = vec![0u32; build.num_blocks()];
    if let Some(had) = app.store.final_counters(&i.id).await?
        && let Ok(had) = lcc::decode(&had, &build.id, &build.shape)
    {
        for (k, v) in had.nonzero {
            values[k as usize] = v;
        }
    }
    let mut changed = false;
    for &(k, v) in &now.nonzero {
        let slot = &mut values[k as usize];
        if v > *slot {
            *slot = v;
            changed = true;
        }
    }
    let merged = lcc::encode(&build.id, build.mode(), &build.shape, &values);
    let quota = Quota {
        services: app.config.max_services,
        instances: app.config.max_instances,
    };
    match app
        .store
        .put_final(&i, &merged, ended, quota, now_ms())
        .await?
    {
        Registering::Accepted => {}
        Registering::WrongSecret => {
            return Err(RegistryError::WrongSecret(i.id).into());
        }
        Registering::TooManyServices | Registering::TooManyInstances => {
            return Err(RegistryError::TooMany(format!(
                "the server keeps {} services at most (its --max-services): service {:?} is \
                 not recorded",
                quota.services, i.service
            ))
            .into());
        }
    }
    let state = match app.store.instance(&i.id).await? {
        Some(row) if row.live => "live",
        _ => "exited",
    };
    tracing::info!(
        service = i.service,
        instance = i.id,
        build = build.id,
        state,
        changed,
        "last counters stored"
    );
    Ok(types::Ended {
        service: i.service,
        instance: i.id,
        build: build.id.clone(),
        state: state.into(),
        changed,
    })
}

/// The processes of `service` that ended in a window that began at `since` (milliseconds;
/// 0: at each instance's start), those `selector` matches if given, as if pulled: their last
/// counters, read like a live instance's. Builds whose metadata cannot be had, or counters
/// that no longer decode, are left out and logged.
pub(crate) async fn pulls(
    app: &App,
    service: &str,
    since: i64,
    selector: Option<&Selector>,
) -> Result<Vec<Pulled>, StoreError> {
    let mut out = Vec::new();
    for (inst, body) in app.store.finals(service, since).await? {
        if selector.is_some_and(|s| !s.matches(&inst.labels)) {
            continue;
        }
        let build: Arc<Build> = match app.build(&inst.build, &[]).await {
            Ok(b) => b,
            Err(BuildError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(instance = inst.id, error = %crate::error::Chain(&e), "last counters of an ended process left out");
                continue;
            }
        };
        match lcc::decode(&body, &build.id, &build.shape) {
            Ok(counters) => out.push(ended_pull(inst, build, counters, body)),
            Err(e) => {
                tracing::warn!(instance = inst.id, error = %e, "stored last counters do not decode");
            }
        }
    }
    Ok(out)
}

fn ended_pull(
    inst: InstanceRow,
    build: Arc<Build>,
    counters: lcc::Sparse,
    body: Vec<u8>,
) -> Pulled {
    Pulled {
        inst,
        result: Ok((
            build,
            Answer {
                counters,
                body,
                epoch: 0,
            },
        )),
        duration_ms: 0,
    }
}
