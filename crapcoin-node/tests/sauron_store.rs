//! Sauron's storage against both backends: an SQLite file in a temporary
//! directory, and PostgreSQL at `CRAPCOIN_TEST_POSTGRES` (default
//! `postgres://crapcoin@127.0.0.1:55432/postgres`, the throwaway server
//! `.ci/deps` starts). Each PostgreSQL test creates its own database with a
//! random name and drops it afterwards. An unreachable PostgreSQL fails
//! the test: run `.ci/deps`.

mod support;

use std::time::Duration;

use crapcoin_node::sauron::db::{
    Db, EventFilter, EventRow, NodeRecord, RequestFilter, RequestRow, Retention,
};
use support::sauron::{TestDb, pg_db};

fn request(id: i64, node: &str, route: &str, status: i64, at_ms: i64) -> RequestRow {
    RequestRow {
        id,
        node: node.to_owned(),
        at_ms,
        method: "GET".to_owned(),
        path: format!("{route}/{id}"),
        route: route.to_owned(),
        status,
        latency_us: 100,
        caller: Some("127.0.0.1:1".to_owned()),
        peer: None,
        request_bytes: 0,
        response_bytes: Some(12),
        excerpt: "ünïcode ok".to_owned(),
    }
}

fn event(id: i64, node: &str, kind: &str, at_ms: i64) -> EventRow {
    EventRow {
        id,
        node: node.to_owned(),
        at_ms,
        kind: kind.to_owned(),
        event: format!(r#"{{"kind":"{kind}","n":{id}}}"#),
    }
}

/// Everything the store does, on one backend.
async fn exercise(db: &Db) {
    // 2,500 requests (three multi-row statements) and 2,500 events in one
    // transaction.
    let requests: Vec<RequestRow> = (1..=2500)
        .map(|i| {
            let node = if i % 2 == 0 { "n0" } else { "n1" };
            let route = if i % 5 == 0 {
                "/block/{hash}"
            } else {
                "/status"
            };
            request(
                i,
                node,
                route,
                if i % 7 == 0 { 404 } else { 200 },
                1_000 + i,
            )
        })
        .collect();
    let events: Vec<EventRow> = (1..=2500)
        .map(|i| {
            event(
                i,
                if i % 2 == 0 { "n0" } else { "n1" },
                "peer_added",
                1_000 + i,
            )
        })
        .collect();
    db.insert(&requests, &events).await.expect("inserts");
    assert_eq!(db.max_ids().await.expect("ids"), (2500, 2500));

    // All or nothing: a batch with a duplicate id stores none of its rows.
    let bad = vec![
        request(2501, "n0", "/status", 200, 1),
        request(5, "n0", "/status", 200, 1),
    ];
    assert!(db.insert(&bad, &[]).await.is_err());
    assert_eq!(db.counts().await.expect("counts").requests, 2500);

    // Filters and paging, newest first.
    let page = db
        .requests(&RequestFilter {
            node: Some("n0".into()),
            route: Some("/block/{hash}".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("page");
    assert_eq!(page.len(), 10);
    assert_eq!(page[0], requests[2499]);
    assert!(page.windows(2).all(|w| w[0].id > w[1].id));
    assert!(
        page.iter()
            .all(|r| r.node == "n0" && r.route == "/block/{hash}")
    );
    let next = db
        .requests(&RequestFilter {
            node: Some("n0".into()),
            route: Some("/block/{hash}".into()),
            before: Some(page[9].id),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("next page");
    assert!(next[0].id < page[9].id);
    let not_found = db
        .requests(&RequestFilter {
            status: Some(404),
            limit: 500,
            ..Default::default()
        })
        .await
        .expect("page");
    assert_eq!(not_found.len(), 2500 / 7);
    let recent = db
        .events(&EventFilter {
            node: Some("n1".into()),
            kind: Some("peer_added".into()),
            since: Some(1_000 + 2490),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("events");
    assert_eq!(
        recent.iter().map(|e| e.id).collect::<Vec<_>>(),
        [2499, 2497, 2495, 2493, 2491]
    );
    let replay = db.recent_events(&["peer_added"], 3).await.expect("replay");
    assert_eq!(
        replay.iter().map(|e| e.id).collect::<Vec<_>>(),
        [2498, 2499, 2500]
    );

    // Retention by count, then by age.
    let deleted = db
        .retain(
            &Retention {
                requests: 1000,
                events: 2000,
                max_age: None,
            },
            0,
        )
        .await
        .expect("retains");
    assert_eq!(deleted, 1500 + 500);
    let counts = db.counts().await.expect("counts");
    assert_eq!((counts.requests, counts.events), (1000, 2000));
    db.retain(
        &Retention {
            requests: u64::MAX / 2,
            events: u64::MAX / 2,
            max_age: Some(Duration::from_millis(100)),
        },
        1_000 + 2400 + 100,
    )
    .await
    .expect("retains by age");
    let counts = db.counts().await.expect("counts");
    assert_eq!((counts.requests, counts.events), (101, 101));

    // Nodes: upsert replaces, delete forgets, load answers newest first.
    let node = |name: &str, seen: i64| NodeRecord {
        name: name.to_owned(),
        url: format!("http://127.0.0.1:1/{name}"),
        address: "addr".to_owned(),
        behaviour: "honest".to_owned(),
        registered: true,
        fired: false,
        last_seen_ms: seen,
        height: 3,
        tip: None,
    };
    db.upsert_nodes(&[node("a", 1), node("b", 2), node("c", 3)])
        .await
        .expect("saves");
    let mut fired = node("a", 10);
    fired.fired = true;
    fired.tip = Some("ab".repeat(32));
    db.upsert_nodes(std::slice::from_ref(&fired))
        .await
        .expect("replaces");
    db.delete_nodes(&["b".to_owned()]).await.expect("deletes");
    let nodes = db.load_nodes(10).await.expect("loads");
    assert_eq!(nodes, vec![fired, node("c", 3)]);
}

#[tokio::test]
async fn sqlite_file_store() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("sauron.db").display());
    let db = Db::open(&url).await.expect("opens");
    assert_eq!(db.backend(), "sqlite");
    exercise(&db).await;
    db.close().await;
    // Reopening keeps everything.
    let db = Db::open(&url).await.expect("reopens");
    assert_eq!(db.load_nodes(10).await.expect("loads").len(), 2);
    db.close().await;
}

#[tokio::test]
async fn postgres_store() {
    let TestDb { db, drop } = pg_db().await;
    assert_eq!(db.backend(), "postgres");
    exercise(&db).await;
    db.close().await;
    drop.run().await;
}
