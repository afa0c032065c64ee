//! Alerts and the kept device state on a real PostgreSQL: what the constraints, the locks and
//! the transactions guarantee beyond the contract stories (concurrency, atomicity, the status
//! revision, the SQL of the migration).

use domain::{
    Actor, AlertStatus, DeviceChanges, DeviceName, DeviceSpec, DeviceStatus, NewDevice,
    NewMaintenanceWindow, Reading, ReadingBatch, ReadingValue, ScopeLabel, StaleAfter, TenantId,
    Thresholds, Timestamp, Unit, WindowDefinition, WindowName, WindowSchedule, WindowSlug,
};
use ports::{
    AlertEvaluator, AlertFilter, AlertQuery, AlertRepository, DeviceRepository,
    MaintenanceWindowRepository, ReadingRepository, TenantRevisions,
};
use store_postgres::PgStore;
use test_db::TestDatabase;
use time::Duration;
use tokio_postgres::NoTls;
use uuid::Uuid;

fn tenant() -> TenantId {
    TenantId::parse("alerts-pg").expect("valid")
}

fn actor() -> Actor {
    Actor::parse("tester").expect("valid")
}

/// Warning above 30, critical above 40.
fn device(name: &str, site: Option<&str>, stale_after: Option<i64>) -> NewDevice {
    NewDevice {
        id: Uuid::new_v4(),
        spec: DeviceSpec {
            name: DeviceName::parse(name).expect("valid"),
            unit: Unit::parse("C").expect("valid"),
            status: DeviceStatus::Connected,
            site_id: site.map(|s| ScopeLabel::parse(s).expect("valid")),
            device_type: None,
            thresholds: Thresholds::new(None, None, Some(30.0), Some(40.0)).expect("ordered"),
            stale_after: stale_after.map(|s| StaleAfter::from_secs(s).expect("in range")),
            labels: domain::Labels::none(),
        },
    }
}

fn ago(seconds: i64) -> Timestamp {
    Timestamp::now()
        .checked_add(Duration::seconds(-seconds))
        .expect("in range")
}

fn batch(readings: &[(Uuid, Timestamp, f64)]) -> ReadingBatch {
    ReadingBatch::new(
        readings
            .iter()
            .map(|(device_id, timestamp, value)| Reading {
                device_id: *device_id,
                timestamp: *timestamp,
                value: ReadingValue::new(*value).expect("finite"),
            })
            .collect(),
    )
    .expect("valid batch")
}

async fn owner(db: &TestDatabase) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

async fn created(store: &PgStore, new: NewDevice) -> Uuid {
    let id = new.id;
    store
        .create_device(&tenant(), &actor(), new)
        .await
        .expect("created");
    id
}

