//! The Postgres adapter against a real PostgreSQL, one throwaway database per test.

use store_postgres::testing::TestDatabase;
use tokio_postgres::NoTls;

#[tokio::test]
async fn the_postgres_store_keeps_the_store_contract() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    ports::contract::run_all(&store).await;
}

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
        wait_timeout: std::time::Duration::from_secs(1),
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
