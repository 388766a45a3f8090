//! The agent registry: registrations, heartbeats, and expiry.
//!
//! The registry lives in the store, so a restarted server knows every instance it knew.
//! An instance's address is the IP the registration came from with the port the agent gave:
//! a registration cannot point the server at another host.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::App;
use crate::error::ApiError;
use crate::meta::is_build_id;
use crate::store::{NewInstance, now_ms};
use crate::types::{Registered, Registration};

/// Checks a registration and records it; starts fetching the build's metadata if new.
pub async fn register(
    app: &Arc<App>,
    peer: SocketAddr,
    r: Registration,
) -> Result<Registered, ApiError> {
    check_name("service", &r.service, 256)?;
    if r.instance.is_empty()
        || r.instance.len() > 128
        || !r
            .instance
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(ApiError::BadRequest(
            "instance: 1 to 128 letters, digits, '-', '_' or '.'".into(),
        ));
    }
    if !is_build_id(&r.build) {
        return Err(ApiError::BadRequest(
            "build: want 64 lower-case hex digits".into(),
        ));
    }
    if r.mode.parse::<instrumenter::Mode>().is_err() {
        return Err(ApiError::BadRequest(format!(
            "mode {:?}: want set, count or atomic",
            r.mode
        )));
    }
    if r.port == 0 {
        return Err(ApiError::BadRequest("port: want 1 to 65535".into()));
    }
    for (what, v) in [
        ("hostname", &r.hostname),
        ("start_time", &r.start_time),
        ("go_version", &r.go_version),
    ] {
        if v.len() > 256 || v.chars().any(char::is_control) {
            return Err(ApiError::BadRequest(format!(
                "{what}: at most 256 characters, none of them control characters"
            )));
        }
    }
    // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d; pull it over IPv4.
    let ip = match peer.ip() {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
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
    };
    app.store.register(&instance, now_ms()).await?;
    app.metrics.registered();
    tracing::info!(
        service = instance.service,
        instance = instance.id,
        build = instance.build,
        address,
        "instance registered"
    );
    app.prefetch(r.build, address.clone());
    Ok(Registered {
        instance: r.instance,
        address,
        instance_ttl_seconds: app.config.instance_ttl.as_secs(),
    })
}

/// Records a heartbeat; an instance the server does not hold live is a 404, which tells the
/// agent to register again.
pub async fn heartbeat(app: &App, instance: &str) -> Result<(), ApiError> {
    let known = app.store.heartbeat(instance, now_ms()).await?;
    app.metrics.heartbeat(known);
    if known {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "no live instance {instance}: register again"
        )))
    }
}

/// Marks gone the instances whose heartbeats stopped.
pub async fn sweep(app: &App) {
    let now = now_ms();
    let cutoff = now - app.config.instance_ttl.as_millis() as i64;
    match app.store.sweep(cutoff, now).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(instances = n, "instances without heartbeat marked gone"),
        Err(e) => tracing::warn!(error = %e, "expiring instances"),
    }
}

/// Checks a service name: not empty, not too long, no control characters.
pub fn check_name(what: &str, name: &str, max: usize) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > max || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "{what}: 1 to {max} bytes without control characters"
        )));
    }
    Ok(())
}