/// Concurrent ingests into one device judge one after the other (the device's row lock): all
/// succeed and at most one alert is open whatever the interleaving; and the partial unique
/// index refuses a second open alert of the same kind however it is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ingest_into_one_device_never_opens_two_alerts() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let id = created(&store, device("contended", None, None)).await;

    let mut writers = tokio::task::JoinSet::new();
    for k in 0..24i64 {
        let store = store.clone();
        // Warning and normal in turns, in no particular arrival order.
        let value = if k % 2 == 0 { 35.0 } else { 20.0 };
        writers.spawn(async move {
            store
                .ingest(&tenant(), batch(&[(id, ago(100 - k), value)]))
                .await
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("joined").expect("every ingest succeeds");
    }

    let client = owner(&db).await;
    let open = count(
        &client,
        "SELECT count(*) FROM alerts WHERE state = 'open' AND kind = 'threshold'",
    )
    .await;
    assert!(open <= 1, "{open} open threshold alerts");
    let opened = count(
        &client,
        "SELECT count(*) FROM alert_events WHERE type = 'opened'",
    )
    .await;
    let alerts = count(&client, "SELECT count(*) FROM alerts").await;
    assert_eq!(opened, alerts, "each alert opened once");
    let unresolved_resolved = count(
        &client,
        "SELECT count(*) FROM alerts a WHERE a.state = 'resolved' AND NOT EXISTS ( \
           SELECT 1 FROM alert_events e WHERE e.alert_id = a.id AND e.type = 'resolved')",
    )
    .await;
    assert_eq!(unresolved_resolved, 0, "every resolved alert has its event");

    // The constraint itself: a second open alert for the device is refused.
    let refused = client
        .execute(
            "INSERT INTO alerts (tenant_id, id, device_id, kind, severity, peak_severity, state, opened_at) \
             VALUES ('alerts-pg', gen_random_uuid(), $1, 'threshold', 'warning', 'warning', 'open', now()), \
                    ('alerts-pg', gen_random_uuid(), $1, 'threshold', 'warning', 'warning', 'open', now())",
            &[&id],
        )
        .await
        .expect_err("two open threshold alerts for one device were stored");
    assert_eq!(
        refused.as_db_error().and_then(|d| d.constraint()),
        Some("alerts_one_open_per_device_kind"),
        "{refused}"
    );
}

/// Two evaluators running a pass at the same instant on one database record each change once:
/// a device turning stale opens one alert, and a window that stopped covering a device with an
/// open alert records one `unsuppressed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_evaluators_at_once_record_each_change_once() {
    let db = TestDatabase::create().await;
    let (a, b) = (db.store().await, db.store().await);
    let t = tenant();
    let silent = created(&a, device("silent", None, Some(5))).await;
    let muted = created(&a, device("muted", Some("plant-1"), None)).await;
    let window = WindowSlug::generate(0xabcd);
    a.create_window(
        &t,
        &actor(),
        NewMaintenanceWindow {
            window_id: window.clone(),
            definition: WindowDefinition {
                labels: None,
                name: WindowName::parse("works").expect("valid"),
                schedule: WindowSchedule::new(ago(3600), None).expect("valid"),
                recurring: None,
                site_ids: Some(vec![ScopeLabel::parse("plant-1").expect("valid")]),
                device_types: None,
                group_ids: None,
                enabled: true,
            },
        },
    )
    .await
    .expect("window");
    a.ingest(&t, batch(&[(silent, ago(60), 20.0), (muted, ago(1), 35.0)]))
        .await
        .expect("ingested");
    let open = a
        .list_alerts(
            &t,
            &AlertQuery {
                filter: AlertFilter::default(),
                limit: 10,
                after: None,
            },
        )
        .await
        .expect("listed");
    assert_eq!(open.alerts.len(), 1, "{open:?}");
    assert_eq!(
        open.alerts[0].record.suppressed_by,
        std::slice::from_ref(&window)
    );
    a.delete_window(&t, &window).await.expect("deleted");

    let now = Timestamp::now();
    let (ea, eb) = tokio::join!(a.evaluate(now), b.evaluate(now));
    let (ea, eb) = (ea.expect("pass a"), eb.expect("pass b"));
    assert_eq!(ea.events + eb.events, 2, "{ea:?} {eb:?}");

    let client = owner(&db).await;
    let rows = client
        .query(
            "SELECT a.device_id, e.type FROM alert_events e JOIN alerts a ON a.id = e.alert_id \
             ORDER BY e.seq",
            &[],
        )
        .await
        .expect("events");
    let events: Vec<(Uuid, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(events.len(), 3, "{events:?}");
    let per_type = |device: Uuid, kind: &str| {
        events
            .iter()
            .filter(|(d, t)| *d == device && t == kind)
            .count()
    };
    assert_eq!(per_type(silent, "opened"), 1, "{events:?}");
    assert_eq!(per_type(muted, "unsuppressed"), 1, "{events:?}");
    assert_eq!(per_type(muted, "opened"), 1, "{events:?}");

    let again = a.evaluate(Timestamp::now()).await.expect("pass");
    assert_eq!(again.events, 0, "nothing left to record");
}

/// An ingest whose transaction fails stores none of it: no reading, no state, no alert, no
/// event, no number taken from the tenant's counter.
#[tokio::test]
async fn an_ingest_that_fails_leaves_no_event() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant();
    let hot = created(&store, device("hot", None, None)).await;
    let client = owner(&db).await;
    // A reading of 666 makes the readings insert fail, after the state and alerts were judged.
    client
        .batch_execute(
            "CREATE FUNCTION refuse_666() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.value = 666 THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$; \
             CREATE TRIGGER refuse_666 BEFORE INSERT ON readings FOR EACH ROW EXECUTE FUNCTION refuse_666();",
        )
        .await
        .expect("trigger");
    let failed = store
        .ingest(&t, batch(&[(hot, ago(2), 35.0), (hot, ago(1), 666.0)]))
        .await;
    assert!(failed.is_err(), "{failed:?}");
    for table in [
        "readings",
        "latest_readings",
        "alerts",
        "alert_events",
        "alert_event_counters",
    ] {
        assert_eq!(
            count(&client, &format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table} holds rows of a failed ingest"
        );
    }
    assert_eq!(
        store.get_device(&t, hot).await.expect("found").state,
        domain::DeviceState::default()
    );

    client
        .batch_execute("DROP TRIGGER refuse_666 ON readings")
        .await
        .expect("drop");
    store
        .ingest(&t, batch(&[(hot, ago(1), 35.0)]))
        .await
        .expect("ingested");
    let seqs: Vec<i64> = client
        .query("SELECT seq FROM alert_events ORDER BY seq", &[])
        .await
        .expect("seqs")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(seqs, [1], "the failed ingest took no number");
}

