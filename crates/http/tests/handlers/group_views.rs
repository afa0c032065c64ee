//! Views of large groups kept between requests, and when they stop being valid.

use std::sync::{Arc, Mutex};

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::test;
use actix_web::App;
use domain::{
    DeviceName, MaintenanceWindow, Thresholds, Timestamp, Unit, WindowDefinition, WindowSchedule,
};
use ports::{GroupDetail, GroupKey, GroupReading};
use serde_json::json;

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Views of large groups kept between requests

/// A group just large enough for its views to be kept; every member's latest reading is `value`
/// (warning above 30, critical above 40).
fn large_group(value: f64) -> GroupDetail {
    let members = (0..http_api::group_views::MIN_MEMBERS)
        .map(|i| {
            let id = format!("{i:08x}-0000-4000-8000-000000000000");
            let thresholds =
                Thresholds::new(Some(-10.0), Some(0.0), Some(30.0), Some(40.0)).expect("ordered");
            member(&id, &format!("sensor-{i:04}"), thresholds, Some(value))
        })
        .collect();
    api_group(members)
}

/// The tenant's revisions as the mock store reports them: `full[n]` on the n-th ask of its
/// revision, `status[n]` on the n-th ask of its status revision.
fn revisions(m: &mut Mocks, full: &'static [i64], status: &'static [i64]) {
    fn answering(
        values: &'static [i64],
    ) -> impl FnMut(&domain::TenantId) -> Result<ports::Revision, ports::StoreError> {
        let asked = Arc::new(Mutex::new(0usize));
        move |_| {
            let mut n = asked.lock().expect("not poisoned");
            *n += 1;
            Ok(ports::Revision(values[*n - 1]))
        }
    }
    let mut mock = ports::MockTenantRevisions::new();
    mock.expect_revision()
        .times(full.len())
        .returning(answering(full));
    mock.expect_status_revision()
        .times(status.len())
        .returning(answering(status));
    m.revisions = Some(mock);
}

/// The tenant's state marks as the mock store reports them: `marks` in turn for each ask of
/// the mark, `changes` in turn for each ask of the changes since a kept one.
fn marks(m: &mut Mocks, marks: Vec<ports::StateMark>, changes: Vec<ports::StateChanges>) {
    let mut mock = ports::MockTenantRevisions::new();
    let asked = marks.len();
    let marks = Mutex::new(marks.into_iter());
    mock.expect_state_mark()
        .times(asked)
        .returning(move |_| Ok(marks.lock().expect("not poisoned").next().expect("a mark")));
    let asked = changes.len();
    let changes = Mutex::new(changes.into_iter());
    mock.expect_state_changes()
        .times(asked)
        .returning(move |_, _, limit| {
            assert_eq!(limit, http_api::group_views::MAX_PATCHES);
            Ok(changes
                .lock()
                .expect("not poisoned")
                .next()
                .expect("changes"))
        });
    m.revisions = Some(mock);
}

fn mark(scope: i64, seq: i64) -> ports::StateMark {
    ports::StateMark {
        scope: ports::Revision(scope),
        seq,
    }
}

