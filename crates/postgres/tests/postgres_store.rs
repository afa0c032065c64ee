//! The Postgres adapter against a real PostgreSQL, one throwaway database per test.

use test_db::TestDatabase;
use tokio_postgres::NoTls;

/// The policies are a wall of their own: even a query that forgets its WHERE clause sees only
/// the tenant set for the transaction, and cannot write rows of another tenant.
#[tokio::test]
async fn row_level_security_confines_the_app_role_to_its_tenant() {
    let db = TestDatabase::create().await;
    let _migrated = db.store().await;
    let (mut client, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);

    // As the (superuser) owner, which bypasses the policies: rows of two tenants.
    client
        .batch_execute(
            "INSERT INTO device_groups (tenant_id, id, group_id, name) VALUES \
             ('tenant-a', gen_random_uuid(), 'grp-a', 'A'), \
             ('tenant-b', gen_random_uuid(), 'grp-b', 'B')",
        )
        .await
        .expect("seed rows");

    let tx = client.transaction().await.expect("begin");
    tx.batch_execute(
        "SELECT set_config('role', 'iot_app', true), set_config('app.tenant_id', 'tenant-a', true)",
    )
    .await
    .expect("bind tenant");
    let visible: Vec<String> = tx
        .query("SELECT tenant_id FROM device_groups", &[])
        .await
        .expect("select")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        visible,
        ["tenant-a"],
        "a raw SELECT sees only the bound tenant"
    );

    let updated = tx
        .execute("UPDATE device_groups SET name = 'hijacked'", &[])
        .await
        .expect("update");
    assert_eq!(
        updated, 1,
        "an UPDATE without WHERE touches only the bound tenant's rows"
    );

    let foreign_insert = tx
        .execute(
            "INSERT INTO device_groups (tenant_id, id, group_id, name) VALUES ('tenant-b', gen_random_uuid(), 'grp-x', 'X')",
            &[],
        )
        .await;
    let err = foreign_insert.expect_err("writing another tenant's row is refused");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
        "{err}"
    );
    drop(tx);

    let tx = client.transaction().await.expect("begin");
    tx.batch_execute("SELECT set_config('role', 'iot_app', true)")
        .await
        .expect("role");
    let unbound: i64 = tx
        .query_one("SELECT count(*) FROM device_groups", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(unbound, 0, "without a tenant the app role sees nothing");
}

#[tokio::test]
async fn migrations_are_idempotent_when_instances_start_together() {
    let db = TestDatabase::create().await;
    let (a, b) = tokio::join!(db.store(), db.store());
    drop((a, b));
}

#[tokio::test]
async fn an_unreachable_server_reports_the_store_unavailable() {
    use ports::HealthProbe;
    let db = TestDatabase::create().await;
    let store = db.store().await;
    store
        .check()
        .await
        .expect("healthy while the database exists");
    drop(store);
    let url = db.url().to_owned();
    drop(db); // drops the database
    let err = store_postgres::PgStore::connect(&store_postgres::PgSettings {
        url,
        pool_size: 1,
        workers: 1,
        wait_timeout: std::time::Duration::from_secs(1),
        statement_timeout: std::time::Duration::from_secs(30),
    })
    .await;
    assert!(
        err.is_err(),
        "connecting to a missing database fails with an error"
    );
}

/// The alert summary's data comes from one statement over the members, the devices and the
/// latest-reading rows, all by index: never the readings table, however many readings exist.
#[tokio::test]
async fn the_group_summary_query_never_reads_the_readings_table() {
    let db = TestDatabase::create().await;
    let _migrated = db.store().await;
    let (client, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    // A group of 2,000 devices with 20 readings each, so the planner has real tables to weigh.
    client
        .batch_execute(
            "INSERT INTO devices (tenant_id, id, name) \
               SELECT 't', md5(i::text)::uuid, 'd' || i FROM generate_series(1, 2000) i; \
             INSERT INTO device_groups (tenant_id, id, group_id, name) VALUES ('t', md5('g')::uuid, 'grp-g', 'G'); \
             INSERT INTO device_group_members (tenant_id, group_id, device_id) \
               SELECT 't', md5('g')::uuid, id FROM devices; \
             INSERT INTO readings (tenant_id, device_id, ts, value) \
               SELECT 't', d.id, now() - make_interval(mins => k), k FROM devices d, generate_series(1, 20) k; \
             INSERT INTO latest_readings (tenant_id, device_id, ts, value) \
               SELECT DISTINCT ON (device_id) tenant_id, device_id, ts, value FROM readings ORDER BY device_id, ts DESC; \
             ANALYZE",
        )
        .await
        .expect("seed");
    let plan: Vec<String> = client
        .query(
            &format!("EXPLAIN {}", store_postgres::members_sql())
                .replace("$1", "'t'")
                .replace("$2", "md5('g')::uuid"),
            &[],
        )
        .await
        .expect("explain")
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        !plan.contains(" on readings"),
        "the summary must not read the readings table:\n{plan}"
    );
    assert!(plan.contains("latest_readings"), "{plan}");
}

