//! Rounds, sessions and instance secrets against simulated agents, on SQLite and PostgreSQL:
//! a reset never destroys a count, windows hold exactly what ran in them, block by block, and
//! only the process that registered an instance can change its registration. (Real Go
//! binaries and a server killed mid-operation are in `cli/tests/server.rs`.)

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use instrumenter::Mode;
use server::sim::{SimAgent, SimBuild};

on_every_db!(
    set_rounds_keep_every_count,
    count_rounds_subtract_the_start,
    overlapping_set_sessions_hold_their_windows,
    overlapping_count_sessions_hold_their_windows,
    instances_that_start_or_miss_a_window,
    sessions_are_named_and_idempotent,
    registrations_need_the_instances_secret,
    two_servers_finish_a_boundary_once,
);

/// The blocks (first line of each) a coverprofile covers.
fn covered(profile: &str) -> BTreeSet<String> {
    profile
        .lines()
        .skip(1)
        .filter(|l| !l.ends_with(" 0"))
        .map(|l| l.rsplitn(3, ' ').nth(2).unwrap().to_string())
        .collect()
}

/// The counts a coverprofile gives, by block.
fn counts(profile: &str) -> Vec<(String, u64)> {
    profile
        .lines()
        .skip(1)
        .filter(|l| !l.ends_with(" 0"))
        .map(|l| {
            let mut parts = l.rsplitn(3, ' ');
            let count = parts.next().unwrap().parse().unwrap();
            (parts.nth(1).unwrap().to_string(), count)
        })
        .collect()
}

mod cases {
    use super::*;