/// The status revision moves with what may change a summary and stays for readings that change
/// no status; the whole revision moves with every write.
#[tokio::test]
async fn the_status_revision_stays_for_readings_that_change_no_status() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant();
    let id = created(&store, device("meter", None, None)).await;
    let revisions = || async {
        (
            store.revision(&t).await.expect("revision"),
            store.status_revision(&t).await.expect("status revision"),
        )
    };
    let mut at = 100;
    let mut ingest = |value: f64| {
        at -= 1;
        let readings = batch(&[(id, ago(at), value)]);
        let store = &store;
        let t = &t;
        async move { store.ingest(t, readings).await.expect("ingested") }
    };

    let (r0, s0) = revisions().await;
    ingest(20.0).await;
    let (r1, s1) = revisions().await;
    assert_ne!(r1, r0);
    assert_ne!(s1, s0, "the first reading: no data -> fresh");
    ingest(21.0).await;
    let (r2, s2) = revisions().await;
    assert_ne!(r2, r1, "every write moves the revision");
    assert_eq!(s2, s1, "normal -> normal");
    ingest(35.0).await;
    let (r3, s3) = revisions().await;
    assert_ne!(s3, s2, "normal -> warning");
    ingest(36.0).await;
    let (r4, s4) = revisions().await;
    assert_ne!(r4, r3);
    assert_eq!(
        s4, s3,
        "warning -> warning: only the open alert's value moved"
    );
    let (alert, _) = store
        .list_alerts(
            &t,
            &AlertQuery {
                filter: AlertFilter::default(),
                limit: 1,
                after: None,
            },
        )
        .await
        .map(|p| (p.alerts[0].clone(), p.next))
        .expect("listed");
    assert_eq!(alert.record.last_value, Some(36.0), "the value followed");
    // Older than the latest: stored, but judged for nothing.
    store
        .ingest(&t, batch(&[(id, ago(500), 99.0)]))
        .await
        .expect("ingested");
    let (r5, s5) = revisions().await;
    assert_ne!(r5, r4);
    assert_eq!(s5, s4, "an older reading changes no status");
    ingest(45.0).await;
    let (_, s6) = revisions().await;
    assert_ne!(s6, s5, "warning -> critical");
}