/// The benchmark's references run the statements of `sql_catalog` (through `iot-api
/// sql-catalog`): each must be there under the name `scripts/bench/prepare.py` reads, and be
/// valid against the migrated schema.
#[tokio::test]
async fn every_statement_of_the_sql_catalog_prepares_on_the_migrated_schema() {
    const READ_BY_THE_BENCHMARK: [&str; 27] = [
        "BIND_TENANT",
        "REVISION",
        "STATUS_REVISION",
        "REVISIONS",
        "MEMBERS_LATEST",
        "CUSTOM_PLANS",
        "MEMBERS",
        "WINDOW_MEMBERSHIPS",
        "GROUP_BY_ID",
        "GROUP_READINGS",
        "FIND_GROUP",
        "GROUP_LIST_PAGE",
        "GROUP_LIST_COUNT",
        "LIVE_WINDOWS",
        "GET_DEVICE",
        "DEVICE_EXISTS",
        "DEVICE_READINGS",
        "LOCK_DEVICES",
        "DEVICE_STATES",
        "OPEN_ALERTS",
        "INGEST",
        "KEEP_STATE",
        "HOLD_PENDING",
        "ROLL_HOUR",
        "DEVICE_BUCKETS",
        "GROUP_BUCKETS",
        "GROUP_BUCKETS_RAW",
    ];
    let db = TestDatabase::create().await;
    let _migrated = db.store().await;
    let (client, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);

    let catalog = store_postgres::sql_catalog();
    let mut names: Vec<&str> = catalog.iter().map(|(name, _)| *name).collect();
    names.sort_unstable();
    let mut expected = READ_BY_THE_BENCHMARK.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected);
    for (name, sql) in &catalog {
        if let Err(e) = client.prepare(sql).await {
            panic!("{name} does not prepare: {e:?}\n{sql}");
        }
    }
}

/// Ready for distribution by tenant (Citus): every primary key, unique constraint and foreign
/// key of the schema includes `tenant_id`, on both sides of a foreign key.
#[tokio::test]
async fn every_key_of_the_schema_includes_tenant_id() {
    let db = TestDatabase::create().await;
    let _migrated = db.store().await;
    let (client, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT con.conrelid::regclass::text, con.conname::text, con.contype::text,
                    EXISTS (SELECT 1 FROM unnest(con.conkey) k JOIN pg_attribute a
                            ON a.attrelid = con.conrelid AND a.attnum = k WHERE a.attname = 'tenant_id'),
                    con.contype <> 'f' OR EXISTS (SELECT 1 FROM unnest(con.confkey) k JOIN pg_attribute a
                            ON a.attrelid = con.confrelid AND a.attnum = k WHERE a.attname = 'tenant_id')
             FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
             WHERE n.nspname = 'public' AND con.contype IN ('p', 'u', 'f')
               AND con.conrelid::regclass::text <> 'refinery_schema_history'",
            &[],
        )
        .await
        .expect("catalog");
    assert!(
        rows.len() >= 10,
        "the schema's keys were read: {}",
        rows.len()
    );
    let offenders: Vec<String> = rows
        .iter()
        .filter(|r| !(r.get::<_, bool>(3) && r.get::<_, bool>(4)))
        .map(|r| {
            format!(
                "{}.{} ({})",
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2)
            )
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "keys without tenant_id: {offenders:?}"
    );
}

/// Readings are partitioned by month; maintenance creates partitions ahead (moving rows that
/// waited in the default partition) and retention drops whole partitions.
#[tokio::test]
async fn readings_are_partitioned_by_month_and_retention_drops_whole_partitions() {
    use ports::{DeviceRepository, ReadingRepository};
    use time::macros::datetime;

    let db = TestDatabase::create().await;
    let store = db.store().await;
    let tenant = domain::TenantId::parse("partitions").expect("valid");
    let actor = domain::Actor::parse("tester").expect("valid");
    let device = connected_device("meter", "kWh");
    store
        .create_device(&tenant, &actor, device.clone())
        .await
        .expect("device");
    let reading = |t: time::OffsetDateTime, v: f64| domain::Reading {
        device_id: device.id,
        timestamp: domain::Timestamp::new(t).expect("in range"),
        value: domain::ReadingValue::new(v).expect("finite"),
    };
    // Before any partition exists, everything waits in the default partition.
    store
        .ingest(
            &tenant,
            domain::ReadingBatch::new(vec![
                reading(datetime!(2026-01-15 0:00 UTC), 1.0),
                reading(datetime!(2026-02-15 0:00 UTC), 2.0),
                reading(datetime!(2026-03-15 0:00 UTC), 3.0),
                reading(datetime!(2020-06-01 0:00 UTC), 0.5),
            ])
            .expect("valid"),
        )
        .await
        .expect("ingested");

    let report = store
        .maintain_partitions(datetime!(2026-01-20 0:00 UTC), None, 2)
        .await
        .expect("maintained");
    assert_eq!(
        report.created,
        ["readings_p202601", "readings_p202602", "readings_p202603"]
    );
    let again = store
        .maintain_partitions(datetime!(2026-01-20 0:00 UTC), None, 2)
        .await
        .expect("maintained");
    assert!(again.created.is_empty(), "maintenance is idempotent");

    let (client, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let homes: Vec<(String, f64)> = client
        .query(
            "SELECT tableoid::regclass::text, value FROM readings ORDER BY ts",
            &[],
        )
        .await
        .expect("select")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        homes,
        [
            ("readings_default".to_owned(), 0.5),
            ("readings_p202601".to_owned(), 1.0),
            ("readings_p202602".to_owned(), 2.0),
            ("readings_p202603".to_owned(), 3.0),
        ],
        "rows were moved from the default partition into their month"
    );

    // 45 days of retention on 2026-03-20: January ends 2026-02-01 (before the cutoff of
    // 2026-02-03) and goes whole; February ends after the cutoff and stays.
    use ports::TenantRevisions as _;
    store
        .roll_up_hours(datetime!(2026-03-20 0:00 UTC), 100)
        .await
        .expect("rolled up");
    let before = store.revision(&tenant).await.expect("read");
    let report = store
        .maintain_partitions(
            datetime!(2026-03-20 0:00 UTC),
            Some(std::time::Duration::from_secs(45 * 86_400)),
            0,
        )
        .await
        .expect("maintained");
    assert_eq!(report.dropped, ["readings_p202601"]);
    assert_eq!(
        report.deleted_from_default, 1,
        "the 2020 reading outside any partition went too"
    );
    let left: Vec<f64> = client
        .query("SELECT value FROM readings ORDER BY ts", &[])
        .await
        .expect("select")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, [2.0, 3.0]);
    let rolled: Vec<f64> = client
        .query(
            "SELECT total FROM reading_rollups_hour ORDER BY bucket",
            &[],
        )
        .await
        .expect("select")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        rolled,
        [2.0, 3.0],
        "the hourly rollups of dropped readings went too"
    );
    let exists: bool = client
        .query_one("SELECT to_regclass('readings_p202601') IS NOT NULL", &[])
        .await
        .expect("q")
        .get(0);
    assert!(!exists, "the whole partition is gone, not just its rows");
    assert_ne!(
        store.revision(&tenant).await.expect("read"),
        before,
        "readings dropped by retention make kept views stale"
    );
}

