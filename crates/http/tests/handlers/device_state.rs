//! A device's kept state and staleness: `stale_after_s` on writes, the `state` object on every
//! device view, and what a group's detail and summary make of them.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use domain::{
    DeviceState, MemberAlerts, ReadingPoint, StaleAfter, Thresholds, Timestamp, WindowSlug,
};
use ports::MockMaintenanceWindowRepository;
use serde_json::{json, Value};
use time::macros::datetime;

use crate::support::*;

fn stale_after(secs: i64) -> StaleAfter {
    StaleAfter::from_secs(secs).expect("in range")
}

/// Covering windows as a store answers them: `mw-night` over `covered`, nothing over the rest.
fn covering(covered: &'static [&'static str]) -> MockMaintenanceWindowRepository {
    let mut windows = MockMaintenanceWindowRepository::new();
    windows
        .expect_covering_windows()
        .times(1)
        .returning(move |tenant, ids, _| {
            assert!(is_tenant_a(tenant));
            Ok(ids
                .iter()
                .filter(|id| covered.iter().any(|c| uuid(c) == **id))
                .map(|id| (*id, vec![WindowSlug::parse("mw-night").expect("valid")]))
                .collect::<HashMap<_, _>>())
        });
    windows
}

/// Device `id` (warning above 30, critical above 40) whose latest reading, of `value`, came in
/// at `timestamp`, stale after `stale_secs`.
fn device_read_at(
    id: &str,
    timestamp: time::OffsetDateTime,
    value: f64,
    stale_secs: Option<i64>,
) -> domain::Device {
    let mut device = device(uuid(id), "Hall", office_thresholds());
    device.spec.stale_after = stale_secs.map(stale_after);
    device.state = DeviceState::default()
        .after_reading(
            &office_thresholds(),
            ReadingPoint {
                timestamp: at(timestamp),
                value,
            },
        )
        .expect("first reading");
    device
}

// ---------------------------------------------------------------------------------------------
// stale_after_s on writes

#[actix_web::test]
async fn a_device_is_created_with_stale_after_s_and_shows_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_create_device()
        .withf(|_, _, new| new.spec.stale_after == Some(stale_after(31_536_000)))
        .times(1)
        .returning(|_, _, new| Ok(saved_device(new)));
    mocks
        .devices
        .expect_create_device()
        .withf(|_, _, new| new.spec.stale_after.is_none())
        .times(1)
        .returning(|_, _, new| Ok(saved_device(new)));

    // Act
    let answers = call_all(
        mocks,
        vec![
            post(
                DEVICES,
                &json!({"name": "Hall", "stale_after_s": 31_536_000}),
            ),
            post(DEVICES, &json!({"name": "Lobby", "stale_after_s": null})),
        ],
    )
    .await;

    // Assert
    assert_eq!(
        answers[0].status,
        StatusCode::CREATED,
        "{}",
        answers[0].text()
    );
    assert_eq!(answers[0].json()["stale_after_s"], 31_536_000);
    assert_eq!(
        answers[1].status,
        StatusCode::CREATED,
        "{}",
        answers[1].text()
    );
    assert_eq!(answers[1].json()["stale_after_s"], Value::Null);
}

#[actix_web::test]
async fn a_stale_after_s_that_is_no_integer_from_1_to_a_year_is_422_naming_it() {
    for value in [
        json!(1.5),
        json!(60.0),
        json!("60"),
        json!(true),
        json!(0),
        json!(-5),
        json!(31_536_001),
        json!(u64::MAX),
        json!([60]),
    ] {
        for request in [
            post(DEVICES, &json!({"name": "Hall", "stale_after_s": value})),
            put(
                &format!("{DEVICES}/{DEVICE_A}"),
                &json!({"stale_after_s": value}),
            ),
        ] {
            // Act
            let answer = call(Mocks::untouchable(), request).await;

            // Assert
            assert_eq!(
                answer.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{value}: {}",
                answer.text()
            );
            assert!(
                answer.detail().starts_with("stale_after_s: "),
                "{value}: {}",
                answer.detail()
            );
        }
    }
}

