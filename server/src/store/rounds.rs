//! Boundaries, what instances answered at them, and sessions (`migrations/*/0003_rounds.sql`).

use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

use super::{NewSnapshot, Result, Store, write_snapshot};

/// Why a boundary was drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundaryKind {
    /// A reset: the service's round ends here and a new one begins.
    Round,
    /// A session starts.
    Start,
    /// A session stops.
    Stop,
}

impl BoundaryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BoundaryKind::Round => "round",
            BoundaryKind::Start => "start",
            BoundaryKind::Stop => "stop",
        }
    }

    fn parse(s: &str) -> sqlx::Result<BoundaryKind> {
        match s {
            "round" => Ok(BoundaryKind::Round),
            "start" => Ok(BoundaryKind::Start),
            "stop" => Ok(BoundaryKind::Stop),
            _ => Err(sqlx::Error::Decode(
                format!("unknown boundary kind {s:?}").into(),
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BoundaryRow {
    pub id: i64,
    pub service: String,
    pub token: String,
    pub kind: BoundaryKind,
    pub session_id: Option<i64>,
    pub label: Option<String>,
    pub created_at: i64,
    /// None while pending.
    pub done_at: Option<i64>,
    pub snapshot_id: Option<i64>,
}

/// What one instance answered at a boundary.
#[derive(Debug, Clone)]
pub struct Record {
    pub instance: String,
    /// The epoch that began in the agent at the boundary.
    pub epoch: i64,
    /// Its counters at the boundary, LCC1.
    pub counters: Vec<u8>,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: i64,
    pub service: String,
    pub name: String,
    pub start_boundary: i64,
    pub started_at: i64,
    pub start_done: bool,
    pub stop_boundary: Option<i64>,
    pub stopped_at: Option<i64>,
    pub stop_done: bool,
    pub snapshot_id: Option<i64>,
}

impl SessionRow {
    pub fn state(&self) -> &'static str {
        match (self.start_done, self.stop_boundary, self.stop_done) {
            (false, _, _) => "starting",
            (true, None, _) => "open",
            (true, Some(_), false) => "stopping",
            (true, Some(_), true) => "stopped",
        }
    }
}

const BOUNDARY_COLUMNS: &str = "SELECT id, service, token, kind, session_id, label, created_at,
    done_at, snapshot_id FROM boundaries";

const SESSION_COLUMNS: &str = "SELECT s.id, s.service, s.name, s.start_boundary,
    s.stop_boundary, s.snapshot_id, a.created_at AS started_at, a.done_at AS start_done,
    z.created_at AS stopped_at, z.done_at AS stop_done
    FROM sessions s JOIN boundaries a ON a.id = s.start_boundary
    LEFT JOIN boundaries z ON z.id = s.stop_boundary";

impl Store {
    /// Writes a pending boundary of `service` that ends its round.
    pub async fn new_round(
        &self,
        service: &str,
        label: Option<&str>,
        token: &str,
        now: i64,
    ) -> Result<BoundaryRow> {
        let mut tx = self.pool.begin().await?;
        let id = insert_boundary(
            &mut tx,
            service,
            BoundaryKind::Round,
            None,
            label,
            token,
            now,
        )
        .await?;
        let row = boundary_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Writes a session and its pending start boundary, unless a session of that name is
    /// open (or starting, or stopping): then that one is returned as `Err`.
    pub async fn start_session(
        &self,
        service: &str,
        name: &str,
        token: &str,
        now: i64,
    ) -> Result<std::result::Result<(SessionRow, BoundaryRow), SessionRow>> {
        let mut tx = self.pool.begin().await?;
        // Written first, so that under SQLite the transaction holds the write lock from its
        // start (a read that upgrades to a write can fail instead of waiting); dropped with the
        // transaction if a session of that name is open.
        let b = insert_boundary(
            &mut tx,
            service,
            BoundaryKind::Start,
            None,
            None,
            token,
            now,
        )
        .await?;
        if let Some(open) = open_session_in(&mut tx, service, name).await? {
            return Ok(Err(open));
        }
        let session: i64 = sqlx::query(
            "INSERT INTO sessions (service, name, start_boundary) VALUES ($1, $2, $3)
             RETURNING id",
        )
        .bind(service)
        .bind(name)
        .bind(b)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        sqlx::query("UPDATE boundaries SET session_id = $1 WHERE id = $2")
            .bind(session)
            .bind(b)
            .execute(&mut *tx)
            .await?;
        let row = session_in(&mut tx, session).await?;
        let boundary = boundary_in(&mut tx, b).await?;
        tx.commit().await?;
        Ok(Ok((row, boundary)))
    }

    /// Writes the pending stop boundary of an open session; None if it is not open.
    pub async fn stop_session(
        &self,
        session: &SessionRow,
        label: Option<&str>,
        token: &str,
        now: i64,
    ) -> Result<Option<BoundaryRow>> {
        let mut tx = self.pool.begin().await?;
        let b = insert_boundary(
            &mut tx,
            &session.service,
            BoundaryKind::Stop,
            Some(session.id),
            label,
            token,
            now,
        )
        .await?;
        let done = sqlx::query(
            "UPDATE sessions SET stop_boundary = $1 WHERE id = $2 AND stop_boundary IS NULL",
        )
        .bind(b)
        .bind(session.id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let row = boundary_in(&mut tx, b).await?;
        tx.commit().await?;
        Ok(Some(row))
    }

    /// Boundaries not yet done, oldest first: of `service`, or of every service.
    pub async fn pending_boundaries(&self, service: Option<&str>) -> Result<Vec<BoundaryRow>> {
        let rows = sqlx::query_as::<_, BoundaryRow>(&format!(
            "{BOUNDARY_COLUMNS} WHERE done_at IS NULL AND (service = $1 OR $2 = 1) ORDER BY id"
        ))
        .bind(service.unwrap_or(""))
        .bind(i64::from(service.is_none()))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub async fn boundary(&self, id: i64) -> Result<Option<BoundaryRow>> {
        let row = sqlx::query_as::<_, BoundaryRow>(&format!("{BOUNDARY_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    /// The boundary that began `service`'s round; None before its first reset.
    pub async fn round_boundary(&self, service: &str) -> Result<Option<BoundaryRow>> {
        let row = sqlx::query_as::<_, BoundaryRow>(&format!(
            "{BOUNDARY_COLUMNS} WHERE id = (SELECT round_boundary FROM services WHERE name = $1)"
        ))
        .bind(service)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// What the instances answered at boundary `id`.
    pub async fn records(&self, id: i64) -> Result<Vec<Record>> {
        let rows = sqlx::query(
            "SELECT instance, epoch, counters, at FROM boundary_instances
             WHERE boundary_id = $1 ORDER BY instance",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(Record {
                instance: r.try_get("instance")?,
                epoch: r.try_get("epoch")?,
                counters: r.try_get("counters")?,
                at: r.try_get("at")?,
            });
        }
        Ok(out)
    }

    /// Adds what an instance that missed boundary `id` answered when it was applied late.
    pub async fn add_record(&self, id: i64, r: &Record) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_records(&mut tx, id, std::slice::from_ref(r)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a pending boundary done, in one transaction with what the instances answered
    /// and the snapshot it stores (a reset's or a session's); a reset's boundary becomes the
    /// service's round. Returns the snapshot's id. If the boundary is done already (another
    /// server process that shares the database finished it first), nothing is written and
    /// the snapshot that one stored is returned.
    pub async fn complete_boundary(
        &self,
        b: &BoundaryRow,
        records: &[Record],
        snapshot: Option<&NewSnapshot>,
        now: i64,
    ) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        // Claimed first: the row's lock makes a second finisher wait, then find it done.
        let claimed =
            sqlx::query("UPDATE boundaries SET done_at = $1 WHERE id = $2 AND done_at IS NULL")
                .bind(now)
                .bind(b.id)
                .execute(&mut *tx)
                .await?;
        if claimed.rows_affected() == 0 {
            drop(tx);
            return Ok(self.boundary(b.id).await?.and_then(|b| b.snapshot_id));
        }
        let snapshot_id = match snapshot {
            Some(s) => Some(write_snapshot(&mut tx, s).await?),
            None => None,
        };
        insert_records(&mut tx, b.id, records).await?;
        sqlx::query("UPDATE boundaries SET snapshot_id = $1 WHERE id = $2")
            .bind(snapshot_id)
            .bind(b.id)
            .execute(&mut *tx)
            .await?;
        match b.kind {
            BoundaryKind::Round => {
                sqlx::query("UPDATE services SET round_boundary = $1 WHERE name = $2")
                    .bind(b.id)
                    .bind(&b.service)
                    .execute(&mut *tx)
                    .await?;
            }
            BoundaryKind::Stop => {
                sqlx::query("UPDATE sessions SET snapshot_id = $1 WHERE id = $2")
                    .bind(snapshot_id)
                    .bind(b.session_id)
                    .execute(&mut *tx)
                    .await?;
            }
            BoundaryKind::Start => {}
        }
        tx.commit().await?;
        Ok(snapshot_id)
    }

    /// Gives up a pending boundary that no instance answered: a reset leaves the round as it
    /// was, a session that could not start is dropped, one that could not stop stays open.
    pub async fn abandon_boundary(&self, b: &BoundaryRow, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let claimed =
            sqlx::query("UPDATE boundaries SET done_at = $1 WHERE id = $2 AND done_at IS NULL")
                .bind(now)
                .bind(b.id)
                .execute(&mut *tx)
                .await?;
        if claimed.rows_affected() == 0 {
            return Ok(());
        }
        match b.kind {
            BoundaryKind::Round => {}
            BoundaryKind::Start => {
                sqlx::query("DELETE FROM sessions WHERE id = $1")
                    .bind(b.session_id)
                    .execute(&mut *tx)
                    .await?;
            }
            BoundaryKind::Stop => {
                sqlx::query("UPDATE sessions SET stop_boundary = NULL WHERE id = $1")
                    .bind(b.session_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The sessions of `service`, newest first.
    pub async fn sessions(&self, service: &str) -> Result<Vec<SessionRow>> {
        let rows = sqlx::query_as::<_, SessionRow>(&format!(
            "{SESSION_COLUMNS} WHERE s.service = $1 ORDER BY s.id DESC"
        ))
        .bind(service)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub async fn session(&self, id: i64) -> Result<Option<SessionRow>> {
        let row = sqlx::query_as::<_, SessionRow>(&format!("{SESSION_COLUMNS} WHERE s.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    /// The session of `service` named `name` that has not stopped (it may be starting or
    /// stopping).
    pub async fn open_session(&self, service: &str, name: &str) -> Result<Option<SessionRow>> {
        let mut tx = self.pool.begin().await?;
        let row = open_session_in(&mut tx, service, name).await?;
        tx.commit().await?;
        Ok(row)
    }
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

async fn insert_boundary(
    tx: &mut Tx<'_>,
    service: &str,
    kind: BoundaryKind,
    session: Option<i64>,
    label: Option<&str>,
    token: &str,
    now: i64,
) -> Result<i64> {
    let id = sqlx::query(
        "INSERT INTO boundaries (service, token, kind, session_id, label, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(service)
    .bind(token)
    .bind(kind.as_str())
    .bind(session)
    .bind(label)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?
    .try_get("id")?;
    Ok(id)
}

async fn boundary_in(tx: &mut Tx<'_>, id: i64) -> Result<BoundaryRow> {
    let row = sqlx::query_as::<_, BoundaryRow>(&format!("{BOUNDARY_COLUMNS} WHERE id = $1"))
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(row)
}

async fn session_in(tx: &mut Tx<'_>, id: i64) -> Result<SessionRow> {
    let row = sqlx::query_as::<_, SessionRow>(&format!("{SESSION_COLUMNS} WHERE s.id = $1"))
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(row)
}

async fn open_session_in(tx: &mut Tx<'_>, service: &str, name: &str) -> Result<Option<SessionRow>> {
    let row = sqlx::query_as::<_, SessionRow>(&format!(
        "{SESSION_COLUMNS} WHERE s.service = $1 AND s.name = $2 AND s.snapshot_id IS NULL
         ORDER BY s.id DESC LIMIT 1"
    ))
    .bind(service)
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row)
}

async fn insert_records(tx: &mut Tx<'_>, id: i64, records: &[Record]) -> Result<()> {
    for chunk in records.chunks(super::ROWS_PER_INSERT) {
        let sql = super::insert_rows(
            "boundary_instances (boundary_id, instance, epoch, counters, at)",
            1,
            4,
            chunk.len(),
        );
        let mut q = sqlx::query(&sql).bind(id);
        for r in chunk {
            q = q
                .bind(&r.instance)
                .bind(r.epoch)
                .bind(r.counters.as_slice())
                .bind(r.at);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

impl FromRow<'_, AnyRow> for BoundaryRow {
    fn from_row(r: &AnyRow) -> sqlx::Result<BoundaryRow> {
        Ok(BoundaryRow {
            id: r.try_get("id")?,
            service: r.try_get("service")?,
            token: r.try_get("token")?,
            kind: BoundaryKind::parse(&r.try_get::<String, _>("kind")?)?,
            session_id: r.try_get("session_id")?,
            label: r.try_get("label")?,
            created_at: r.try_get("created_at")?,
            done_at: r.try_get("done_at")?,
            snapshot_id: r.try_get("snapshot_id")?,
        })
    }
}

impl FromRow<'_, AnyRow> for SessionRow {
    fn from_row(r: &AnyRow) -> sqlx::Result<SessionRow> {
        let stop_boundary: Option<i64> = r.try_get("stop_boundary")?;
        Ok(SessionRow {
            id: r.try_get("id")?,
            service: r.try_get("service")?,
            name: r.try_get("name")?,
            start_boundary: r.try_get("start_boundary")?,
            started_at: r.try_get("started_at")?,
            start_done: r.try_get::<Option<i64>, _>("start_done")?.is_some(),
            stop_boundary,
            stopped_at: r.try_get("stopped_at")?,
            stop_done: r.try_get::<Option<i64>, _>("stop_done")?.is_some(),
            snapshot_id: r.try_get("snapshot_id")?,
        })
    }
}