/// Writes that do not go through the adapter move revisions too (migration V6's triggers): one
/// bound to a tenant moves that tenant's, one bound to none (an operator, as the owner) moves
/// every tenant's.
#[tokio::test]
async fn writes_from_outside_the_service_move_revisions_too() {
    use ports::{DeviceGroupRepository as _, TenantRevisions as _};
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let actor = domain::Actor::parse("tester").expect("valid");
    let (a, b) = (
        domain::TenantId::parse("outside-a").expect("valid"),
        domain::TenantId::parse("outside-b").expect("valid"),
    );
    for (tenant, slug) in [(&a, "grp-0000000a"), (&b, "grp-0000000b")] {
        store
            .create_group(
                tenant,
                &actor,
                domain::NewDeviceGroup {
                    filter: None,
                    id: uuid::Uuid::new_v4(),
                    group_id: domain::GroupSlug::parse(slug).expect("valid"),
                    name: domain::GroupName::parse(slug).expect("valid"),
                    description: None,
                    members: Vec::new(),
                    parent_id: None,
                },
            )
            .await
            .expect("created");
    }
    let revisions = || async {
        (
            store.revision(&a).await.expect("read"),
            store.revision(&b).await.expect("read"),
        )
    };
    let (client, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);

    let (a0, b0) = revisions().await;
    client
        .batch_execute(
            "BEGIN; SELECT set_config('role', 'iot_app', true), set_config('app.tenant_id', 'outside-a', true); \
             UPDATE device_groups SET description = 'by hand'; COMMIT;",
        )
        .await
        .expect("tenant-bound write");
    let (a1, b1) = revisions().await;
    assert_ne!(a1, a0, "the bound tenant's revision moved");
    assert_eq!(b1, b0, "another tenant's did not");

    client
        .batch_execute("UPDATE device_groups SET description = NULL")
        .await
        .expect("owner's write");
    let (a2, b2) = revisions().await;
    assert_ne!(
        a2, a1,
        "a write bound to no tenant moves every tenant's revision"
    );
    assert_ne!(
        b2, b1,
        "a write bound to no tenant moves every tenant's revision"
    );
}

/// Every operation's transaction ends before its connection serves anyone else: after a failed
/// statement (the transaction is aborted), and after a caller gave up halfway (the future was
/// dropped with requests in flight). With one pooled connection, a leftover transaction would
/// fail the next operation or commit the abandoned one's writes with it.
#[tokio::test]
async fn a_pooled_connection_never_carries_a_transaction_to_the_next_operation() {
    use domain::{Actor, GroupName, GroupSlug, ListQuery, NewDeviceGroup, TenantId};
    use ports::{CreateGroupError, DeviceGroupRepository as _};

    let db = TestDatabase::create().await;
    let store = store_postgres::PgStore::connect(&store_postgres::PgSettings {
        url: db.url().to_owned(),
        pool_size: 1,
        workers: 1,
        wait_timeout: std::time::Duration::from_secs(5),
        statement_timeout: std::time::Duration::from_secs(30),
    })
    .await
    .expect("connect");
    let actor = Actor::parse("alice").expect("valid");
    let group = |slug: &str| NewDeviceGroup {
        filter: None,
        id: uuid::Uuid::new_v4(),
        group_id: GroupSlug::parse(slug).expect("valid"),
        name: GroupName::parse(slug).expect("valid"),
        description: None,
        members: Vec::new(),
        parent_id: None,
    };
    let (a, b) = (
        TenantId::parse("tenant-a").expect("valid"),
        TenantId::parse("tenant-b").expect("valid"),
    );
    let all = ListQuery::default();

    let created = store
        .create_group(&a, &actor, group("grp-one"))
        .await
        .expect("created");
    let taken = store.create_group(&a, &actor, group("grp-one")).await;
    assert!(
        matches!(taken, Err(CreateGroupError::GroupIdTaken(_))),
        "{taken:?}"
    );
    // The same (only) connection, for another tenant: a clean transaction of its own.
    let seen_by_b = store.list_groups(&b, &all).await.expect("listed");
    assert_eq!(
        seen_by_b.total, 0,
        "tenant b sees none of tenant a's groups"
    );

    // Abandoned halfway: each create is dropped after a growing head start.
    let mut abandoned = Vec::new();
    for step in 0..30u64 {
        let slug = format!("grp-gone-{step}");
        let head_start = std::time::Duration::from_micros(50 * step);
        let _ =
            tokio::time::timeout(head_start, store.create_group(&b, &actor, group(&slug))).await;
        abandoned.push(slug);
        // And reads, which open, run and commit their transaction in one round trip.
        let _ = tokio::time::timeout(
            head_start,
            store.get_group(&a, &ports::GroupKey::Id(created.group.id)),
        )
        .await;
    }
    let read = store
        .get_group(&a, &ports::GroupKey::Id(created.group.id))
        .await
        .expect("reads work after abandoned reads");
    assert_eq!(read.group.group_id.as_str(), "grp-one");
    store
        .create_group(&b, &actor, group("grp-after"))
        .await
        .expect("the connection still works after abandoned transactions");
    let listed = store.list_groups(&b, &all).await.expect("listed");
    let slugs: Vec<&str> = listed.items.iter().map(|g| g.group_id.as_str()).collect();
    assert!(slugs.contains(&"grp-after"), "{slugs:?}");
    assert!(
        slugs
            .iter()
            .all(|s| *s == "grp-after" || abandoned.iter().any(|a| a == s)),
        "{slugs:?}"
    );
    let seen_by_a = store.list_groups(&a, &all).await.expect("listed");
    assert_eq!(
        seen_by_a.total, 1,
        "tenant a still has exactly its one group"
    );
}