/// A kept summary's changes: between two marks of one scope, exactly the devices whose status,
/// freshness or alerts changed, with their states then; `None` whenever they could miss one (the
/// scope moved, a freshness changed that no event records, the log was pruned past the mark,
/// more devices than asked).
#[tokio::test]
async fn state_changes_name_the_devices_a_summary_counts_differently_and_nothing_else() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant();
    let (a, b) = (
        created(&store, device("a", None, None)).await,
        created(&store, device("b", None, None)).await,
    );
    let ingest = |id: Uuid, at: i64, value: f64| {
        let (store, t) = (&store, &t);
        async move {
            store
                .ingest(t, batch(&[(id, ago(at), value)]))
                .await
                .expect("ingested");
        }
    };
    ingest(a, 100, 20.0).await;
    ingest(b, 100, 20.0).await;
    let m0 = store.state_mark(&t).await.expect("mark");
    let changes = |kept, limit| {
        let (store, t) = (&store, &t);
        async move { store.state_changes(t, kept, limit).await.expect("changes") }
    };

    ingest(a, 90, 21.0).await;
    let same = changes(m0, 10).await;
    assert_eq!(
        (same.mark, same.changed),
        (m0, Some(Vec::new())),
        "normal -> normal: nothing a summary counts"
    );

    ingest(a, 80, 35.0).await;
    let warned = changes(m0, 10).await;
    assert_eq!(warned.mark.scope, m0.scope);
    assert!(warned.mark.seq > m0.seq);
    let changed = warned.changed.expect("complete");
    assert_eq!(changed.len(), 1, "{changed:?}");
    let (id, patch) = changed[0];
    assert_eq!(id, a);
    assert_eq!(patch.state.alert_status, AlertStatus::Warning);
    assert_eq!(patch.state.last_reading.map(|r| r.value), Some(35.0));
    assert!(patch.alerts.open && !patch.alerts.acknowledged);
    assert_eq!(changes(m0, 0).await.changed, None, "more than asked");

    let m1 = warned.mark;
    let alert = store
        .list_alerts(
            &t,
            &AlertQuery {
                filter: AlertFilter::default(),
                limit: 1,
                after: None,
            },
        )
        .await
        .expect("listed")
        .alerts[0]
        .record
        .id;
    store
        .acknowledge(
            &t,
            alert,
            domain::Acknowledgement {
                by: actor(),
                at: Timestamp::now(),
                mode: domain::AckMode::UntilResolved,
                until: None,
                note: None,
            },
        )
        .await
        .expect("acknowledged");
    let acked = changes(m1, 10).await;
    let changed = acked.changed.expect("complete");
    assert_eq!(changed.len(), 1);
    assert!(changed[0].1.alerts.acknowledged, "{changed:?}");

    // A write of the scope: read afresh.
    let m2 = acked.mark;
    store
        .update_device(
            &t,
            &actor(),
            b,
            DeviceChanges {
                name: Some(DeviceName::parse("b2").expect("valid")),
                ..DeviceChanges::default()
            },
        )
        .await
        .expect("updated");
    let renamed = changes(m2, 10).await;
    assert_ne!(renamed.mark.scope, m2.scope);
    assert_eq!(renamed.changed, None);

    // Stale by time alone (no evaluator ran), then a reading: a freshness no event records.
    let c = created(&store, device("c", None, Some(1))).await;
    ingest(c, 10, 20.0).await;
    let m3 = store.state_mark(&t).await.expect("mark");
    ingest(c, 0, 20.0).await;
    let refreshed = changes(m3, 10).await;
    assert_ne!(refreshed.mark.scope, m3.scope, "stale -> fresh, unlogged");
    assert_eq!(refreshed.changed, None);

    // The log pruned past a mark: its changes cannot be told.
    let m4 = refreshed.mark;
    ingest(b, 5, 45.0).await;
    assert!(changes(m4, 10).await.changed.is_some());
    let future = Timestamp::now()
        .checked_add(Duration::days(1))
        .expect("in range");
    ports::EventLog::prune(&store, future, 10_000)
        .await
        .expect("pruned");
    ingest(b, 4, 20.0).await;
    assert_eq!(changes(m4, 10).await.changed, None, "pruned past the mark");
    let m5 = store.state_mark(&t).await.expect("mark");
    assert_eq!(
        changes(m5, 10).await.changed,
        Some(Vec::new()),
        "a mark after the pruning"
    );
}

/// New thresholds judge the latest reading again in the device update's transaction: the
/// status and its `since` change at the update, and the alert opens with no value.
#[tokio::test]
async fn a_threshold_change_rejudges_the_latest_reading() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant();
    let id = created(&store, device("tuned", None, None)).await;
    store
        .ingest(&t, batch(&[(id, ago(10), 25.0)]))
        .await
        .expect("ingested");
    let before = Timestamp::now();
    let updated = store
        .update_device(
            &t,
            &actor(),
            id,
            DeviceChanges {
                // Warning above 20 (critical stays above 40).
                thresholds: [None, None, Some(Some(20.0)), None],
                ..DeviceChanges::default()
            },
        )
        .await
        .expect("updated");
    assert_eq!(updated.state.alert_status, AlertStatus::Warning);
    assert!(updated.state.since.is_some_and(|s| s >= before));
    assert_eq!(
        store.get_device(&t, id).await.expect("found").state,
        updated.state
    );
    let page = store
        .list_alerts(
            &t,
            &AlertQuery {
                filter: AlertFilter::default(),
                limit: 10,
                after: None,
            },
        )
        .await
        .expect("listed");
    let (_, events) = store
        .get_alert(&t, page.alerts[0].record.id)
        .await
        .expect("found");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.value, None, "no reading caused it");
    assert_eq!(page.alerts[0].record.last_value, Some(25.0));
}

