//! Part 3: a burst of registrations and heartbeats.

use super::*;

impl Bench {
    pub(super) async fn registry_load(
        &self,
        kind: Kind,
        build: &Arc<SimBuild>,
    ) -> Result<LoadFigures> {
        let db = self.database(kind, "registry").await?;
        let server = self
            .start_server(&db, &format!("registry-{}.log", kind.name()))
            .await?;
        let agent = SimAgent::start(build.clone(), None).await;
        let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
            (0..LOAD_INSTANCES)
                .map(|i| {
                    agent
                        .registration(LOAD_SERVICE, &format!("h{i:04}"))
                        .to_string()
                        .into_bytes()
                })
                .collect(),
        );
        let base = server.base.clone();
        let client = self.client.clone();

        let (cpu0, db0) = (server.cpu()?, db.cpu()?);
        let (register, register_wall) = load(LOAD_INSTANCES, LOAD_CONCURRENCY, {
            let (base, client, bodies) = (base.clone(), client.clone(), bodies.clone());
            move |i| {
                let req = client
                    .post(format!("{base}/api/v1/agents/register"))
                    .header("Content-Type", "application/json")
                    .body(bodies[i].clone());
                async move { expect(req, 200).await }
            }
        })
        .await?;
        let (cpu1, db1) = (server.cpu()?, db.cpu()?);

        let mut heartbeat = Vec::new();
        let mut heartbeat_wall = Duration::ZERO;
        for _ in 0..self.opts.rounds {
            let (lat, wall) = load(LOAD_INSTANCES, LOAD_CONCURRENCY, {
                let (base, client) = (base.clone(), client.clone());
                let beat = serde_json::json!({ "secret": agent.secret() }).to_string();
                move |i| {
                    // A heartbeat shows the secret the instance registered with.
                    let req = client
                        .post(format!("{base}/api/v1/agents/h{i:04}/heartbeat"))
                        .header("Content-Type", "application/json")
                        .body(beat.clone());
                    async move { expect(req, 200).await }
                }
            })
            .await?;
            heartbeat.extend(lat);
            heartbeat_wall += wall;
        }
        let (cpu2, db2) = (server.cpu()?, db.cpu()?);
        let figures = LoadFigures {
            register,
            register_wall: secs(register_wall),
            register_cpu: secs(cpu1 - cpu0),
            register_db_cpu: per_ms(db0, db1, LOAD_INSTANCES as f64 / 1e3),
            heartbeat,
            heartbeat_wall: secs(heartbeat_wall),
            heartbeat_cpu: secs(cpu2 - cpu1),
            heartbeat_db_cpu: per_ms(db1, db2, (LOAD_INSTANCES * self.opts.rounds) as f64 / 1e3),
            peak_rss: server.peak_rss()?,
        };
        server.stop()?;
        agent.stop();
        db.remove().await?;
        Ok(figures)
    }
}

pub(super) struct LoadFigures {
    pub(super) register: Vec<f64>,
    pub(super) register_wall: f64,
    pub(super) register_cpu: f64,
    /// PostgreSQL's processes, ms per 1,000 requests.
    pub(super) register_db_cpu: Option<f64>,
    pub(super) heartbeat: Vec<f64>,
    pub(super) heartbeat_wall: f64,
    pub(super) heartbeat_cpu: f64,
    pub(super) heartbeat_db_cpu: Option<f64>,
    pub(super) peak_rss: u64,
}