#[actix_web::test]
async fn a_large_groups_alert_summary_is_read_once_per_scope_and_patched_by_changed_states() {
    let mut m = Mocks::bare();
    // Reads: twice (found worth keeping, then kept at (1, 10)), then once the scope moved.
    let reads = Arc::new(Mutex::new(vec![
        large_group(45.0),
        large_group(35.0),
        large_group(35.0),
    ]));
    m.groups
        .expect_get_group()
        .withf(|t, key| t.as_str() == TENANT && *key == GroupKey::Id(uuid(GROUP_ID)))
        .times(3)
        .returning(move |_, _| Ok(reads.lock().expect("not poisoned").pop().expect("a read")));
    // The first member turns critical with an open alert (event 11); a device of another group
    // changes too (event 12); then a membership write moves the scope.
    let first = large_group(0.0).members[0].device.id;
    let critical = large_group(45.0).members[0].device.state;
    let patch = domain::MemberPatch {
        state: critical,
        alerts: domain::MemberAlerts {
            open: true,
            acknowledged: false,
        },
    };
    let stranger = domain::MemberPatch {
        state: critical,
        alerts: domain::MemberAlerts::default(),
    };
    marks(
        &mut m,
        vec![mark(1, 10)],
        vec![
            ports::StateChanges {
                mark: mark(1, 10),
                changed: Some(Vec::new()),
            },
            ports::StateChanges {
                mark: mark(1, 12),
                changed: Some(vec![(first, patch), (uuid::Uuid::new_v4(), stranger)]),
            },
            ports::StateChanges {
                mark: mark(1, 12),
                changed: Some(Vec::new()),
            },
            ports::StateChanges {
                mark: mark(2, 12),
                changed: None,
            },
        ],
    );
    let alerts = format!("{API_GROUPS}/{GROUP_ID}/alerts");
    let answers = call_all(m, (0..6).map(|_| get(&alerts)).collect()).await;
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(
            answer.header(header::CONTENT_TYPE),
            Some("application/json")
        );
    }
    let n = http_api::group_views::MIN_MEMBERS;
    let counts = |i: usize| {
        let j = answers[i].json();
        (
            j["warning"].clone(),
            j["critical"].clone(),
            j["open_alerts"].clone(),
        )
    };
    assert_eq!(counts(0), (json!(n), json!(0), json!(0)));
    assert_eq!(
        answers[2].body, answers[1].body,
        "kept while the mark holds"
    );
    assert_eq!(
        counts(3),
        (json!(n - 1), json!(1), json!(1)),
        "the changed member patched in, the stranger ignored, without a read"
    );
    assert_eq!(answers[4].body, answers[3].body);
    assert_eq!(counts(5), (json!(0), json!(n), json!(0)), "read again");
}

