//! Requests for agents whose channel another server holds (`crate::channel`,
//! `migrations/*/0010_channel_relay.sql`): written by the server that asks, taken and answered
//! by the server the agent polls, read and deleted by the asker.

use sqlx::Row;

use super::{Result, Store};

/// An agent's answer to a request of the server's (`crate::channel`): its status, the headers
/// the server reads, its body.
#[derive(Debug)]
pub struct AgentReply {
    pub status: u16,
    pub build: Option<Vec<u8>>,
    pub epoch: Option<Vec<u8>>,
    pub body: Vec<u8>,
}

/// A request another server wrote for an instance's agent.
#[derive(Debug, Clone)]
pub struct Relayed {
    pub id: i64,
    pub instance: String,
    pub method: String,
    pub path: String,
    pub auth: Option<String>,
    /// The largest answer the asker accepts.
    pub max_bytes: usize,
}

impl Store {
    /// Writes a request for `instance`'s agent; its id.
    pub async fn relay(&self, r: &Relayed, now: i64) -> Result<i64> {
        let written = sqlx::query(
            "INSERT INTO channel_requests (instance, method, path, auth, max_bytes, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&r.instance)
        .bind(&r.method)
        .bind(&r.path)
        .bind(&r.auth)
        .bind(r.max_bytes as i64)
        .bind(now)
        .fetch_one(&self.pool)
        .await;
        Ok(self.wrote(written.map_err(Into::into))?.try_get("id")?)
    }

    /// The requests no server has taken yet, oldest first.
    pub async fn relayed(&self) -> Result<Vec<Relayed>> {
        let rows = sqlx::query(
            "SELECT id, instance, method, path, auth, max_bytes FROM channel_requests
             WHERE taken_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Relayed {
                    id: r.try_get("id")?,
                    instance: r.try_get("instance")?,
                    method: r.try_get("method")?,
                    path: r.try_get("path")?,
                    auth: r.try_get("auth")?,
                    max_bytes: r.try_get::<i64, _>("max_bytes")?.max(0) as usize,
                })
            })
            .collect()
    }

    /// Takes request `id` for this server; false if another server took it first.
    pub async fn take_relayed(&self, id: i64, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE channel_requests SET taken_at = $1 WHERE id = $2 AND taken_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await;
        Ok(self.wrote(done.map_err(Into::into))?.rows_affected() == 1)
    }

    /// Writes the agent's answer to request `id`.
    pub async fn answer_relayed(&self, id: i64, reply: &AgentReply, now: i64) -> Result<()> {
        let done = sqlx::query(
            "UPDATE channel_requests SET status = $1, build = $2, epoch = $3, body = $4,
             answered_at = $5 WHERE id = $6",
        )
        .bind(i64::from(reply.status))
        .bind(reply.build.clone())
        .bind(reply.epoch.clone())
        .bind(reply.body.clone())
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await;
        self.wrote(done.map_err(Into::into))?;
        Ok(())
    }

    /// The answer to request `id`, once written.
    pub async fn relayed_answer(&self, id: i64) -> Result<Option<AgentReply>> {
        let row = sqlx::query(
            "SELECT status, build, epoch, body FROM channel_requests
             WHERE id = $1 AND answered_at IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(AgentReply {
                status: u16::try_from(r.try_get::<i64, _>("status")?).unwrap_or(0),
                build: r.try_get("build")?,
                epoch: r.try_get("epoch")?,
                body: r.try_get::<Option<Vec<u8>>, _>("body")?.unwrap_or_default(),
            })
        })
        .transpose()
    }

    /// Deletes request `id`, answered or not.
    pub async fn drop_relayed(&self, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM channel_requests WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await;
        self.wrote(done.map_err(Into::into))?;
        Ok(())
    }

    /// Deletes the requests written before `before` that their askers left behind (a server
    /// stopped while it waited).
    pub async fn prune_relayed(&self, before: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM channel_requests WHERE created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await;
        Ok(self.wrote(done.map_err(Into::into))?.rows_affected())
    }
}