/// The connections are split between the request threads, never more than `pool_size` in all,
/// and every thread is served, also with fewer connections than threads.
#[test]
fn the_pool_is_split_between_the_threads_serving_requests() {
    use ports::HealthProbe;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let db = runtime.block_on(TestDatabase::create());
    for (pool_size, workers, max) in [(5, 2, 5), (1, 4, 1), (4, 1, 4)] {
        let store = runtime
            .block_on(store_postgres::PgStore::connect(
                &store_postgres::PgSettings {
                    url: db.url().to_owned(),
                    pool_size,
                    workers,
                    wait_timeout: std::time::Duration::from_secs(5),
                    statement_timeout: std::time::Duration::from_secs(30),
                },
            ))
            .expect("connect");
        assert_eq!(
            store.pool_status().max_size,
            max,
            "{pool_size} over {workers}"
        );
        // Each thread on a runtime of its own, as the HTTP workers are. The runtimes run until
        // every thread is done: a connection's I/O runs on the runtime that opened it, and
        // threads share connections when there are fewer than threads.
        let threads = workers.max(2);
        let done = tokio::sync::Barrier::new(threads);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let (store, done) = (store.clone(), &done);
                scope.spawn(move || {
                    let own = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    own.block_on(async {
                        for _ in 0..3 {
                            store.check().await.expect("served");
                        }
                        // Waiting, the runtime still drives the connections it opened.
                        done.wait().await;
                    });
                });
            }
        });
        let status = store.pool_status();
        assert!(status.size <= max, "{status:?}");
    }
    // Dropped where a runtime is current, as it is everywhere else.
    runtime.block_on(async move { drop(db) });
}