/// The revisions of a store in which readings alone arrive: (1, 1) when the detail is first read,
/// then the full revision moves at every request and the scope one stays; the members' kept
/// states are `states` in turn (a member left out has no reading).
fn readings_arrive(m: &mut Mocks, states: Vec<Vec<(&'static str, domain::MemberPatch)>>) {
    let mut mock = ports::MockTenantRevisions::new();
    mock.expect_revisions().times(1).returning(|_| {
        Ok(ports::Revisions {
            full: ports::Revision(1),
            scope: ports::Revision(1),
        })
    });
    let asked = Arc::new(Mutex::new(0usize));
    mock.expect_members_latest()
        .times(states.len())
        .returning(move |_, _, kept| {
            let mut n = asked.lock().expect("not poisoned");
            *n += 1;
            Ok(ports::MembersLatest {
                revisions: ports::Revisions {
                    full: ports::Revision(kept.full.0 + 1),
                    scope: kept.scope,
                },
                latest: Some(
                    states[*n - 1]
                        .iter()
                        .map(|(id, patch)| (uuid(id), *patch))
                        .collect(),
                ),
            })
        });
    m.revisions = Some(mock);
}

#[actix_web::test]
async fn a_kept_detail_shows_new_states_without_reading_the_group_again() {
    let mut m = Mocks::bare();
    let thresholds = Thresholds::new(None, None, Some(30.0), Some(40.0)).expect("ordered");
    // Read once: A normal at 10, B without readings.
    let a = member(DEVICE_A, "a", thresholds, Some(10.0));
    let group = api_group(vec![a.clone(), member(DEVICE_B, "b", thresholds, None)]);
    m.groups
        .expect_get_group()
        .times(1)
        .returning(move |_, _| Ok(group.clone()));
    // The store's states: A at 12 (still normal since the first reading), then critical at 45
    // with an open alert.
    let reading_at = Timestamp::new(time::macros::datetime!(2025-10-20 11:00 UTC)).expect("valid");
    let after = |state: domain::DeviceState, value: f64| {
        state
            .after_reading(
                &thresholds,
                domain::ReadingPoint {
                    timestamp: reading_at,
                    value,
                },
            )
            .expect("newer")
    };
    let normal = after(a.device.state, 12.0);
    let critical = after(normal, 45.0);
    let open = domain::MemberAlerts {
        open: true,
        acknowledged: false,
    };
    readings_arrive(
        &mut m,
        vec![
            vec![(
                DEVICE_A,
                domain::MemberPatch {
                    state: normal,
                    alerts: domain::MemberAlerts::default(),
                },
            )],
            vec![(
                DEVICE_A,
                domain::MemberPatch {
                    state: critical,
                    alerts: open,
                },
            )],
        ],
    );
    let detail = format!("{API_GROUPS}/{GROUP_ID}");
    let answers = call_all(m, (0..3).map(|_| get(&detail)).collect()).await;
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    let state = |i: usize| answers[i].json()["devices"][0]["state"].clone();
    assert_eq!(state(0)["last_value"], 10.0);
    assert_eq!(state(1)["last_value"], 12.0, "{}", answers[1].text());
    assert_eq!(state(1)["last_reading_at"], "2025-10-20T11:00:00Z");
    assert_eq!(
        (state(1)["alert_status"].clone(), state(1)["since"].clone()),
        (state(0)["alert_status"].clone(), state(0)["since"].clone()),
        "normal since the first reading, as the store keeps it"
    );
    assert_eq!(state(2)["last_value"], 45.0);
    assert_eq!(
        (state(2)["alert_status"].clone(), state(2)["since"].clone()),
        (json!("critical"), json!("2025-10-20T11:00:00Z")),
        "{}",
        answers[2].text()
    );
    let summary = |i: usize| answers[i].json()["alert_summary"].clone();
    assert_eq!(
        (
            summary(2)["critical"].clone(),
            summary(2)["open_alerts"].clone()
        ),
        (json!(1), json!(1))
    );
    for i in 1..3 {
        assert_eq!(
            answers[i].json()["devices"][1],
            answers[0].json()["devices"][1]
        );
    }
}

#[actix_web::test]
async fn stores_without_revisions_read_the_detail_every_time_and_small_groups_are_kept() {
    for (detail, keeps_revisions, reads) in [
        (
            api_group(vec![member(DEVICE_A, "a", Thresholds::default(), None)]),
            true,
            1,
        ),
        (large_group(1.0), false, 2),
    ] {
        let mut m = Mocks::bare();
        m.groups
            .expect_get_group()
            .times(reads)
            .returning(move |_, _| Ok(detail.clone()));
        if keeps_revisions {
            readings_arrive(&mut m, vec![vec![]]);
        }
        let uri = format!("{API_GROUPS}/{GROUP_ID}");
        let answers = call_all(m, vec![get(&uri), get(&uri)]).await;
        assert_eq!(answers[1].status, StatusCode::OK, "{}", answers[1].text());
        assert_eq!(answers[1].body, answers[0].body);
    }
}

#[actix_web::test]
async fn a_small_groups_alert_summary_is_read_every_time() {
    let mut m = Mocks::bare();
    m.groups.expect_get_group().times(2).returning(|_, _| {
        Ok(api_group(vec![member(
            DEVICE_A,
            "a",
            Thresholds::default(),
            None,
        )]))
    });
    revisions(&mut m, &[], &[]);
    let uri = format!("{API_GROUPS}/{GROUP_ID}/alerts");
    let answers = call_all(m, vec![get(&uri), get(&uri)]).await;
    assert_eq!(answers[1].status, StatusCode::OK, "{}", answers[1].text());
}

#[actix_web::test]
async fn a_kept_view_lasts_only_until_a_window_starts_or_ends() {
    // A window over every device, starting a second from now.
    let starts_at = Timestamp::now()
        .checked_add(time::Duration::milliseconds(1000))
        .expect("in range");
    let window = MaintenanceWindow {
        definition: WindowDefinition {
            schedule: WindowSchedule::new(starts_at, None).expect("valid"),
            recurring: None,
            site_ids: None,
            ..nightly_definition()
        },
        ..stored_window("mw-soon")
    };
    let mut detail = large_group(1.0);
    detail.windows = vec![window];
    let mut m = Mocks::bare();
    m.groups
        .expect_get_group()
        .times(3)
        .returning(move |_, _| Ok(detail.clone()));
    // Requests 2 (worth keeping: kept at (7, 7)), 3 (kept and in time: a hit) and 4 (past its
    // time: asked, read again).
    marks(
        &mut m,
        vec![mark(7, 7), mark(7, 7)],
        vec![ports::StateChanges {
            mark: mark(7, 7),
            changed: Some(Vec::new()),
        }],
    );
    let state = m.into_state();
    let app = test::init_service(App::new().configure(http_api::configure(&state))).await;
    let uri = format!("{API_GROUPS}/{GROUP_ID}/alerts");
    let mut maintenance = Vec::new();
    for pause in [0, 0, 0, 1200] {
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        let answer = Answer::read(test::call_service(&app, get(&uri).to_request()).await).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        maintenance.push(answer.json()["in_maintenance"].clone());
    }
    let n = http_api::group_views::MIN_MEMBERS;
    assert_eq!(maintenance, [json!(0), json!(0), json!(0), json!(n)]);
}

/// A reading of device A at `timestamp`.
fn group_reading(timestamp: Timestamp, value: f64) -> GroupReading {
    GroupReading {
        device_id: uuid(DEVICE_A),
        device_name: DeviceName::parse("Hall").expect("valid"),
        unit: Unit::parse("°C").expect("valid"),
        timestamp,
        value,
    }
}

#[actix_web::test]
async fn a_groups_json_readings_are_read_once_per_revision_and_query() {
    let mut m = Mocks::bare();
    let reads = Arc::new(Mutex::new(vec![3.0, 2.0, 2.0, 1.0, 1.0]));
    m.groups
        .expect_group_readings()
        .times(5)
        .returning(move |_, _, _| {
            let value = reads.lock().expect("not poisoned").pop().expect("a read");
            Ok(vec![group_reading(Timestamp::now(), value)])
        });
    // Each query is read twice (found worth keeping, then kept), then served while the
    // revision holds. Asked by requests 2 (kept at 1), 3 (hit), 5 (kept at 1), 6 (moved to 2:
    // read again) and 7 (hit).
    revisions(&mut m, &[1, 1, 1, 2, 2], &[]);
    let uri = |query: &str| format!("{API_GROUPS}/{GROUP_ID}/readings?{query}");
    let answers = call_all(
        m,
        vec![
            get(&uri("hours=24")),
            get(&uri("hours=24")),
            get(&uri("hours=24")),
            get(&uri("hours=12")),
            get(&uri("limit=1000&hours=12")),
            get(&uri("hours=24")),
            get(&uri("hours=24")),
        ],
    )
    .await;
    let value = |i: usize| answers[i].json()["readings"][0]["value"].clone();
    assert_eq!(
        (0..7).map(value).collect::<Vec<_>>(),
        [1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0].map(|v| json!(v)),
        "the same query however spelt is one view"
    );
}

#[actix_web::test]
async fn csv_readings_are_read_every_time() {
    let mut m = Mocks::bare();
    m.groups
        .expect_group_readings()
        .times(2)
        .returning(|_, _, _| Ok(vec![group_reading(Timestamp::now(), 1.0)]));
    // The group's name names the file.
    m.groups
        .expect_get_group_row()
        .times(2)
        .returning(|_, _| Ok(stored_group("grp-lobby", "Lobby")));
    revisions(&mut m, &[], &[]);
    let csv = || {
        get(&format!("{API_GROUPS}/{GROUP_ID}/readings"))
            .insert_header((header::ACCEPT, "text/csv"))
    };
    let answers = call_all(m, vec![csv(), csv()]).await;
    assert_eq!(answers[1].status, StatusCode::OK, "{}", answers[1].text());
    assert!(answers[1].text().starts_with("device_id,"));
}

#[actix_web::test]
async fn kept_readings_last_only_until_the_oldest_falls_out_of_the_look_back() {
    let mut m = Mocks::bare();
    // Inside the last hour for another second.
    let oldest = Timestamp::now()
        .checked_add(time::Duration::milliseconds(1000) - time::Duration::HOUR)
        .expect("in range");
    m.groups
        .expect_group_readings()
        .times(3)
        .returning(move |_, _, _| Ok(vec![group_reading(oldest, 1.0)]));
    // Requests 2 (kept at 5), 3 (in time: a hit) and 4 (out of time: read again).
    revisions(&mut m, &[5, 5, 5], &[]);
    let state = m.into_state();
    let app = test::init_service(App::new().configure(http_api::configure(&state))).await;
    let uri = format!("{API_GROUPS}/{GROUP_ID}/readings?hours=1");
    for pause in [0, 0, 0, 1200] {
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        let answer = Answer::read(test::call_service(&app, get(&uri).to_request()).await).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
}

#[actix_web::test]
async fn pages_after_an_offset_are_read_every_time_and_never_kept() {
    let mut m = Mocks::bare();
    m.groups
        .expect_group_readings()
        .withf(|_, _, query: &domain::ReadingQuery| query.offset() == 2)
        .times(3)
        .returning(|_, _, _| Ok(vec![group_reading(Timestamp::now(), 1.0)]));
    // No revision is asked: nothing is looked up in, or kept by, the views.
    revisions(&mut m, &[], &[]);
    let uri = format!("{API_GROUPS}/{GROUP_ID}/readings?hours=1&offset=2");
    let answers = call_all(m, vec![get(&uri), get(&uri), get(&uri)]).await;
    for answer in answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(answer.json()["has_more"], false);
    }
}