/// A tenant's events are numbered 1, 2, 3... with no gap, and a reader never sees a number
/// before a smaller one has committed: the counter's row lock is held to commit. Alert events
/// share their numbers with the event log, which also has the device states between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_numbers_commit_in_order() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let t = tenant();
    let mut ids = Vec::new();
    for k in 0..8 {
        ids.push(created(&store, device(&format!("d{k}"), None, None)).await);
    }
    let client = owner(&db).await;
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let watching = watching.clone();
        tokio::spawn(async move {
            let mut looks = 0;
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                let row = client
                    .query_one("SELECT count(*), coalesce(max(seq), 0) FROM events", &[])
                    .await
                    .expect("look");
                let (n, max): (i64, i64) = (row.get(0), row.get(1));
                assert_eq!(n, max, "a number was seen before a smaller one committed");
                looks += 1;
            }
            looks
        })
    };
    let mut writers = tokio::task::JoinSet::new();
    for (k, id) in ids.iter().copied().enumerate() {
        let store = store.clone();
        let t = t.clone();
        writers.spawn(async move {
            for step in 0..10i64 {
                let value = if step % 2 == 0 { 35.0 } else { 20.0 };
                store
                    .ingest(&t, batch(&[(id, ago(1000 - step * 10 - k as i64), value)]))
                    .await
                    .expect("ingested");
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("writer");
    }
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let looks = watcher.await.expect("watcher");
    assert!(looks > 0);
    let client = owner(&db).await;
    assert_eq!(
        count(&client, "SELECT count(*) FROM alert_events").await,
        80
    );
    // Every reading flips the status: a device.state each, besides the 80 alert events.
    assert_eq!(count(&client, "SELECT count(*) FROM events").await, 160);
    assert_eq!(count(&client, "SELECT max(seq) FROM events").await, 160);
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM alert_events h JOIN events e \
             ON e.tenant_id = h.tenant_id AND e.seq = h.seq AND e.type = 'alert.' || h.type"
        )
        .await,
        80,
        "each alert event is the log's event of its number"
    );
}

/// The tables the migrations create for tenants are each held to one tenant by row-level
/// security for `iot_app`.
#[tokio::test]
async fn every_tenant_table_has_row_level_security() {
    let db = TestDatabase::create().await;
    let _migrated = db.store().await;
    let client = owner(&db).await;
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
               AND c.relname <> 'refinery_schema_history' \
               AND NOT (c.relrowsecurity AND EXISTS ( \
                   SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid \
                   AND pg_get_expr(p.polqual, p.polrelid) LIKE '%app.tenant_id%'))",
            &[],
        )
        .await
        .expect("catalog");
    let unguarded: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert!(
        unguarded.is_empty(),
        "tables without a tenant policy: {unguarded:?}"
    );
}

/// The migration's SQL judge (which backfilled the states of readings stored before it) agrees
/// with the domain's rule on random thresholds and values, bounds included.
#[test]
fn the_migrations_status_judge_agrees_with_the_domain() {
    use proptest::prelude::*;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (db, client) = runtime.block_on(async {
        let db = TestDatabase::create().await;
        let _migrated = db.store().await;
        let client = owner(&db).await;
        (db, client)
    });
    // Values on a coarse grid, so they often sit exactly on a bound.
    let grid = || (-8i32..=8).prop_map(|v| f64::from(v) / 2.0);
    let bounds = proptest::collection::vec(proptest::option::of(grid()), 4).prop_map(|b| {
        let mut set: Vec<f64> = b.iter().flatten().copied().collect();
        set.sort_by(f64::total_cmp);
        let mut sorted = set.into_iter();
        b.iter()
            .map(|x| x.and_then(|_| sorted.next()))
            .collect::<Vec<_>>()
    });
    let cases = proptest::collection::vec((bounds, grid()), 1..64);
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(&cases, |cases| {
            let (mut lists, mut values) = ([vec![], vec![], vec![], vec![]], vec![]);
            for (b, v) in &cases {
                for (list, bound) in lists.iter_mut().zip(b) {
                    list.push(*bound);
                }
                values.push(*v);
            }
            let judged: Vec<String> = runtime.block_on(async {
                client
                    .query(
                        "SELECT judge_alert_status(v, cl, wl, wu, cu) FROM unnest( \
                         $1::float8[], $2::float8[], $3::float8[], $4::float8[], $5::float8[]) \
                         WITH ORDINALITY AS c(v, cl, wl, wu, cu, n) ORDER BY n",
                        &[&values, &lists[0], &lists[1], &lists[2], &lists[3]],
                    )
                    .await
                    .expect("judged")
                    .iter()
                    .map(|r| r.get(0))
                    .collect()
            });
            for ((b, v), sql) in cases.iter().zip(judged) {
                let thresholds = Thresholds::new(b[0], b[1], b[2], b[3]).expect("ordered");
                let domain = domain::alert_status(&thresholds, Some(*v));
                prop_assert_eq!(domain.as_str(), sql.as_str(), "{:?} {}", b, v);
            }
            Ok(())
        })
        .expect("SQL and domain agree");
    runtime.block_on(async move { drop(db) });
}
