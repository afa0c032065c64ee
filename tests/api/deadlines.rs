//! What the request deadline leaves behind on PostgreSQL: no statement holding a connection
//! after its request is answered, and no "retry later" for a write that was stored.
//!
//! The servers run with `IOT_REQUEST_TIMEOUT_MS=1500` and a pool of 4 connections; the tests
//! print their figures (`--nocapture`).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use test_db::TestDatabase;
use tokio::task::JoinSet;

use crate::helpers::{detail, token, TestApp};

/// `IOT_REQUEST_TIMEOUT_MS` of these tests.
const REQUEST_TIMEOUT_MS: u64 = 1500;
/// Far above the deadline: what a request blocked by a lock may take on a loaded machine.
const ANSWER_LIMIT: Duration = Duration::from_secs(6);
/// The words of a 503 that does not promise that nothing was stored.
const MAY_HAVE_BEEN_APPLIED: &str = "the write may have been applied";

/// A superuser session on the test database, outside the service.
async fn superuser(db: &TestDatabase) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
}

async fn create_device(app: &TestApp, admin: &str, name: &str) -> String {
    let (status, body) = app
        .post("/api/devices", admin, json!({ "name": name }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

/// Tenant acme's device row is locked from outside (as a long transaction or a migration
/// would), and twelve renames of it arrive at once: three times the pool. Each is answered 503
/// with a detail, and then, with acme's row still locked, tenant globex is served.
///
/// What breaks it: without the statement and lock timeouts, and without cancelling the
/// statement of a request dropped at its deadline, the four renames holding connections wait
/// for the lock for as long as it is held (their ROLLBACK queued behind them), and every
/// request of globex is answered 503 by the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_whose_rows_are_locked_does_not_starve_another_tenant() {
    // Arrange
    let db = TestDatabase::create().await;
    let app = TestApp::spawn_with(
        Some(db.url()),
        &[("IOT_REQUEST_TIMEOUT_MS", &REQUEST_TIMEOUT_MS.to_string())],
    )
    .await;
    let acme = token("acme", &["admin"]);
    let globex = token("globex", &["admin"]);
    let locked = create_device(&app, &acme, "locked").await;
    let other = create_device(&app, &globex, "other").await;
    let locker = superuser(&db).await;
    locker
        .batch_execute("BEGIN; SELECT 1 FROM devices WHERE tenant_id = 'acme' FOR UPDATE")
        .await
        .expect("lock acme's devices");

    // Act: the burst on acme's locked row.
    let started = Instant::now();
    let mut burst = JoinSet::new();
    for i in 0..12 {
        let (client, url, acme) = (
            app.client().clone(),
            format!("{}/api/devices/{locked}", app.base),
            acme.clone(),
        );
        burst.spawn(async move {
            let response = client
                .put(url)
                .bearer_auth(acme)
                .json(&json!({ "name": format!("renamed {i}") }))
                .send()
                .await
                .expect("rename sent");
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body, started.elapsed())
        });
    }
    let mut renames = Vec::new();
    while let Some(rename) = burst.join_next().await {
        renames.push(rename.expect("rename task"));
    }
    let burst_answered = started.elapsed();

    // Act: globex, with acme's row still locked.
    let globex_from = Instant::now();
    let mut globex_answers = Vec::new();
    for i in 0..10 {
        let (read, _) = app.get(&format!("/api/devices/{other}"), &globex).await;
        let (write, _) = app
            .post(
                "/api/devices",
                &globex,
                json!({ "name": format!("served {i}") }),
            )
            .await;
        globex_answers.extend([read, write]);
    }
    let globex_took = globex_from.elapsed();

    // Act: the lock released.
    locker.batch_execute("ROLLBACK").await.expect("unlock");
    let (after, body) = app
        .request(
            Method::PUT,
            &format!("/api/devices/{locked}"),
            Some(&acme),
            Some(json!({ "name": "renamed at last" })),
        )
        .await;

    // Assert
    let mut latencies: Vec<u128> = renames.iter().map(|(_, _, t)| t.as_millis()).collect();
    latencies.sort_unstable();
    let served = globex_answers.iter().filter(|s| s.is_success()).count();
    println!(
        "locked tenant: 12 renames answered in {} ms (latencies {latencies:?} ms, statuses {:?}); \
         then the other tenant: {served} of {} requests 2xx in {} ms",
        burst_answered.as_millis(),
        renames
            .iter()
            .map(|(s, _, _)| s.as_u16())
            .collect::<Vec<_>>(),
        globex_answers.len(),
        globex_took.as_millis(),
    );
    for (status, body, latency) in &renames {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(!detail(body).is_empty(), "{body}");
        assert!(*latency < ANSWER_LIMIT, "a rename took {latency:?}");
    }
    assert_eq!(
        served,
        globex_answers.len(),
        "the other tenant was refused while acme's row was locked: {globex_answers:?}"
    );
    let (status, _) = app.get(&format!("/api/devices/{other}"), &globex).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "renamed at last");
    drop(app);
}

