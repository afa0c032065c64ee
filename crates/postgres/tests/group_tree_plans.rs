//! Issue 17: reads over a group's tree stay cheap on a tree of 10 groups × 1,000 devices. The
//! tree is walked once per statement (a recursive CTE over `device_groups`, at most 8 levels),
//! never once per device, and its members are collected once (DISTINCT), not per group.

use test_db::TestDatabase;
use tokio_postgres::NoTls;

/// `EXPLAIN ANALYZE` of `sql` with `$1` the tenant and `$2` the root group.
async fn analyzed(client: &tokio_postgres::Client, sql: &str, extra: &[(&str, &str)]) -> String {
    let mut sql = sql.replace("$1", "'t'").replace("$2", "md5('g0')::uuid");
    for (param, value) in extra {
        sql = sql.replace(param, value);
    }
    let plan: Vec<String> = client
        .query(
            &format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}"),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("explain: {e}\n{sql}"))
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    plan.join("\n")
}

/// The most loops of any plan node that reads `device_groups`, and the plan.
fn group_loops(plan: &str) -> u64 {
    let lines: Vec<&str> = plan.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("on device_groups") || l.contains("WorkTable Scan"))
        .filter_map(|(_, l)| {
            let at = l.find("loops=")?;
            l[at + 6..].trim_end_matches(')').parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn tree_reads_walk_the_tree_once_not_per_device() {
    let db = TestDatabase::create().await;
    let _migrated = db.store().await;
    let (client, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    // A root and nine children, 1,000 devices each (10,000 devices), 5 readings per device, a
    // window naming the root; another tenant's groups around, so the walk must stay in its own.
    client
        .batch_execute(
            "INSERT INTO device_groups (tenant_id, id, group_id, name, parent_id) \
               SELECT 't', md5('g' || i)::uuid, 'grp-' || i, 'G' || i, \
                      CASE WHEN i > 0 THEN md5('g0')::uuid END \
               FROM generate_series(0, 9) i; \
             INSERT INTO device_groups (tenant_id, id, group_id, name) \
               SELECT 'u', gen_random_uuid(), 'grp-' || i, 'G' || i FROM generate_series(0, 99) i; \
             INSERT INTO devices (tenant_id, id, name) \
               SELECT 't', md5('d' || i)::uuid, 'd' || i FROM generate_series(0, 9999) i; \
             INSERT INTO device_group_members (tenant_id, group_id, device_id) \
               SELECT 't', md5('g' || (i / 1000))::uuid, md5('d' || i)::uuid \
               FROM generate_series(0, 9999) i; \
             INSERT INTO readings (tenant_id, device_id, ts, value) \
               SELECT 't', d.id, now() - make_interval(mins => k), k \
               FROM devices d, generate_series(1, 5) k WHERE d.tenant_id = 't'; \
             INSERT INTO latest_readings (tenant_id, device_id, ts, value) \
               SELECT DISTINCT ON (device_id) tenant_id, device_id, ts, value FROM readings \
               ORDER BY device_id, ts DESC; \
             INSERT INTO maintenance_windows (tenant_id, window_id, name, starts_at, group_ids) \
               VALUES ('t', 'mw-root', 'Root works', now() - interval '1 day', ARRAY['grp-0']); \
             ANALYZE",
        )
        .await
        .expect("seed");

    // Act: the tree's detail members, its window memberships and a page of its readings.
    let members = analyzed(&client, &store_postgres::tree_members_sql(), &[]).await;
    let readings = analyzed(
        &client,
        &store_postgres::tree_readings_sql(),
        &[
            ("$3", "now() - interval '1 hour'"),
            ("$4", "100"),
            ("$5", "NULL"),
            ("$6", "NULL"),
            ("$7", "NULL"),
            ("$8", "0"),
        ],
    )
    .await;
    let windowed = analyzed(&client, &store_postgres::window_memberships_sql(), &[]).await;

    // Assert: 10,000 members, each once; the tree read a handful of times, never per device.
    assert!(members.contains("rows=10000"), "{members}");
    for plan in [&members, &readings, &windowed] {
        assert!(
            group_loops(plan) <= 8,
            "the tree is walked once (at most one loop per level):\n{plan}"
        );
    }
    assert!(readings.contains("rows=100 "), "{readings}");
    assert!(
        windowed.contains("rows=1000 "),
        "the root's own members:\n{windowed}"
    );
}