    async fn profile(server: &server::Server, id: &serde_json::Value, view: &str) -> String {
        let a = get(
            server,
            &format!("/api/v1/snapshots/{id}/profile?format=go&view={view}"),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.text
    }

    /// The coverprofile block of flat block `i` of a synthetic build of `blocks` per file.
    fn block(seed: &str, blocks: usize, i: usize) -> String {
        let (f, b) = (i / blocks, i % blocks);
        let line = 10 + 3 * b;
        format!(
            "example.com/{seed}/pkg{}/file{f}.go:{line}.2,{}.3",
            f / 10,
            line + 2
        )
    }

    fn blocks(seed: &str, hits: &[usize]) -> BTreeSet<String> {
        hits.iter().map(|&i| block(seed, 4, i)).collect()
    }

    async fn stop(server: &server::Server, name: &str) -> serde_json::Value {
        let a = post(
            server,
            &format!("/api/v1/services/svc/sessions/{name}/stop"),
            serde_json::json!({}),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.text);
        a.json
    }

    async fn start_session(server: &server::Server, name: &str) -> serde_json::Value {
        let a = post(
            server,
            "/api/v1/services/svc/sessions",
            serde_json::json!({ "name": name }),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.text);
        a.json
    }

    pub async fn set_rounds_keep_every_count(db: &Db) {
        let server = start(config(&db.url)).await;
        let b = Arc::new(SimBuild::synthetic(Mode::Set, 3, 4, "setr"));
        let a = agents(&server, &b, "svc", 2).await;
        a[0].hit(0, 1);
        a[1].hit(5, 1);
        let r1 = post(&server, "/api/v1/services/svc/reset", serde_json::json!({})).await;
        assert_eq!(r1.status, 201, "{}", r1.text);
        assert_eq!(r1.json["kind"], "reset");
        assert!(r1.json["since"].is_null());
        assert_eq!(
            covered(&profile(&server, &r1.json["id"], "window").await),
            blocks("setr", &[0, 5])
        );
        // After the reset: block 0 again, block 7 new. The round holds those two; what ran
        // since the instances started holds all three.
        a[0].hit(0, 1);
        a[1].hit(7, 1);
        let s = snapshot(&server, "svc", "").await;
        assert_eq!(s["kind"], "snapshot");
        assert!(s["since"].is_string());
        assert_eq!(
            covered(&profile(&server, &s["id"], "window").await),
            blocks("setr", &[0, 7])
        );
        assert_eq!(
            covered(&profile(&server, &s["id"], "deploy").await),
            blocks("setr", &[0, 5, 7])
        );
        assert_eq!(s["totals"]["blocks_covered"], 2);
        assert_eq!(s["deploy"]["blocks_covered"], 3);
        // A second reset ends that round; a snapshot right after holds nothing of the round
        // and everything since the start.
        let before = s["id"].clone();
        let r2 = post(&server, "/api/v1/services/svc/reset", serde_json::json!({})).await;
        assert_eq!(
            covered(&profile(&server, &r2.json["id"], "window").await),
            blocks("setr", &[0, 7])
        );
        let s = snapshot(&server, "svc", "").await;
        assert_eq!(s["totals"]["blocks_covered"], 0);
        assert_eq!(s["deploy"]["blocks_covered"], 3);
        // Across the reset, the rounds' diff loses what did not run again; the deploy views'
        // loses nothing.
        for (view, lost) in [("window", 2), ("deploy", 0)] {
            let d = get(
                &server,
                &format!("/api/v1/snapshots/{before}/diff/{}?view={view}", s["id"]),
            )
            .await;
            assert_eq!(d.status, 200, "{}", d.text);
            assert_eq!(d.json["total"]["no_longer_covered"], lost, "{view}");
        }
        let bad = get(
            &server,
            &format!("/api/v1/snapshots/{before}/diff/{}?view=x", s["id"]),
        )
        .await;
        assert_eq!(bad.status, 400, "{}", bad.text);
        // The agents still hold every block.
        assert_eq!(a[0].ever()[0], 1);
        assert_eq!(a[1].ever()[5], 1);
        assert_eq!(a[1].ever()[7], 1);
        server.stop().await.unwrap();
    }

    pub async fn count_rounds_subtract_the_start(db: &Db) {
        let server = start(config(&db.url)).await;
        let b = Arc::new(SimBuild::synthetic(Mode::Count, 2, 4, "cntr"));
        let a = agents(&server, &b, "svc", 2).await;
        a[0].hit(1, 3);
        a[1].hit(1, 2);
        let r = post(&server, "/api/v1/services/svc/reset", serde_json::json!({})).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(
            counts(&profile(&server, &r.json["id"], "window").await),
            [(block("cntr", 4, 1), 5)]
        );
        a[0].hit(1, 4);
        a[1].hit(6, 1);
        let s = snapshot(&server, "svc", "").await;
        assert_eq!(
            counts(&profile(&server, &s["id"], "window").await),
            [(block("cntr", 4, 1), 4), (block("cntr", 4, 6), 1)]
        );
        assert_eq!(
            counts(&profile(&server, &s["id"], "deploy").await),
            [(block("cntr", 4, 1), 9), (block("cntr", 4, 6), 1)]
        );
        server.stop().await.unwrap();
    }

    pub async fn overlapping_set_sessions_hold_their_windows(db: &Db) {
        overlapping_sessions(db, Mode::Set).await;
    }

    pub async fn overlapping_count_sessions_hold_their_windows(db: &Db) {
        overlapping_sessions(db, Mode::Count).await;
    }

    async fn overlapping_sessions(db: &Db, mode: Mode) {
        {
            let server = start(config(&db.url)).await;
            let seed = format!("ovl{}", mode.as_str());
            let b = Arc::new(SimBuild::synthetic(mode, 3, 4, &seed));
            let a = agents(&server, &b, "svc", 2).await;
            // Time: x | A starts | y | B starts | z (and x again) | A stops | w | B stops | v
            a[0].hit(0, 1);
            start_session(&server, "A").await;
            a[1].hit(1, 1);
            start_session(&server, "B").await;
            a[0].hit(2, 1);
            a[1].hit(0, 1);
            let sa = stop(&server, "A").await;
            a[0].hit(3, 1);
            let sb = stop(&server, "B").await;
            a[1].hit(4, 1);
            assert_eq!(sa["kind"], "session");
            assert_eq!(sa["session"], "A");
            assert_eq!(
                covered(&profile(&server, &sa["id"], "window").await),
                blocks(&seed, &[1, 2, 0]),
                "{mode:?} A"
            );
            assert_eq!(
                covered(&profile(&server, &sb["id"], "window").await),
                blocks(&seed, &[2, 0, 3]),
                "{mode:?} B"
            );
            // Sessions never disturb the round: the service's round still holds it all.
            let s = snapshot(&server, "svc", "").await;
            assert_eq!(
                covered(&profile(&server, &s["id"], "window").await),
                blocks(&seed, &[0, 1, 2, 3, 4])
            );
            if mode == Mode::Count {
                // Block 0 ran once before A and once inside both.
                let c = counts(&profile(&server, &sa["id"], "window").await);
                assert!(c.contains(&(block(&seed, 4, 0), 1)), "{c:?}");
            }
            // A stopped session's snapshot diffs and exports like any other.
            let d = get(
                &server,
                &format!("/api/v1/snapshots/{}/diff/{}", sa["id"], sb["id"]),
            )
            .await;
            assert_eq!(d.status, 200, "{}", d.text);
            assert_eq!(d.json["total"]["newly_covered"], 1);
            assert_eq!(d.json["total"]["no_longer_covered"], 1);
            server.stop().await.unwrap();
        }
    }

    pub async fn instances_that_start_or_miss_a_window(db: &Db) {
        let server = start(config(&db.url)).await;
        let b = Arc::new(SimBuild::synthetic(Mode::Set, 3, 4, "late"));
        let a = agents(&server, &b, "svc", 2).await;
        a[0].hit(0, 1);
        a[1].hit(1, 1);
        // Instance 1 does not answer the reset: it misses the round's start.
        a[1].set_behavior(server::sim::Behavior::Status(503));
        let r = post(&server, "/api/v1/services/svc/reset", serde_json::json!({})).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.json["instances_failed"], 1);
        a[1].set_behavior(server::sim::Behavior::Normal);
        // A third instance starts inside the round: all it ran counts.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let c = SimAgent::start(b.clone(), None).await;
        register(&server, &c, "svc", "i2").await;
        c.hit(2, 1);
        // The snapshot applies the round's start to instance 1 late: what it ran before is in
        // the deploy view only, and the outcome says so.
        let s = snapshot(&server, "svc", "").await;
        assert_eq!(
            covered(&profile(&server, &s["id"], "window").await),
            blocks("late", &[2])
        );
        assert_eq!(
            covered(&profile(&server, &s["id"], "deploy").await),
            blocks("late", &[0, 1, 2])
        );
        let detail = get(&server, &format!("/api/v1/snapshots/{}", s["id"])).await;
        let i1 = detail.json["instance_results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["instance"] == "i1")
            .unwrap()
            .clone();
        assert!(
            i1["message"]
                .as_str()
                .unwrap()
                .contains("joined the round late"),
            "{i1}"
        );
        // From then on it counts in the round.
        a[1].hit(1, 1);
        let s = snapshot(&server, "svc", "").await;
        assert_eq!(
            covered(&profile(&server, &s["id"], "window").await),
            blocks("late", &[1, 2])
        );
        server.stop().await.unwrap();
    }

    pub async fn sessions_are_named_and_idempotent(db: &Db) {
        let server = start(config(&db.url)).await;
        let b = Arc::new(SimBuild::synthetic(Mode::Set, 1, 4, "names"));
        let a = agents(&server, &b, "svc", 1).await;
        let s = start_session(&server, "qa run 1").await;
        assert_eq!(s["state"], "open");
        // Starting it again answers the open one.
        let again = post(
            &server,
            "/api/v1/services/svc/sessions",
            serde_json::json!({"name": "qa run 1"}),
        )
        .await;
        assert_eq!(again.status, 200, "{}", again.text);
        assert_eq!(again.json["id"], s["id"]);
        for bad in ["", "a\u{7}b"] {
            let r = post(
                &server,
                "/api/v1/services/svc/sessions",
                serde_json::json!({ "name": bad }),
            )
            .await;
            assert_eq!(r.status, 400, "{bad:?}: {}", r.text);
        }
        let r = post(
            &server,
            "/api/v1/services/nope/sessions",
            serde_json::json!({"name": "x"}),
        )
        .await;
        assert_eq!(r.status, 404, "{}", r.text);
        a[0].hit(3, 1);
        let snap = stop(&server, "qa%20run%201").await;
        assert_eq!(snap["session"], "qa run 1");
        assert_eq!(snap["totals"]["blocks_covered"], 1);
        let r = post(
            &server,
            "/api/v1/services/svc/sessions/qa%20run%201/stop",
            serde_json::json!({}),
        )
        .await;
        assert_eq!(r.status, 404, "{}", r.text);
        let list = get(&server, "/api/v1/services/svc/sessions").await;
        assert_eq!(list.json["sessions"][0]["state"], "stopped");
        assert_eq!(list.json["sessions"][0]["snapshot"], snap["id"]);
        // The name is free again.
        start_session(&server, "qa run 1").await;
        // Without the admin token, nothing.
        let mut cfg = config(&db.url);
        cfg.admin_token = Some("admin".into());
        server.stop().await.unwrap();
        let server = start(cfg).await;
        let r = post(
            &server,
            "/api/v1/services/svc/sessions",
            serde_json::json!({"name": "y"}),
        )
        .await;
        assert_eq!(r.status, 401, "{}", r.text);
        let r = post(
            &server,
            "/api/v1/services/svc/sessions/qa%20run%201/stop",
            serde_json::json!({}),
        )
        .await;
        assert_eq!(r.status, 401, "{}", r.text);
        server.stop().await.unwrap();
    }

    pub async fn registrations_need_the_instances_secret(db: &Db) {
        let server = start(config(&db.url)).await;
        let b = Arc::new(SimBuild::synthetic(Mode::Set, 1, 4, "secret"));
        let a = agents(&server, &b, "svc", 1).await;
        a[0].hit(1, 1);
        // A stranger re-registers i0 from a fake agent that claims full coverage.
        let fake = SimAgent::start(b.clone(), None).await;
        fake.set_counters(vec![1; 4]);
        for secret in [None, Some("0123456789abcdef0123")] {
            let mut r = fake.registration("svc", "i0");
            match secret {
                Some(s) => r["secret"] = s.into(),
                None => {
                    r.as_object_mut().unwrap().remove("secret");
                }
            }
            let answer = post(&server, "/api/v1/agents/register", r).await;
            assert_eq!(answer.status, 403, "{}", answer.text);
        }
        let svc = get(&server, "/api/v1/services/svc").await;
        assert_eq!(
            svc.json["instance_list"][0]["address"],
            format!("127.0.0.1:{}", a[0].addr.port())
        );
        let s = snapshot(&server, "svc", "").await;
        assert_eq!(
            s["totals"]["blocks_covered"], 1,
            "the real instance was pulled"
        );
        // The real process registers again (after a server restart, say): accepted.
        register(&server, &a[0], "svc", "i0").await;
        // A malformed secret is refused.
        let mut r = a[0].registration("svc", "i9");
        r["secret"] = "short".into();
        assert_eq!(
            post(&server, "/api/v1/agents/register", r).await.status,
            400
        );
        // The secret is never shown.
        let svc = get(&server, "/api/v1/services/svc").await;
        assert!(!svc.text.contains(a[0].secret()));
        server.stop().await.unwrap();
    }

    pub async fn two_servers_finish_a_boundary_once(db: &Db) {
        let one = start(config(&db.url)).await;
        let two = start(config(&db.url)).await;
        let b = Arc::new(SimBuild::synthetic(Mode::Count, 1, 4, "twice"));
        let a = agents(&one, &b, "svc", 2).await;
        a[0].hit(2, 5);
        // A reset whose server stopped after writing its boundary: both servers finish it at
        // once.
        let pending = one
            .app
            .store
            .new_round(
                "svc",
                Some("left pending"),
                "tok3n",
                server::store::now_ms(),
            )
            .await
            .unwrap();
        tokio::join!(
            server::round::finish_pending(&one.app, None),
            server::round::finish_pending(&two.app, None)
        );
        let done = one.app.store.boundary(pending.id).await.unwrap().unwrap();
        assert!(done.done_at.is_some());
        let list = get(&two, "/api/v1/services/svc/snapshots").await;
        let snaps = list.json["snapshots"].as_array().unwrap();
        assert_eq!(snaps.len(), 1, "{}", list.text);
        assert_eq!(snaps[0]["label"], "left pending");
        assert_eq!(snaps[0]["id"], done.snapshot_id.unwrap());
        assert_eq!(snaps[0]["totals"]["blocks_covered"], 1);
        one.stop().await.unwrap();
        two.stop().await.unwrap();
    }
}