/// Every COMMIT of a device takes longer than what is left of the deadline (a deferred
/// constraint trigger sleeps in it, after an insert trigger that sleeps too; each statement
/// stays under the statement timeout). Whatever the answer, it does not say "retry later" for
/// a device that was stored.
///
/// What breaks it: a deadline that drops the request while its COMMIT is on its way answers
/// 503 "retry later", and the COMMIT completes anyway: the device is stored, and a retry
/// would create it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_commit_outlasts_the_deadline_is_not_answered_retry_later_if_stored() {
    // Arrange
    let db = TestDatabase::create().await;
    let app = TestApp::spawn_with(
        Some(db.url()),
        &[
            ("IOT_REQUEST_TIMEOUT_MS", &REQUEST_TIMEOUT_MS.to_string()),
            ("IOT_DB_STATEMENT_TIMEOUT_MS", "1400"),
        ],
    )
    .await;
    let admin = token("acme", &["admin"]);
    let sql = superuser(&db).await;
    sql.batch_execute(
        "CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep(0.8); RETURN NEW; END $$;
         CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep(1.0); RETURN NULL; END $$;
         CREATE TRIGGER slow_insert BEFORE INSERT ON devices \
             FOR EACH ROW EXECUTE FUNCTION slow_insert();
         CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON devices \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();",
    )
    .await
    .expect("slow down the commits of devices");

    // Act
    let started = Instant::now();
    let mut writes = JoinSet::new();
    for i in 0..3 {
        let (client, url, admin) = (
            app.client().clone(),
            format!("{}/api/devices", app.base),
            admin.clone(),
        );
        let name = format!("slow {i}");
        writes.spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(admin)
                .json(&json!({ "name": name }))
                .send()
                .await
                .expect("create sent");
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (name, status, body, started.elapsed())
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = writes.join_next().await {
        answers.push(answer.expect("create task"));
    }
    // Whatever is still running ends (the statement timeout bounds it) before counting.
    let settle = Instant::now();
    loop {
        let running: i64 = sql
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND state <> 'idle' \
                 AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .expect("count running statements")
            .get(0);
        if running == 0 {
            break;
        }
        assert!(settle.elapsed() < ANSWER_LIMIT, "statements still running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored: Vec<String> = sql
        .query("SELECT name FROM devices WHERE tenant_id = 'acme'", &[])
        .await
        .expect("read the devices")
        .iter()
        .map(|row| row.get(0))
        .collect();

    // Assert
    println!(
        "slow commits: answers {:?}; stored {stored:?}",
        answers
            .iter()
            .map(|(name, status, body, took)| format!(
                "{name}: {} in {} ms ({})",
                status.as_u16(),
                took.as_millis(),
                body["detail"].as_str().unwrap_or("")
            ))
            .collect::<Vec<_>>()
    );
    for (name, status, body, _) in &answers {
        let is_stored = stored.contains(name);
        match *status {
            StatusCode::CREATED => assert!(is_stored, "{name} answered 201 but not stored"),
            StatusCode::SERVICE_UNAVAILABLE if detail(body).contains(MAY_HAVE_BEEN_APPLIED) => {}
            StatusCode::SERVICE_UNAVAILABLE => assert!(
                !is_stored,
                "{name} answered 503 '{}' but stored",
                detail(body)
            ),
            other => panic!("{name}: unexpected {other}: {body}"),
        }
    }
    drop(app);
}