#[actix_web::test]
async fn an_update_sets_clears_or_keeps_stale_after_s() {
    // Arrange
    let mut mocks = Mocks::new();
    for (wanted, name) in [
        (Some(Some(stale_after(120))), "set"),
        (Some(None), "cleared"),
        (None, "kept"),
    ] {
        mocks
            .devices
            .expect_update_device()
            .withf(move |_, _, _, changes| {
                changes.stale_after == wanted && changes.name.is_some() == (name == "kept")
            })
            .times(1)
            .returning(|_, _, id, _| Ok(device(id, "Hall", office_thresholds())));
    }
    let uri = format!("{DEVICES}/{DEVICE_A}");

    // Act
    let answers = call_all(
        mocks,
        vec![
            put(&uri, &json!({"stale_after_s": 120})),
            put(&uri, &json!({"stale_after_s": null})),
            put(&uri, &json!({"name": "Hall"})),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
}

// ---------------------------------------------------------------------------------------------
// The state object of device views

#[actix_web::test]
async fn a_device_shows_its_kept_state_its_freshness_now_and_whether_a_window_covers_it() {
    // Arrange: read in 2025, stale after a minute: stale now; a window covers it.
    let mut mocks = Mocks::bare();
    mocks.windows = covering(&[DEVICE_A]);
    mocks
        .devices
        .expect_get_device()
        .times(1)
        .returning(|_, _| {
            Ok(device_read_at(
                DEVICE_A,
                datetime!(2025-10-20 10:00:00.5 UTC),
                35.0,
                Some(60),
            ))
        });

    // Act
    let answer = call(mocks, get(&format!("{DEVICES}/{DEVICE_A}"))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["stale_after_s"], 60);
    assert_eq!(
        body["state"],
        json!({
            "alert_status": "warning",
            "since": "2025-10-20T10:00:00.5Z",
            "last_reading_at": "2025-10-20T10:00:00.5Z",
            "last_value": 35.0,
            "freshness": "stale",
            "in_maintenance": true,
        })
    );
}

#[actix_web::test]
async fn a_device_list_asks_for_its_windows_once_for_the_whole_page() {
    // Arrange: a recent reading without staleness is fresh; only B is covered.
    let now = Timestamp::now().get();
    let mut mocks = Mocks::bare();
    mocks.windows = covering(&[DEVICE_B]);
    mocks
        .devices
        .expect_list_devices()
        .times(1)
        .returning(move |_, _, _| {
            Ok(page(vec![
                device_read_at(DEVICE_A, now, 20.0, Some(3600)),
                device_read_at(DEVICE_B, now, 45.0, None),
                device(uuid(DEVICE_C), "Silent", Thresholds::default()),
            ]))
        });

    // Act
    let answer = call(mocks, get(DEVICES)).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let states: Vec<(Value, Value, Value)> = answer
        .json()
        .as_array()
        .expect("an array")
        .iter()
        .map(|d| {
            (
                d["state"]["alert_status"].clone(),
                d["state"]["freshness"].clone(),
                d["state"]["in_maintenance"].clone(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (json!("normal"), json!("fresh"), json!(false)),
            (json!("critical"), json!("fresh"), json!(true)),
            (json!("normal"), json!("no_data"), json!(false)),
        ]
    );
}

#[actix_web::test]
async fn an_empty_device_list_asks_no_windows() {
    // Arrange
    let mut mocks = Mocks::bare();
    mocks.windows.expect_covering_windows().never();
    mocks
        .devices
        .expect_list_devices()
        .times(1)
        .returning(|_, _, _| Ok(page(Vec::new())));

    // Act
    let answer = call(mocks, get(DEVICES)).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json(), json!([]));
}

// ---------------------------------------------------------------------------------------------
// Groups: device entries and the summary

#[actix_web::test]
async fn a_groups_detail_shows_each_members_state_and_sums_freshness_and_alerts() {
    // Arrange: A stale with an acknowledged open alert, B fresh with an open alert, C without
    // data.
    let now = Timestamp::now().get();
    let mut stale = member(DEVICE_A, "A stale", office_thresholds(), Some(35.0));
    stale.device.spec.stale_after = Some(stale_after(60));
    stale.alerts = MemberAlerts {
        open: true,
        acknowledged: true,
    };
    let mut fresh = member(DEVICE_B, "B fresh", office_thresholds(), None);
    fresh.device = device_read_at(DEVICE_B, now, 45.0, Some(3600));
    fresh.alerts = MemberAlerts {
        open: true,
        acknowledged: false,
    };
    let silent = member(DEVICE_C, "C silent", office_thresholds(), None);
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_get_group()
        .times(2)
        .returning(move |_, _| {
            Ok(api_group(vec![
                stale.clone(),
                fresh.clone(),
                silent.clone(),
            ]))
        });

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&format!("{API_GROUPS}/{GROUP_ID}")),
            get(&format!("{API_GROUPS}/{GROUP_ID}/alerts")),
        ],
    )
    .await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::OK, "{}", answers[0].text());
    let body = answers[0].json();
    assert_eq!(
        body["devices"][0]["state"],
        json!({
            "alert_status": "warning",
            "since": "2025-10-20T10:00:00Z",
            "last_reading_at": "2025-10-20T10:00:00Z",
            "last_value": 35.0,
            "freshness": "stale",
            "in_maintenance": false,
        })
    );
    assert_eq!(body["devices"][1]["state"]["freshness"], "fresh");
    assert_eq!(body["devices"][2]["state"]["freshness"], "no_data");
    assert_eq!(body["devices"][2]["state"]["since"], Value::Null);
    let summary = json!({
        "normal": 1, "warning": 1, "critical": 1, "in_maintenance": 0, "suppressed": 0,
        "freshness": {"fresh": 1, "stale": 1, "no_data": 1},
        "open_alerts": 2, "acknowledged": 1,
    });
    assert_eq!(body["alert_summary"], summary);
    assert_eq!(answers[1].status, StatusCode::OK, "{}", answers[1].text());
    assert_eq!(answers[1].json(), summary);
}
