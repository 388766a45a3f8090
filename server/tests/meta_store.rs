//! A build's metadata in the store: the binary form (`LCM1`, `server/src/lcm.rs`) written
//! beside the gzip JSON, read back after a start, made for rows of a database that predates
//! it, and refused when damaged (the gzip JSON is read instead, and the binary form written
//! anew). On SQLite and, when `LIVECOV_TEST_POSTGRES` is set, on PostgreSQL.

#[macro_use]
mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use instrumenter::{BuildMeta, Mode, Rules};
use server::lcm;
use server::pull::Dial;
use server::sim::{SimAgent, SimBuild};
use server::{App, BuildError};
use sqlx::Row;

/// A real build's metadata: every Go file of the instrumenter's corpus, cut as `go tool
/// cover` of Go 1.26 would (`//line` directives, BOM, CRLF, generics, func literals...).
fn real_build() -> SimBuild {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../instrumenter/testdata/cover");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "go"))
        .collect();
    paths.sort();
    let files: Vec<_> = paths
        .iter()
        .map(|p| {
            let name = format!(
                "example.com/corpus/{}",
                p.file_name().unwrap().to_string_lossy()
            );
            instrumenter::analyze(&name, &std::fs::read(p).unwrap(), Rules::Go120)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect();
    assert!(files.len() > 5 && files.iter().map(|f| f.blocks.len()).sum::<usize>() > 100);
    SimBuild::new(BuildMeta {
        mode: Mode::Count,
        files,
    })
}

/// A connection of the test's own to the database, which it creates if need be.
async fn raw(db: &Db) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let url = if db.kind == "sqlite" {
        format!("{}?mode=rwc", db.url)
    } else {
        db.url.clone()
    };
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap()
}

async fn stored_bin(pool: &sqlx::AnyPool, build: &str) -> Option<Vec<u8>> {
    sqlx::query("SELECT meta_bin FROM builds WHERE build = $1")
        .bind(build)
        .fetch_one(pool)
        .await
        .unwrap()
        .try_get("meta_bin")
        .unwrap()
}

async fn app(db: &Db) -> Arc<App> {
    App::new(config(&db.url)).await.unwrap()
}

fn dial(agent: &SimAgent) -> Dial {
    Dial {
        instance: "i0".into(),
        address: agent.addr.to_string(),
        secret: Some(agent.secret().to_string()),
        channel_seen: None,
    }
}

mod cases {
    use super::*;

    /// Fetched from an agent, the build is stored in both forms; a server started later loads
    /// it from the binary form alone (the gzip JSON, broken here, is not read).
    pub async fn stored_in_both_forms(db: &Db) {
        let build = Arc::new(real_build());
        let agent = SimAgent::start(build.clone(), None).await;
        let first = app(db).await;
        let loaded = first.build(&build.id, &[dial(&agent)]).await.unwrap();
        assert_eq!(loaded.meta, build.meta);
        first.store.close().await;
        agent.stop();

        let pool = raw(db).await;
        let bin = stored_bin(&pool, &build.id).await.expect("the binary form");
        assert_eq!(lcm::decode(&bin, &build.id, u64::MAX).unwrap(), build.meta);
        assert_eq!(bin, lcm::encode(&build.id, &build.meta));
        sqlx::query("UPDATE builds SET meta = $1 WHERE build = $2")
            .bind(b"not gzip".as_slice())
            .bind(&build.id)
            .execute(&pool)
            .await
            .unwrap();

        let again = app(db).await;
        let loaded = again.build(&build.id, &[]).await.unwrap();
        assert_eq!(loaded.meta, build.meta);
        assert_eq!(loaded.meta.build_id(), build.id, "the id still checks");
        assert_eq!(loaded.shape, build.shape);
        again.store.close().await;
    }

    /// A damaged binary form (cut, a byte changed, another build's, garbage) is refused: the
    /// build is loaded from its gzip JSON and the binary form written anew. With the gzip JSON
    /// damaged too, loading fails with an error that says so.
    pub async fn damaged_binary_form(db: &Db) {
        let build = Arc::new(real_build());
        let other = SimBuild::synthetic(Mode::Count, 2, 3, "other");
        let agent = SimAgent::start(build.clone(), None).await;
        let first = app(db).await;
        first.build(&build.id, &[dial(&agent)]).await.unwrap();
        first.store.close().await;
        agent.stop();
        let pool = raw(db).await;
        let good = stored_bin(&pool, &build.id).await.unwrap();

        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 0x40;
        let damaged: Vec<(&str, Vec<u8>)> = vec![
            ("cut", good[..good.len() - 7].to_vec()),
            ("flipped", flipped),
            ("another build's", lcm::encode(&other.id, &other.meta)),
            ("garbage", b"LCM1 and then nothing of use".to_vec()),
            ("empty", Vec::new()),
        ];
        for (what, bad) in damaged {
            let app = app(db).await;
            app.store.set_build_bin(&build.id, &bad).await.unwrap();
            let loaded = app.build(&build.id, &[]).await;
            assert_eq!(loaded.unwrap().meta, build.meta, "{what}");
            assert_eq!(
                stored_bin(&pool, &build.id).await.as_deref(),
                Some(good.as_slice()),
                "{what}: written anew"
            );
            app.store.close().await;
        }

        // Both forms damaged: an error, no panic.
        sqlx::query("UPDATE builds SET meta = $1, meta_bin = $2 WHERE build = $3")
            .bind(report::gzip::gzip(b"{\"build\": 1}").as_slice())
            .bind(&good[..good.len() / 2])
            .bind(&build.id)
            .execute(&pool)
            .await
            .unwrap();
        let app = app(db).await;
        match app.build(&build.id, &[]).await {
            Err(e @ BuildError::Stored { .. }) => {
                let chain = server::error::Chain(&e).to_string();
                assert!(chain.contains("does not parse"), "{chain}");
            }
            other => panic!("loaded damaged metadata: {:?}", other.map(|b| b.id.clone())),
        }
        app.store.close().await;
    }

    /// A database written before the binary form existed (migrations up to 0004): its builds
    /// load, get their binary form on their first load, and lose nothing.
    pub async fn database_from_before(db: &Db) {
        let build = real_build();
        let dir = if db.kind == "sqlite" {
            "migrations/sqlite"
        } else {
            "migrations/postgres"
        };
        let pool = raw(db).await;
        let mut old = sqlx::migrate::Migrator::new(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir),
        )
        .await
        .unwrap();
        old.migrations = old
            .migrations
            .iter()
            .filter(|m| m.version <= 4)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        old.run(&pool).await.unwrap();
        let columns: Vec<String> = if db.kind == "sqlite" {
            sqlx::query("SELECT name FROM pragma_table_info('builds')")
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get("name").unwrap())
                .collect()
        } else {
            sqlx::query(
                "SELECT CAST(column_name AS TEXT) AS name FROM information_schema.columns \
                 WHERE table_name = 'builds'",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get("name").unwrap())
            .collect()
        };
        assert!(!columns.iter().any(|c| c == "meta_bin"), "{columns:?}");
        // The row as the server before the binary form stored it.
        sqlx::query(
            "INSERT INTO builds (build, mode, files, blocks, stmts, meta, created_at)
             VALUES ($1, 'count', $2, $3, 0, $4, 1)",
        )
        .bind(&build.id)
        .bind(build.meta.files.len() as i64)
        .bind(build.num_blocks() as i64)
        .bind(build.gz.as_slice())
        .execute(&pool)
        .await
        .unwrap();

        let app = app(db).await;
        assert_eq!(
            stored_bin(&pool, &build.id).await,
            None,
            "migrated, not yet loaded"
        );
        let loaded = app.build(&build.id, &[]).await.unwrap();
        assert_eq!(loaded.meta, build.meta);
        let bin = stored_bin(&pool, &build.id).await.expect("written on load");
        assert_eq!(lcm::decode(&bin, &build.id, u64::MAX).unwrap(), build.meta);
        let gz: Vec<u8> = sqlx::query("SELECT meta FROM builds WHERE build = $1")
            .bind(&build.id)
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get("meta")
            .unwrap();
        assert_eq!(gz, build.gz, "the gzip JSON is kept as it was");
        app.store.close().await;
    }
}

on_every_db!(
    stored_in_both_forms,
    damaged_binary_form,
    database_from_before
);

/// The binary form of a real build round-trips, and a cut or changed byte anywhere is refused.
#[test]
fn real_build_round_trips() {
    let build = real_build();
    let bin = lcm::encode(&build.id, &build.meta);
    let back = lcm::decode(&bin, &build.id, u64::MAX).unwrap();
    assert_eq!(back, build.meta);
    assert_eq!(back.build_id(), build.id);
    for at in (0..bin.len()).step_by(7) {
        let mut bad = bin.clone();
        bad[at] ^= 1;
        assert!(lcm::decode(&bad, &build.id, u64::MAX).is_err(), "byte {at}");
        assert!(
            lcm::decode(&bin[..at], &build.id, u64::MAX).is_err(),
            "cut at {at}"
        );
    }
}
