//! The group-readings statement picks one of two paths by group size (per member, or a walk of
//! the tenant's readings newest first); both must give exactly the brute-force answer.

use domain::{ReadingQuery, TenantId, Timestamp};
use ports::{DeviceGroupRepository as _, GroupKey};
use test_db::TestDatabase;
use time::macros::datetime;
use time::Duration;
use tokio_postgres::NoTls;
use uuid::Uuid;

const BASE: time::OffsetDateTime = datetime!(2026-03-10 12:00 UTC);
const DEVICES: i64 = 40;
const READINGS_PER_DEVICE: i64 = 30;

/// Device `i` of `tenant`, as the seed names it.
fn device(tenant: &str, i: i64) -> Uuid {
    Uuid::from_u128((prefix(tenant) << 64) | u128::try_from(i).expect("positive"))
}

fn group(tenant: &str, name: &str) -> Uuid {
    Uuid::from_u128((prefix(tenant) << 64) | (1 << 63) | prefix(name))
}

/// Up to 8 bytes of `text` as a number: distinct for the short names used here.
fn prefix(text: &str) -> u128 {
    text.bytes()
        .take(8)
        .fold(0, |acc, b| (acc << 8) | u128::from(b))
}

/// Reading `k` of device `i`: every device reads at the same whole minutes (ties on the instant,
/// broken by device id), and every third one also a few seconds off them.
fn readings_of(i: i64) -> Vec<(time::OffsetDateTime, f64)> {
    (0..READINGS_PER_DEVICE)
        .map(|k| {
            let offset = if i % 3 == 0 {
                Duration::seconds(i)
            } else {
                Duration::ZERO
            };
            (BASE - Duration::minutes(k) - offset, (i * 100 + k) as f64)
        })
        .collect()
}

async fn seed(client: &tokio_postgres::Client, tenant: &str, groups: &[(&str, i64)]) {
    for i in 1..=DEVICES {
        client
            .execute(
                "INSERT INTO devices (tenant_id, id, name) VALUES ($1, $2, $3)",
                &[&tenant, &device(tenant, i), &format!("d{i:02}")],
            )
            .await
            .expect("device");
        for (ts, value) in readings_of(i) {
            client
                .execute(
                    "INSERT INTO readings (tenant_id, device_id, ts, value) VALUES ($1, $2, $3, $4)",
                    &[&tenant, &device(tenant, i), &ts, &value],
                )
                .await
                .expect("reading");
        }
    }
    for (name, members) in groups {
        let id = group(tenant, name);
        client
            .execute(
                "INSERT INTO device_groups (tenant_id, id, group_id, name) VALUES ($1, $2, $3, $4)",
                &[&tenant, &id, &format!("grp-{name}"), name],
            )
            .await
            .expect("group");
        for i in 1..=*members {
            client
                .execute(
                    "INSERT INTO device_group_members (tenant_id, group_id, device_id) VALUES ($1, $2, $3)",
                    &[&tenant, &id, &device(tenant, i)],
                )
                .await
                .expect("member");
        }
    }
}

/// The newest `limit` readings of devices `1..=members` in `[since, until)`, newest first, ties by
/// device id: computed without the database.
fn expected(
    tenant: &str,
    members: i64,
    since: time::OffsetDateTime,
    until: Option<time::OffsetDateTime>,
    limit: usize,
) -> Vec<(Uuid, time::OffsetDateTime, f64)> {
    let mut all: Vec<_> = (1..=members)
        .flat_map(|i| {
            readings_of(i)
                .into_iter()
                .map(move |(ts, value)| (device(tenant, i), ts, value))
        })
        .filter(|(_, ts, _)| *ts >= since && until.is_none_or(|u| *ts < u))
        .collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(limit);
    all
}

/// Which path the statement took for `group`: the plan of the walk's index scan either ran or
/// was never executed.
async fn walked(client: &tokio_postgres::Client, tenant: &str, group: Uuid) -> bool {
    let sql = store_postgres::GROUP_READINGS
        .replace("$1", &format!("'{tenant}'"))
        .replace("$2", &format!("'{group}'::uuid"))
        .replace("$3", "'2026-03-10 11:00:00+00'::timestamptz")
        .replace("$4", "25")
        .replace("$5", "NULL")
        .replace("$6", "NULL")
        .replace("$7", "NULL")
        .replace("$8", "0");
    // Index scans only, so the walk shows up as the new index, not as a sort of a sequential scan.
    client
        .batch_execute("SET enable_seqscan = off; SET enable_sort = off")
        .await
        .expect("planner settings");
    let plan: Vec<String> = client
        .query(
            &format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}"),
            &[],
        )
        .await
        .expect("explain")
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    client
        .batch_execute("RESET enable_seqscan; RESET enable_sort")
        .await
        .expect("planner settings");
    let walk: Vec<&String> = plan
        .iter()
        .filter(|line| line.contains("ts_device_id_value_idx"))
        .collect();
    assert!(
        !walk.is_empty(),
        "the walk uses readings_tenant_ts_idx:\n{}",
        plan.join("\n")
    );
    walk.iter().any(|line| !line.contains("never executed"))
}

#[tokio::test]
async fn group_readings_give_the_brute_force_answer_on_both_paths() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let (client, connection) = tokio_postgres::connect(db.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    // 3² < 40 devices: per member; 20² ≥ 40: the walk. Another tenant with the same instants and
    // a group of all its devices, so that a walk ignoring the tenant would show its rows.
    seed(&client, "t", &[("few", 3), ("many", 20)]).await;
    seed(&client, "u", &[("all", DEVICES)]).await;
    client.batch_execute("ANALYZE").await.expect("analyze");

    assert!(
        !walked(&client, "t", group("t", "few")).await,
        "3 of 40 devices: per member"
    );
    assert!(
        walked(&client, "t", group("t", "many")).await,
        "20 of 40 devices: the walk"
    );

    let tenant = TenantId::parse("t").expect("valid");
    let now = Timestamp::new(BASE + Duration::hours(1)).expect("valid");
    let at = |t: time::OffsetDateTime| Timestamp::new(t).expect("valid");
    let cases = [
        // A window in the middle of the history, fewer rows than it holds.
        (
            BASE - Duration::minutes(20),
            Some(BASE - Duration::minutes(2)),
            25,
        ),
        // Everything from a point on, more room than rows.
        (BASE - Duration::minutes(40), None, 1000),
        // One row: the tie at the newest instant goes to the smallest device id.
        (BASE - Duration::minutes(40), None, 1),
    ];
    for (name, members) in [("few", 3), ("many", 20)] {
        for (since, until, limit) in cases {
            let query = ReadingQuery::between(Some(at(since)), until.map(at), now, limit)
                .expect("valid query");
            let got: Vec<(Uuid, time::OffsetDateTime, f64)> = store
                .group_readings(&tenant, &GroupKey::Id(group("t", name)), query)
                .await
                .expect("readings")
                .iter()
                .map(|r| (r.device_id, r.timestamp.get(), r.value))
                .collect();
            let want = expected(
                "t",
                members,
                since,
                until,
                usize::try_from(limit).expect("small"),
            );
            assert!(!want.is_empty());
            assert_eq!(
                got, want,
                "group {name}, since {since}, until {until:?}, limit {limit}"
            );
        }
    }
}