/// A write dropped while its statement waits for a lock (its request ran out of time) gives
/// its connection back at once, the lock still held: the statement is cancelled, not left to
/// wait with a ROLLBACK queued behind it. (The store's statement timeout is 30 s here, so only
/// the cancel can end the wait in time.)
#[tokio::test]
async fn a_write_dropped_mid_statement_gives_its_connection_back() {
    // Arrange: acme's device locked from outside.
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let (locker, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let id = uuid::Uuid::new_v4();
    locker
        .execute(
            "INSERT INTO devices (tenant_id, id, name) VALUES ('acme', $1, 'locked')",
            &[&id],
        )
        .await
        .expect("seed a device");
    locker
        .batch_execute("BEGIN; SELECT 1 FROM devices WHERE tenant_id = 'acme' FOR UPDATE")
        .await
        .expect("lock it");
    let tenant = domain::TenantId::parse("acme").expect("tenant");

    // Act: the delete, dropped while it waits for the lock.
    let delete = ports::DeviceRepository::delete_device(&store, &tenant, id);
    let dropped = tokio::time::timeout(std::time::Duration::from_millis(500), delete).await;
    assert!(dropped.is_err(), "the delete did not wait for the lock");
    let dropped_at = std::time::Instant::now();

    // Assert: every connection idle again, and nothing waiting for the lock.
    loop {
        let status = store.pool_status();
        if status.available == status.size {
            break;
        }
        assert!(
            dropped_at.elapsed() < std::time::Duration::from_secs(5),
            "the connection is still busy {:?} after the drop: {status:?}",
            dropped_at.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    println!("connection back {:?} after the drop", dropped_at.elapsed());
    let waiting: i64 = locker
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .expect("count waiting statements")
        .get(0);
    assert_eq!(waiting, 0, "a statement still waits for the lock");
    locker.batch_execute("ROLLBACK").await.expect("unlock");
}

/// A group's member count is kept by triggers (migration V8) instead of counted at each read:
/// whatever adds or removes memberships (inserts, deletes, a device's deletion cascading, a
/// group's deletion), as the service's bound role, the kept count equals a count of the rows.
#[tokio::test]
async fn kept_member_counts_follow_every_way_memberships_change() {
    let db = TestDatabase::create().await;
    let _migrated = db.store().await;
    let (mut client, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let tx = client.transaction().await.expect("begin");
    tx.batch_execute(
        "SELECT set_config('role', 'iot_app', true), set_config('app.tenant_id', 't', true); \
         INSERT INTO devices (tenant_id, id, name) \
           SELECT 't', md5(i::text)::uuid, 'd' || i FROM generate_series(1, 50) i; \
         INSERT INTO device_groups (tenant_id, id, group_id, name) VALUES \
           ('t', md5('a')::uuid, 'grp-a', 'A'), ('t', md5('b')::uuid, 'grp-b', 'B'), \
           ('t', md5('c')::uuid, 'grp-c', 'C'); \
         INSERT INTO device_group_members (tenant_id, group_id, device_id) \
           SELECT 't', md5('a')::uuid, id FROM devices; \
         INSERT INTO device_group_members (tenant_id, group_id, device_id) \
           SELECT 't', g, d.id FROM devices d, (VALUES (md5('b')::uuid), (md5('c')::uuid)) v(g) \
           WHERE d.name IN ('d1', 'd2', 'd3', 'd4'); \
         DELETE FROM device_group_members WHERE group_id = md5('a')::uuid AND device_id = md5('7')::uuid; \
         DELETE FROM devices WHERE name IN ('d1', 'd9'); \
         DELETE FROM device_groups WHERE id = md5('c')::uuid; \
         INSERT INTO device_groups (tenant_id, id, group_id, name) VALUES ('t', md5('c')::uuid, 'grp-c', 'C'); \
         INSERT INTO device_group_members (tenant_id, group_id, device_id) \
           SELECT 't', md5('c')::uuid, id FROM devices WHERE name = 'd2'",
    )
    .await
    .expect("memberships change");
    let rows = tx
        .query(
            &format!(
                "SELECT g.name, {}, (SELECT count(*) FROM device_group_members m \
                   WHERE m.tenant_id = g.tenant_id AND m.group_id = g.id) \
                 FROM device_groups g ORDER BY g.name",
                "(SELECT coalesce(sum(c.members), 0)::bigint FROM group_member_counts c \
                   WHERE c.tenant_id = g.tenant_id AND c.group_id = g.id)"
            ),
            &[],
        )
        .await
        .expect("counts");
    let counts: Vec<(String, i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        counts,
        [
            ("A".to_owned(), 47, 47),
            ("B".to_owned(), 3, 3),
            ("C".to_owned(), 1, 1)
        ],
        "(group, kept count, rows)"
    );
}

/// Hourly rollups (V13) are built by the background job from ended pending hours; bucketed
/// answers are the same before the job, after it, and after a late or re-sent reading marks an
/// hour pending again.
#[tokio::test]
async fn rolled_up_hours_answer_as_the_readings_do() {
    use domain::bucket::{Aggregates, BucketGrid, BucketQuery, Fill, Interval, Zone};
    use ports::{DeviceRepository as _, ReadingRepository as _};
    use time::macros::datetime;
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let tenant = domain::TenantId::parse("rollups").expect("valid");
    let actor = domain::Actor::parse("tester").expect("valid");
    let device = connected_device("rolled", "");
    store
        .create_device(&tenant, &actor, device.clone())
        .await
        .expect("device");
    let send = |t: time::OffsetDateTime, v: f64| {
        store.ingest(
            &tenant,
            domain::ReadingBatch::new(vec![domain::Reading {
                device_id: device.id,
                timestamp: domain::Timestamp::new(t).expect("in range"),
                value: domain::ReadingValue::new(v).expect("finite"),
            }])
            .expect("valid"),
        )
    };
    for (minute, v) in [(0, 1.0), (20, 5.0), (40, 3.0), (80, 4.0), (150, 9.0)] {
        send(
            datetime!(2025-06-01 10:00 UTC) + time::Duration::minutes(minute),
            v,
        )
        .await
        .expect("in");
    }
    let at = |t| domain::Timestamp::new(t).expect("in range");
    let query = |interval: &str, zone: &str| BucketQuery {
        since: at(datetime!(2025-06-01 09:00 UTC)),
        until: Some(at(datetime!(2025-06-01 14:00 UTC))),
        grid: BucketGrid::new(
            Interval::parse(interval).expect("valid"),
            &Zone::parse(zone).expect("valid"),
            at(datetime!(2025-06-01 09:00 UTC)),
            at(datetime!(2025-06-01 14:00 UTC)),
        )
        .expect("few"),
        aggregates: Aggregates::parse("avg,min,max,first,last,sum").expect("valid"),
        fill: Fill::None,
    };
    let answers = || async {
        let mut all = Vec::new();
        for (interval, zone) in [("1h", "UTC"), ("1d", "Asia/Kolkata"), ("6h", "UTC")] {
            all.push(
                store
                    .device_buckets(&tenant, device.id, &query(interval, zone))
                    .await
                    .expect("read")
                    .buckets,
            );
        }
        all
    };
    let from_readings = answers().await;
    assert_eq!(from_readings[0].len(), 3, "{from_readings:?}");
    assert_eq!(
        (
            from_readings[0][0].count,
            from_readings[0][0].sum,
            from_readings[0][0].last
        ),
        (3, 9.0, 3.0)
    );

    let (client, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let count = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(sql, &[])
                .await
                .expect("count")
                .get::<_, i64>(0)
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM reading_rollups_pending").await,
        3
    );
    // Only ended hours: at 12:30 the 12:00 hour stays pending.
    let rolled = store
        .roll_up_hours(datetime!(2025-06-01 12:30 UTC), 100)
        .await
        .expect("rolled");
    assert_eq!(rolled, 2);
    assert_eq!(count("SELECT count(*) FROM reading_rollups_hour").await, 2);
    assert_eq!(
        answers().await,
        from_readings,
        "rollups answer as the readings did"
    );

    // A re-sent and a late reading: the hour is pending again, answered from the readings.
    send(datetime!(2025-06-01 10:20 UTC), 7.0)
        .await
        .expect("in");
    send(datetime!(2025-06-01 10:10 UTC), 2.0)
        .await
        .expect("in");
    let changed = answers().await;
    assert_eq!(
        (changed[0][0].count, changed[0][0].sum, changed[0][0].max),
        (4, 13.0, 7.0)
    );
    store
        .roll_up_hours(datetime!(2025-06-02 0:00 UTC), 100)
        .await
        .expect("rolled");
    assert_eq!(
        count("SELECT count(*) FROM reading_rollups_pending").await,
        0
    );
    assert_eq!(answers().await, changed);
    let total: f64 = client
        .query_one(
            "SELECT total FROM reading_rollups_hour WHERE bucket = '2025-06-01 10:00+00'",
            &[],
        )
        .await
        .expect("row")
        .get(0);
    assert_eq!(total, 13.0);

    // A range delete marks the hours that lost readings pending again: answered from the
    // readings at once, and rolled up anew by the job.
    let deleted = store
        .delete_device_readings(
            &tenant,
            device.id,
            at(datetime!(2025-06-01 10:05 UTC)),
            at(datetime!(2025-06-01 10:30 UTC)),
        )
        .await
        .expect("deleted");
    assert_eq!(deleted, 2);
    assert_eq!(
        count("SELECT count(*) FROM reading_rollups_pending").await,
        1
    );
    let trimmed = answers().await;
    assert_eq!(
        (trimmed[0][0].count, trimmed[0][0].sum),
        (2, 4.0),
        "{trimmed:?}"
    );
    store
        .roll_up_hours(datetime!(2025-06-02 0:00 UTC), 100)
        .await
        .expect("rolled");
    assert_eq!(answers().await, trimmed);
    let total: f64 = client
        .query_one(
            "SELECT total FROM reading_rollups_hour WHERE bucket = '2025-06-01 10:00+00'",
            &[],
        )
        .await
        .expect("row")
        .get(0);
    assert_eq!(total, 4.0);
}

/// Streamed exports hold a connection each, so they run in slots of their own: past the slots
/// an export is refused as unavailable (a 503) instead of draining the pool; a finished or
/// dropped export frees its slot, and its connection goes back to the pool usable.
#[tokio::test]
async fn exports_run_in_bounded_slots_and_free_them_when_done_or_dropped() {
    use futures_util::StreamExt as _;
    use ports::{DeviceRepository, LookupError, ReadingRepository, StoreError};

    let db = TestDatabase::create().await;
    let store = db.store().await.with_export_slots(1);
    assert_eq!(store.export_slots(), 1);
    let tenant = domain::TenantId::parse("acme").expect("valid");
    let actor = domain::Actor::parse("alice").expect("valid");
    let device = connected_device("exported", "");
    store
        .create_device(&tenant, &actor, device.clone())
        .await
        .expect("created");
    let now = domain::Timestamp::now();
    let readings: Vec<domain::Reading> = (1..=50)
        .map(|i| domain::Reading {
            device_id: device.id,
            timestamp: now
                .checked_add(time::Duration::seconds(-i))
                .expect("in range"),
            value: domain::ReadingValue::new(1.0).expect("finite"),
        })
        .collect();
    store
        .ingest(&tenant, domain::ReadingBatch::new(readings).expect("valid"))
        .await
        .expect("ingested");
    let query = domain::ReadingQuery::last_hours(now, 1, 1)
        .and_then(|q| q.exporting(1_000))
        .expect("valid");

    let mut first = store
        .export_device_readings(&tenant, device.id, query)
        .await
        .expect("a slot");
    assert!(first.next().await.is_some(), "the first export streams");
    assert!(
        matches!(
            store
                .export_device_readings(&tenant, device.id, query)
                .await,
            Err(LookupError::Store(StoreError::Unavailable(_)))
        ),
        "no slot left"
    );
    drop(first);
    let whole: Vec<_> = store
        .export_device_readings(&tenant, device.id, query)
        .await
        .expect("the dropped export's slot is free")
        .collect()
        .await;
    assert_eq!(whole.len(), 50);
    assert!(whole.iter().all(Result::is_ok));
    let again = store
        .export_device_readings(&tenant, device.id, query)
        .await
        .expect("the finished export's slot is free");
    assert_eq!(again.count().await, 50);
    let page = store
        .device_readings(
            &tenant,
            device.id,
            domain::ReadingQuery::last_hours(now, 1, 100).expect("valid"),
        )
        .await
        .expect("the pool's connections are usable");
    assert_eq!(page.len(), 50);
}

/// A connected device named `name` measuring in `unit`, with no thresholds, site, type or labels.
fn connected_device(name: &str, unit: &str) -> domain::NewDevice {
    domain::NewDevice {
        id: uuid::Uuid::new_v4(),
        spec: domain::DeviceSpec {
            name: domain::DeviceName::parse(name).expect("valid"),
            unit: domain::Unit::parse(unit).expect("valid"),
            status: domain::DeviceStatus::Connected,
            site_id: None,
            device_type: None,
            thresholds: domain::Thresholds::default(),
            stale_after: None,
            labels: domain::Labels::none(),
        },
    }
}

/// Device writes, filter writes and deletes of one tenant at once never fail on each other
/// (no deadlock, no foreign-key race: every writer of dynamic memberships takes the tenant's
/// membership lock before any row lock it could wait on), and when they are done every dynamic
/// group holds exactly the devices its filter selects.
#[tokio::test]
async fn dynamic_memberships_stay_exact_under_concurrent_device_filter_and_delete_writes() {
    use domain::{
        Actor, DeviceChanges, GroupChanges, GroupFilter, GroupName, GroupSlug, Labels, ListQuery,
        MemberConditions, NewDeviceGroup, TenantId,
    };
    use ports::{DeviceGroupRepository as _, DeviceRepository as _, GroupKey};
    use std::sync::Arc;

    let db = TestDatabase::create().await;
    let store = Arc::new(db.store().await);
    let tenant = TenantId::parse("dyn-race").expect("valid");
    let actor = Actor::parse("racer").expect("valid");
    fn line(v: &str) -> Labels {
        Labels::parse([("line", v)]).expect("valid")
    }
    fn by_line(v: &str) -> GroupFilter {
        GroupFilter::Matching(
            MemberConditions::new(None, None, Some(line(v)), None).expect("a condition"),
        )
    }
    let mut devices = Vec::new();
    for i in 0..12 {
        let mut d = connected_device(&format!("d{i}"), "C");
        d.spec.labels = line(if i % 2 == 0 { "a" } else { "b" });
        store
            .create_device(&tenant, &actor, d.clone())
            .await
            .expect("created");
        devices.push(d.id);
    }
    let mut groups = Vec::new();
    for (slug, v) in [("grp-a", "a"), ("grp-b", "b")] {
        let g = NewDeviceGroup {
            parent_id: None,
            id: uuid::Uuid::new_v4(),
            group_id: GroupSlug::parse(slug).expect("valid"),
            name: GroupName::parse(slug).expect("valid"),
            description: None,
            filter: Some(by_line(v)),
            members: Vec::new(),
        };
        store
            .create_group(&tenant, &actor, g.clone())
            .await
            .expect("created");
        groups.push(g.id);
    }

    let mut tasks = tokio::task::JoinSet::new();
    // Devices flipping between the lines, each in its own task.
    for (n, id) in devices.iter().copied().enumerate() {
        let (store, tenant, actor) = (store.clone(), tenant.clone(), actor.clone());
        tasks.spawn(async move {
            for round in 0..15 {
                let v = if (n + round) % 2 == 0 { "b" } else { "a" };
                let changes = DeviceChanges {
                    labels: Some(line(v)),
                    ..DeviceChanges::default()
                };
                store
                    .update_device(&tenant, &actor, id, changes)
                    .await
                    .map_err(|e| format!("device write: {e}"))?;
            }
            Ok::<(), String>(())
        });
    }
    // The filters swapping lines.
    {
        let (store, tenant, actor, groups) =
            (store.clone(), tenant.clone(), actor.clone(), groups.clone());
        tasks.spawn(async move {
            for round in 0..15 {
                for (i, id) in groups.iter().enumerate() {
                    let v = if (i + round) % 2 == 0 { "a" } else { "b" };
                    let changes = GroupChanges {
                        filter: Some(Some(by_line(v))),
                        ..GroupChanges::default()
                    };
                    store
                        .update_group(&tenant, &actor, &GroupKey::Id(*id), changes)
                        .await
                        .map_err(|e| format!("filter write: {e}"))?;
                }
            }
            Ok(())
        });
    }
    // Devices and groups created and deleted meanwhile.
    {
        let (store, tenant, actor) = (store.clone(), tenant.clone(), actor.clone());
        tasks.spawn(async move {
            for round in 0..10 {
                let mut d = connected_device(&format!("brief-{round}"), "C");
                d.spec.labels = line("a");
                store
                    .create_device(&tenant, &actor, d.clone())
                    .await
                    .map_err(|e| format!("device create: {e}"))?;
                let g = NewDeviceGroup {
                    parent_id: None,
                    id: uuid::Uuid::new_v4(),
                    group_id: GroupSlug::parse(&format!("grp-brief-{round}")).expect("valid"),
                    name: GroupName::parse(&format!("brief {round}")).expect("valid"),
                    description: None,
                    filter: Some(GroupFilter::All),
                    members: Vec::new(),
                };
                store
                    .create_group(&tenant, &actor, g.clone())
                    .await
                    .map_err(|e| format!("group create: {e}"))?;
                store
                    .delete_device(&tenant, d.id)
                    .await
                    .map_err(|e| format!("device delete: {e}"))?;
                store
                    .delete_group(&tenant, &GroupKey::Id(g.id))
                    .await
                    .map_err(|e| format!("group delete: {e}"))?;
            }
            Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task ran").expect("every write succeeds");
    }

    for id in &groups {
        let key = GroupKey::Id(*id);
        let group = store.get_group_row(&tenant, &key).await.expect("found");
        let Some(GroupFilter::Matching(c)) = &group.filter else {
            panic!("still dynamic");
        };
        let wanted = c.labels().expect("by line").clone();
        let mut members: Vec<uuid::Uuid> = store
            .list_members(&tenant, &key, &ListQuery::all())
            .await
            .expect("listed")
            .items
            .iter()
            .map(|d| d.id)
            .collect();
        members.sort();
        let mut expected = Vec::new();
        for device in &devices {
            let d = store.get_device(&tenant, *device).await.expect("found");
            if d.spec.labels.contains_all(&wanted) {
                expected.push(*device);
            }
        }
        expected.sort();
        assert_eq!(members, expected, "{}", group.group_id.as_str());
        assert_eq!(
            group.member_count,
            expected.len() as u64,
            "the count agrees"
        );
    }
}

/// A device list's total is kept per filter at the tenant's scope revision: it follows device
/// writes made through another instance (a create, a relabelling, a delete) at once, and pages
/// walked in name order (a filter matching most devices) or sorted (a selective one) are the
/// same pages.
#[tokio::test]
async fn device_list_totals_follow_writes_of_another_instance_and_pages_keep_their_order() {
    use domain::{DeviceChanges, DeviceFilter, Labels, ListQuery, TenantId};
    use ports::DeviceRepository as _;
    let db = TestDatabase::create().await;
    let (reader, writer) = (db.store().await, db.store().await);
    let tenant = TenantId::parse("list-counts").expect("valid");
    let actor = domain::Actor::parse("tester").expect("valid");
    let labelled = |name: &str, fleet: &str| {
        let mut device = connected_device(name, "C");
        device.spec.labels = Labels::parse([("fleet", fleet)]).expect("valid");
        device
    };
    let mut ids = Vec::new();
    // 30 in fleet "a" (named so that byte order and creation order differ), 3 in fleet "b".
    for i in 0..33 {
        let fleet = if i % 11 == 0 { "b" } else { "a" };
        let device = labelled(&format!("d{:02}", (i * 7) % 33), fleet);
        ids.push(device.id);
        writer
            .create_device(&tenant, &actor, device)
            .await
            .expect("created");
    }
    let fleet = |value: &str| {
        DeviceFilter::default()
            .with_label_conditions(&[format!("fleet:{value}")])
            .expect("valid")
    };
    let page = |filter: DeviceFilter, limit: i64, offset: i64| {
        let (reader, tenant) = (&reader, &tenant);
        async move {
            let query = ListQuery::new(None, Some(limit), Some(offset)).expect("valid");
            let page = reader
                .list_devices(tenant, &filter, &query)
                .await
                .expect("listed");
            let names: Vec<String> = page
                .items
                .iter()
                .map(|d| d.spec.name.as_str().to_owned())
                .collect();
            (page.total, names)
        }
    };
    let every = |filter: DeviceFilter| {
        let (reader, tenant) = (&reader, &tenant);
        async move {
            let mut names: Vec<String> = reader
                .list_devices(tenant, &filter, &ListQuery::all())
                .await
                .expect("listed")
                .items
                .iter()
                .map(|d| d.spec.name.as_str().to_owned())
                .collect();
            names.sort_unstable();
            names
        }
    };
    let all_a = every(fleet("a")).await;
    assert_eq!(all_a.len(), 30);
    // The broad filter's pages (walked) and the selective one's (sorted), in byte order.
    let (total, first) = page(fleet("a"), 10, 0).await;
    assert_eq!((total, first.as_slice()), (30, &all_a[..10]));
    let (_, third) = page(fleet("a"), 10, 20).await;
    assert_eq!(third.as_slice(), &all_a[20..]);
    let (total, b) = page(fleet("b"), 2, 1).await;
    assert_eq!((total, b.len()), (3, 2));
    assert_eq!(b.as_slice(), &every(fleet("b")).await[1..]);
    assert_eq!(
        page(fleet("a"), 10, 30).await,
        (30, Vec::new()),
        "past the end"
    );

    // Writes through the other instance: the kept totals follow at once.
    writer
        .create_device(&tenant, &actor, labelled("e00", "a"))
        .await
        .expect("created");
    assert_eq!(page(fleet("a"), 1, 0).await.0, 31);
    writer
        .update_device(
            &tenant,
            &actor,
            ids[1],
            DeviceChanges {
                labels: Some(Labels::parse([("fleet", "b")]).expect("valid")),
                ..DeviceChanges::default()
            },
        )
        .await
        .expect("relabelled");
    assert_eq!(page(fleet("a"), 1, 0).await.0, 30);
    assert_eq!(page(fleet("b"), 1, 0).await.0, 4);
    writer
        .delete_device(&tenant, ids[0])
        .await
        .expect("deleted");
    assert_eq!(page(fleet("b"), 1, 0).await.0, 3);
    assert_eq!(page(DeviceFilter::default(), 1, 0).await.0, 33, "no filter");
}

/// The shard `function` (of migration V19) moved for tenant `moving`.
async fn moved(client: &tokio_postgres::Client, function: &str) -> i32 {
    let row = client
        .query_one(&format!("SELECT {function}('moving')"), &[])
        .await;
    row.unwrap_or_else(|e| panic!("{function}: {e}")).get(0)
}

/// A writer never waits for another writer's revision row (migration V19): two backends once
/// shared a row (by `pg_backend_pid() % 256`) and, each holding a lock the other wanted, one of
/// them was failed as a deadlock. A transaction keeps moving the row it took first; another
/// transaction meanwhile takes another row (adding one: the tenant has no other); the revision
/// is the sum of every move once both commit.
#[tokio::test]
async fn revision_moves_never_wait_for_another_writers_row() {
    let db = TestDatabase::create().await;
    let _migrated = db.store().await;
    let connect = || async {
        let (client, connection) = tokio_postgres::connect(db.url(), NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
    };
    let (first, second) = (connect().await, connect().await);
    // One row of each, committed, so both writers below see it and want it.
    first
        .batch_execute(
            "BEGIN; SELECT set_config('role', 'iot_app', true), \
             set_config('app.tenant_id', 'moving', true); \
             SELECT move_tenant_revision('moving'), move_tenant_status_revision('moving'), \
             move_tenant_scope_revision('moving'); COMMIT",
        )
        .await
        .expect("a first row of each");
    for client in [&first, &second] {
        // Bound as the service binds its transactions; a wait would end at the lock timeout.
        client
            .batch_execute(
                "BEGIN; SELECT set_config('role', 'iot_app', true), \
                 set_config('app.tenant_id', 'moving', true), \
                 set_config('lock_timeout', '3s', true)",
            )
            .await
            .expect("begin, bound");
    }
    for table in [
        "tenant_revisions",
        "tenant_status_revisions",
        "tenant_scope_revisions",
    ] {
        let function = format!("move_{}", table.trim_end_matches('s'));
        let held = moved(&first, &function).await;
        // Numbers of the sequence: never the rows (0 to 255) an older instance may still write.
        assert!(held >= 1_000_000, "{table}: shard {held}");
        assert_eq!(
            moved(&first, &function).await,
            held,
            "{table}: the row already held"
        );
        let other = moved(&second, &function).await;
        assert_ne!(other, held, "{table}: another row, without waiting");
        assert_eq!(
            moved(&second, &function).await,
            other,
            "{table}: the row already held"
        );
    }
    for client in [&first, &second] {
        client.batch_execute("COMMIT").await.expect("committed");
    }
    const TABLES: [&str; 3] = [
        "tenant_revisions",
        "tenant_status_revisions",
        "tenant_scope_revisions",
    ];
    let rows_and_sum = |table: &'static str| {
        let first = &first;
        async move {
            let sql = format!(
                "SELECT count(*), sum(revision)::bigint FROM {table} WHERE tenant_id = 'moving'"
            );
            let row = first.query_one(&sql, &[]).await.expect("read");
            (row.get::<_, i64>(0), row.get::<_, i64>(1))
        }
    };
    for table in TABLES {
        assert_eq!(
            rows_and_sum(table).await,
            (2, 5),
            "{table}: two rows, five moves"
        );
    }

    // A write bound to no tenant moves every tenant's revision without waiting for a writer's
    // row: the rows no one holds fold into one new row (their sum and one), the held row stays.
    second
        .batch_execute(
            "BEGIN; SELECT set_config('role', 'iot_app', true), \
             set_config('app.tenant_id', 'moving', true)",
        )
        .await
        .expect("begin, bound");
    first
        .batch_execute("SET lock_timeout = '3s'")
        .await
        .expect("set");
    for table in TABLES {
        let function = format!("move_{}", table.trim_end_matches('s'));
        moved(&second, &function).await;
        first
            .execute(&format!("SELECT move_every_revision('{table}')"), &[])
            .await
            .unwrap_or_else(|e| panic!("{table}: the unbound move waited: {e}"));
    }
    second.batch_execute("COMMIT").await.expect("committed");
    for table in TABLES {
        assert_eq!(
            rows_and_sum(table).await,
            (2, 7),
            "{table}: the held row and the fold; five, one bound move and the unbound one"
        );
        first
            .execute(&format!("SELECT move_every_revision('{table}')"), &[])
            .await
            .expect("moved");
        assert_eq!(
            rows_and_sum(table).await,
            (1, 8),
            "{table}: folded into one row"
        );
    }
}
