//! The Group API, `/api/groups` (seed 002), to the letter: shapes, codes, member lists, alert
//! summary, readings, roles and tenancy.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::devices::{create_device, names, put, FORBIDDEN};
use crate::helpers::{detail, status_counts, token, TestApp};
use crate::on_both_stores;
use crate::readings::{ago, ingest};

/// Creates a group through the Group API, asserting 201, and returns its answer.
async fn create_group(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, created) = app.post("/api/groups", token, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body} -> {created}");
    created
}

fn id_of(value: &Value) -> String {
    value["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {value}"))
        .to_owned()
}

/// The ids of a group's `devices`, in order.
fn member_ids(group: &Value) -> Vec<&str> {
    group["devices"]
        .as_array()
        .unwrap_or_else(|| panic!("no devices in {group}"))
        .iter()
        .map(|d| d["id"].as_str().expect("device id"))
        .collect()
}

fn not_found(id: &str) -> Value {
    let detail = if uuid::Uuid::parse_str(id).is_ok() {
        format!("Group {id} not found")
    } else {
        format!("Group {id} not found; the Group API takes group UUIDs (slugs are for /customer/device-groups)")
    };
    json!({"detail": detail, "code": "GROUP_005"})
}

/// Devices with warning bounds 0..30 and critical bounds -10..40.
fn thresholds(name: &str) -> Value {
    json!({
        "name": name, "unit": "°C",
        "threshold_warning_lower": 0.0, "threshold_warning_upper": 30.0,
        "threshold_critical_lower": -10.0, "threshold_critical_upper": 40.0,
    })
}

on_both_stores! {
    async fn a_group_is_created_with_devices_listed_and_read(app) {
        let admin = token("acme", &["admin"]);
        let s1 = create_device(&app, &admin, json!({"name": "Temperature Sensor 1", "unit": "°C", "status": "connected"})).await;
        let s2 = create_device(&app, &admin, json!({"name": "Temperature Sensor 2", "unit": "°C"})).await;

        // Act
        let (status, created) = app.post("/api/groups", &admin, json!({
            "name": "Building A Sensors",
            "description": "All temperature sensors in Building A",
            "device_ids": [s2, s1],
        })).await;

        // Assert: the seed's 201 shape.
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = id_of(&created);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{created}");
        assert_eq!(created["name"], "Building A Sensors");
        assert_eq!(created["description"], "All temperature sensors in Building A");
        assert_eq!(created["devices"], json!([
            {"id": s1, "name": "Temperature Sensor 1", "unit": "°C", "status": "connected", "alert_status": "normal", "in_maintenance": false,
             "state": {"alert_status": "normal", "since": null, "last_reading_at": null, "last_value": null, "freshness": "no_data", "in_maintenance": false}},
            {"id": s2, "name": "Temperature Sensor 2", "unit": "°C", "status": "disconnected", "alert_status": "normal", "in_maintenance": false,
             "state": {"alert_status": "normal", "since": null, "last_reading_at": null, "last_value": null, "freshness": "no_data", "in_maintenance": false}},
        ]));
        assert_eq!(status_counts(&created["alert_summary"]), json!({"normal": 2, "warning": 0, "critical": 0, "in_maintenance": 0, "suppressed": 0}));
        assert!(created["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{created}");
        assert!(created["updated_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{created}");

        // The list: a bare array with device_count.
        create_group(&app, &admin, json!({"name": "Annex"})).await;
        let (status, list) = app.get("/api/groups", &admin).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(names(&list), ["Annex", "Building A Sensors"]);
        let listed = &list[1];
        assert_eq!(listed["id"], id.as_str());
        assert_eq!(listed["description"], "All temperature sensors in Building A");
        assert_eq!(listed["device_count"], 2);
        assert_eq!(listed["created_at"], created["created_at"]);
        assert_eq!(listed["updated_at"], created["updated_at"]);
        assert_eq!(list[0]["description"], Value::Null);
        assert_eq!(list[0]["device_count"], 0);

        // One group: the same as the create answered.
        let (status, one) = app.get(&format!("/api/groups/{id}"), &admin).await;
        assert_eq!(status, StatusCode::OK, "{one}");
        assert_eq!(one, created);

        // Any role may read.
        let viewer = token("acme", &["viewer"]);
        let (status, _) = app.get("/api/groups", &viewer).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app.get(&format!("/api/groups/{id}"), &viewer).await;
        assert_eq!(status, StatusCode::OK);
    }
}

on_both_stores! {
    async fn put_replaces_the_member_list_wholly_and_keeps_it_when_absent(app) {
        let admin = token("acme", &["admin"]);
        let d1 = create_device(&app, &admin, json!({"name": "D1"})).await;
        let d2 = create_device(&app, &admin, json!({"name": "D2"})).await;
        let d3 = create_device(&app, &admin, json!({"name": "D3"})).await;
        let d4 = create_device(&app, &admin, json!({"name": "D4"})).await;
        let group = create_group(&app, &admin, json!({"name": "G", "description": "first", "device_ids": [d1, d2]})).await;
        let path = format!("/api/groups/{}", id_of(&group));

        // Act: replace, then replace again with other ids.
        let (status, updated) = put(&app, &path, &admin, json!({"device_ids": [d2, d3]})).await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(member_ids(&updated), [d2.as_str(), d3.as_str()]);
        let (status, updated) = put(&app, &path, &admin, json!({"device_ids": [d4, d1]})).await;
        assert_eq!(status, StatusCode::OK, "{updated}");

        // Assert: the list equals the new one, not a merge.
        assert_eq!(member_ids(&updated), [d1.as_str(), d4.as_str()]);
        let (_, one) = app.get(&path, &admin).await;
        assert_eq!(member_ids(&one), [d1.as_str(), d4.as_str()]);
        assert_eq!(status_counts(&one["alert_summary"]), json!({"normal": 2, "warning": 0, "critical": 0, "in_maintenance": 0, "suppressed": 0}));

        // A name-only PUT keeps the devices and the description.
        let (status, renamed) = put(&app, &path, &admin, json!({"name": "G renamed"})).await;
        assert_eq!(status, StatusCode::OK, "{renamed}");
        assert_eq!(renamed["name"], "G renamed");
        assert_eq!(renamed["description"], "first");
        assert_eq!(member_ids(&renamed), [d1.as_str(), d4.as_str()]);
        assert!(renamed["updated_at"].as_str() >= group["updated_at"].as_str());
        assert_eq!(renamed["created_at"], group["created_at"]);

        // null clears the description; an empty list empties the group.
        let (status, emptied) = put(&app, &path, &admin, json!({"description": null, "device_ids": []})).await;
        assert_eq!(status, StatusCode::OK, "{emptied}");
        assert_eq!(emptied["description"], Value::Null);
        assert_eq!(emptied["devices"], json!([]));
        assert_eq!(status_counts(&emptied["alert_summary"]), json!({"normal": 0, "warning": 0, "critical": 0, "in_maintenance": 0, "suppressed": 0}));
        let (_, list) = app.get("/api/groups", &admin).await;
        assert_eq!(list[0]["device_count"], 0);
        assert_eq!(list[0]["name"], "G renamed");
    }
}

on_both_stores! {
    async fn deleting_a_group_keeps_its_devices(app) {
        let admin = token("acme", &["admin"]);
        let d = create_device(&app, &admin, json!({"name": "D"})).await;
        let group = create_group(&app, &admin, json!({"name": "G", "device_ids": [d]})).await;
        let id = id_of(&group);
        let path = format!("/api/groups/{id}");

        let (status, body) = app.delete(&path, &admin).await;
        assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));

        let (status, device) = app.get(&format!("/api/devices/{d}"), &admin).await;
        assert_eq!(status, StatusCode::OK, "the device stays: {device}");
        let (_, groups) = app.get(&format!("/api/devices/{d}/groups"), &admin).await;
        assert_eq!(groups, json!([]));
        for (status, body) in [
            app.get(&path, &admin).await,
            app.delete(&path, &admin).await,
            put(&app, &path, &admin, json!({"name": "back"})).await,
            app.get(&format!("{path}/alerts"), &admin).await,
            app.get(&format!("{path}/readings"), &admin).await,
        ] {
            assert_eq!((status, body), (StatusCode::NOT_FOUND, not_found(&id)));
        }
        let (_, list) = app.get("/api/groups", &admin).await;
        assert_eq!(list, json!([]));
    }
}

on_both_stores! {
    async fn a_taken_name_or_a_bad_device_answers_400_with_its_code_and_stores_nothing(app) {
        let admin = token("acme", &["admin"]);
        let d = create_device(&app, &admin, json!({"name": "D"})).await;
        let foreign = create_device(&app, &token("other", &["admin"]), json!({"name": "Theirs"})).await;
        create_group(&app, &admin, json!({"name": "X", "device_ids": [d]})).await;

        let (status, body) = app.post("/api/groups", &admin, json!({"name": "X"})).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"detail": "Group with name 'X' already exists", "code": "GROUP_001"})));

        let unknown = uuid::Uuid::new_v4().to_string();
        for missing in [&unknown, &foreign] {
            let (status, body) = app.post("/api/groups", &admin, json!({"name": "Y", "device_ids": [d, missing]})).await;
            assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"detail": format!("Device {missing} not found"), "code": "GROUP_002"})));
        }

        let (status, body) = app.post("/api/groups", &admin, json!({"name": "Z", "device_ids": [d, "abc"]})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["code"], "GROUP_003", "{body}");
        assert!(detail(&body).contains("abc"), "{body}");

        // Nothing refused was stored.
        let (_, list) = app.get("/api/groups", &admin).await;
        assert_eq!(names(&list), ["X"]);
        assert_eq!(list[0]["device_count"], 1);
        let (_, groups) = app.get(&format!("/api/devices/{d}/groups"), &admin).await;
        assert_eq!(names(&groups), ["X"]);
    }
}

on_both_stores! {
    async fn invalid_group_bodies_answer_422_naming_the_field(app) {
        let admin = token("acme", &["admin"]);
        for (body, field) in [
            (json!({}), "name: required"),
            (json!({"name": ""}), "name:"),
            (json!({"name": "n".repeat(101)}), "name:"),
            (json!({"name": "ok", "description": "d".repeat(501)}), "description:"),
            (json!({"name": "ok", "device_ids": "abc"}), "device_ids:"),
        ] {
            let (status, answer) = app.post("/api/groups", &admin, body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {answer}");
            assert!(detail(&answer).starts_with(field), "{body} -> {answer}");
        }
        create_group(&app, &admin, json!({"name": "n".repeat(100), "description": "d".repeat(500)})).await;
        let (_, list) = app.get("/api/groups", &admin).await;
        assert_eq!(list.as_array().map(Vec::len), Some(1));
    }
}

on_both_stores! {
    async fn malformed_or_unknown_group_ids_answer_404_group_005(app) {
        let admin = token("acme", &["admin"]);
        for raw in ["abc".to_owned(), uuid::Uuid::new_v4().to_string()] {
            let path = format!("/api/groups/{raw}");
            for (what, (status, body)) in [
                ("GET", app.get(&path, &admin).await),
                ("PUT", put(&app, &path, &admin, json!({"name": "N"})).await),
                ("DELETE", app.delete(&path, &admin).await),
                ("GET readings", app.get(&format!("{path}/readings"), &admin).await),
                ("GET alerts", app.get(&format!("{path}/alerts"), &admin).await),
            ] {
                assert_eq!((status, body), (StatusCode::NOT_FOUND, not_found(&raw)), "{what} {raw}");
            }
        }
    }
}

on_both_stores! {
    async fn a_viewer_may_not_write_groups_and_gets_group_004(app) {
        let admin = token("acme", &["admin"]);
        let viewer = token("acme", &["viewer"]);
        let d = create_device(&app, &admin, json!({"name": "D"})).await;
        let group = create_group(&app, &admin, json!({"name": "G", "device_ids": [d]})).await;
        let path = format!("/api/groups/{}", id_of(&group));
        let forbidden = json!({"detail": FORBIDDEN, "code": "GROUP_004"});

        for (what, (status, body)) in [
            ("POST", app.post("/api/groups", &viewer, json!({"name": "Mine"})).await),
            ("PUT", put(&app, &path, &viewer, json!({"name": "Mine", "device_ids": []})).await),
            ("DELETE", app.delete(&path, &viewer).await),
        ] {
            assert_eq!((status, body), (StatusCode::FORBIDDEN, forbidden.clone()), "{what}");
        }
        for role in ["operator", "viewer"] {
            let (status, body) = app.post("/api/groups", &token("acme", &[role]), json!({"name": "Mine"})).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{role}: {body}");
        }
        let (status, body) = app.post("/api/groups", &token("acme", &["owner"]), json!({"name": "Owned"})).await;
        assert_eq!(status, StatusCode::CREATED, "an owner may write: {body}");

        let (status, one) = app.get(&path, &viewer).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one, group, "the refused writes changed nothing");
        let (_, list) = app.get("/api/groups", &viewer).await;
        assert_eq!(names(&list), ["G", "Owned"]);
    }
}

on_both_stores! {
    async fn repeated_device_ids_count_once(app) {
        let admin = token("acme", &["admin"]);
        let d = create_device(&app, &admin, json!({"name": "D"})).await;
        let e = create_device(&app, &admin, json!({"name": "E"})).await;
        let group = create_group(&app, &admin, json!({"name": "G", "device_ids": [d, d, d]})).await;
        assert_eq!(member_ids(&group), [d.as_str()]);
        assert_eq!(status_counts(&group["alert_summary"]), json!({"normal": 1, "warning": 0, "critical": 0, "in_maintenance": 0, "suppressed": 0}));
        let (_, list) = app.get("/api/groups", &admin).await;
        assert_eq!(list[0]["device_count"], 1);

        let (status, updated) = put(&app, &format!("/api/groups/{}", id_of(&group)), &admin, json!({"device_ids": [e, d, e]})).await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(member_ids(&updated), [d.as_str(), e.as_str()]);
    }
}

on_both_stores! {
    async fn a_refused_put_changes_nothing(app) {
        let admin = token("acme", &["admin"]);
        let d1 = create_device(&app, &admin, json!({"name": "D1"})).await;
        let d2 = create_device(&app, &admin, json!({"name": "D2"})).await;
        create_group(&app, &admin, json!({"name": "Taken"})).await;
        let group = create_group(&app, &admin, json!({"name": "G", "description": "kept", "device_ids": [d1]})).await;
        let path = format!("/api/groups/{}", id_of(&group));
        let unknown = uuid::Uuid::new_v4().to_string();

        let (status, body) = put(&app, &path, &admin, json!({"name": "New", "description": "new", "device_ids": [d2, unknown]})).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"detail": format!("Device {unknown} not found"), "code": "GROUP_002"})));
        let (status, body) = put(&app, &path, &admin, json!({"name": "New", "device_ids": [d2, "abc"]})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["code"], "GROUP_003");
        let (status, body) = put(&app, &path, &admin, json!({"name": "Taken", "device_ids": [d2]})).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"detail": "Group with name 'Taken' already exists", "code": "GROUP_001"})));
        for (body, field) in [
            (json!({"name": null}), "name:"),
            (json!({"device_ids": null}), "device_ids:"),
            (json!({"name": "", "device_ids": [d2]}), "name:"),
        ] {
            let (status, answer) = put(&app, &path, &admin, body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {answer}");
            assert!(detail(&answer).starts_with(field), "{body} -> {answer}");
        }

        let (_, one) = app.get(&path, &admin).await;
        assert_eq!(one, group, "old name, description and members");
    }
}

on_both_stores! {
    async fn the_alert_summary_counts_each_devices_latest_reading(app) {
        let admin = token("acme", &["admin"]);
        let normal = create_device(&app, &admin, thresholds("Normal")).await;
        let warning = create_device(&app, &admin, thresholds("Warning")).await;
        let high = create_device(&app, &admin, thresholds("Critical high")).await;
        let low = create_device(&app, &admin, thresholds("Critical low")).await;
        let silent = create_device(&app, &admin, thresholds("Silent")).await;
        let latest = ago(60);
        ingest(&app, &admin, &[(&normal, &latest, 15.0), (&warning, &latest, 35.0), (&high, &latest, 45.0), (&low, &latest, -20.0)]).await;

        // Act
        let group = create_group(&app, &admin, json!({"name": "G", "device_ids": [normal, warning, high, low, silent]})).await;

        // Assert
        let expected = json!({"normal": 2, "warning": 1, "critical": 2, "in_maintenance": 0, "suppressed": 0});
        assert_eq!(status_counts(&group["alert_summary"]), expected);
        let path = format!("/api/groups/{}", id_of(&group));
        let (status, alerts) = app.get(&format!("{path}/alerts"), &admin).await;
        assert_eq!((status, status_counts(&alerts)), (StatusCode::OK, expected.clone()));
        let (_, alerts) = app.get(&format!("{path}/alerts"), &token("acme", &["viewer"])).await;
        assert_eq!(status_counts(&alerts), expected, "any role may read alerts");

        // An older, out-of-range reading of the normal device, sent last, does not count.
        ingest(&app, &admin, &[(&normal, &ago(3_600), 100.0), (&silent, &ago(7_200), -50.0)]).await;
        let (_, one) = app.get(&path, &admin).await;
        assert_eq!(status_counts(&one["alert_summary"]), json!({"normal": 1, "warning": 1, "critical": 3, "in_maintenance": 0, "suppressed": 0}), "the silent device's only reading is its latest");
        ingest(&app, &admin, &[(&silent, &latest, 20.0)]).await;
        let (_, one) = app.get(&path, &admin).await;
        assert_eq!(status_counts(&one["alert_summary"]), expected);
        let (_, alerts) = app.get(&format!("{path}/alerts"), &admin).await;
        assert_eq!(status_counts(&alerts), expected);

        // A newer reading does count.
        ingest(&app, &admin, &[(&warning, &ago(10), 20.0)]).await;
        let (_, alerts) = app.get(&format!("{path}/alerts"), &admin).await;
        assert_eq!(alerts, json!({
            "normal": 3, "warning": 0, "critical": 2, "in_maintenance": 0, "suppressed": 0,
            "freshness": {"fresh": 5, "stale": 0, "no_data": 0}, "open_alerts": 2, "acknowledged": 0,
        }));
    }
}

on_both_stores! {
    async fn the_latest_reading_counts_however_old_it_is(app) {
        let admin = token("acme", &["admin"]);
        let stale = create_device(&app, &admin, thresholds("Stale")).await;
        let fresh = create_device(&app, &admin, thresholds("Fresh")).await;
        ingest(&app, &admin, &[(&stale, &ago(10 * 24 * 3_600), 50.0), (&fresh, &ago(60), 31.0)]).await;

        let group = create_group(&app, &admin, json!({"name": "G", "device_ids": [stale, fresh]})).await;

        let expected = json!({"normal": 0, "warning": 1, "critical": 1, "in_maintenance": 0, "suppressed": 0});
        assert_eq!(status_counts(&group["alert_summary"]), expected);
        let (_, alerts) = app.get(&format!("/api/groups/{}/alerts", id_of(&group)), &admin).await;
        assert_eq!(status_counts(&alerts), expected);
    }
}

on_both_stores! {
    async fn a_value_equal_to_a_threshold_is_not_beyond_it(app) {
        let admin = token("acme", &["admin"]);
        let at_warning_upper = create_device(&app, &admin, thresholds("At 30")).await;
        let at_critical_upper = create_device(&app, &admin, thresholds("At 40")).await;
        let at_warning_lower = create_device(&app, &admin, thresholds("At 0")).await;
        let at_critical_lower = create_device(&app, &admin, thresholds("At -10")).await;
        let unbounded = create_device(&app, &admin, json!({"name": "No thresholds"})).await;
        let only_upper = create_device(&app, &admin, json!({"name": "Only critical upper", "threshold_critical_upper": 40.0})).await;
        let t = ago(60);
        ingest(&app, &admin, &[
            (&at_warning_upper, &t, 30.0),
            (&at_critical_upper, &t, 40.0),
            (&at_warning_lower, &t, 0.0),
            (&at_critical_lower, &t, -10.0),
            (&unbounded, &t, 1.0e6),
            (&only_upper, &t, 35.0),
        ]).await;

        let group = create_group(&app, &admin, json!({"name": "Edges", "device_ids": [
            at_warning_upper, at_critical_upper, at_warning_lower, at_critical_lower, unbounded, only_upper,
        ]})).await;

        // 30 and 0 are normal; 40 and -10 are only beyond the warning bounds; no bounds: normal.
        let expected = json!({"normal": 4, "warning": 2, "critical": 0, "in_maintenance": 0, "suppressed": 0});
        assert_eq!(status_counts(&group["alert_summary"]), expected);
        let (_, alerts) = app.get(&format!("/api/groups/{}/alerts", id_of(&group)), &admin).await;
        assert_eq!(status_counts(&alerts), expected);
    }
}

on_both_stores! {
    async fn group_readings_are_newest_first_across_members_and_limited(app) {
        let admin = token("acme", &["admin"]);
        let d1 = create_device(&app, &admin, json!({"name": "D1", "unit": "°C"})).await;
        let d2 = create_device(&app, &admin, json!({"name": "D2", "unit": "kPa"})).await;
        let outsider = create_device(&app, &admin, json!({"name": "Outsider"})).await;
        let (t10, t20, t30, t40, t50, old) = (ago(10), ago(20), ago(30), ago(40), ago(50), ago(30 * 3_600));
        ingest(&app, &admin, &[
            (&d1, &t10, 1.0), (&d2, &t20, 2.0), (&d1, &t30, 3.0), (&d2, &t40, 4.0), (&d1, &t50, 5.0),
            (&d1, &old, 99.0), (&outsider, &ago(5), 0.5),
        ]).await;
        let group = create_group(&app, &admin, json!({"name": "G", "device_ids": [d1, d2]})).await;
        let id = id_of(&group);
        let path = format!("/api/groups/{id}/readings");

        // Act
        let (status, mut answer) = app.get(&format!("{path}?hours=24&limit=3"), &admin).await;

        // Assert
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["has_more"], true, "{answer}");
        assert!(answer["next_cursor"].is_string(), "{answer}");
        answer.as_object_mut().unwrap().remove("next_cursor");
        answer.as_object_mut().unwrap().remove("has_more");
        assert_eq!(answer, json!({
            "group_id": id,
            "readings": [
                {"device_id": d1, "device_name": "D1", "timestamp": t10, "value": 1.0, "unit": "°C"},
                {"device_id": d2, "device_name": "D2", "timestamp": t20, "value": 2.0, "unit": "kPa"},
                {"device_id": d1, "device_name": "D1", "timestamp": t30, "value": 3.0, "unit": "°C"},
            ],
            "total": 3,
        }));

        let values = |answer: &Value| -> Vec<f64> {
            answer["readings"].as_array().unwrap().iter().map(|r| r["value"].as_f64().unwrap()).collect()
        };
        let (_, answer) = app.get(&path, &admin).await;
        assert_eq!(values(&answer), [1.0, 2.0, 3.0, 4.0, 5.0], "defaults: 24 hours, the outsider and the old one excluded");
        assert_eq!(answer["total"], 5);
        let (_, answer) = app.get(&format!("{path}?hours=48"), &admin).await;
        assert_eq!(values(&answer), [1.0, 2.0, 3.0, 4.0, 5.0, 99.0]);
        assert_eq!(answer["total"], 6);

        for (query, field) in [("hours=0", "hours:"), ("hours=8761", "hours:"), ("limit=0", "limit:"), ("limit=10001", "limit:")] {
            let (status, answer) = app.get(&format!("{path}?{query}"), &admin).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query} -> {answer}");
            assert!(detail(&answer).starts_with(field), "{query} -> {answer}");
        }

        let (status, empty) = app.get(&format!("/api/groups/{}/readings", id_of(&create_group(&app, &admin, json!({"name": "Empty"})).await)), &admin).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(empty["readings"], json!([]));
        assert_eq!(empty["total"], 0);
    }
}

on_both_stores! {
    async fn another_tenants_group_answers_404_and_its_devices_group_002(app) {
        let a = token("tenant-a", &["admin"]);
        let b = token("tenant-b", &["admin"]);
        let a_device = create_device(&app, &a, json!({"name": "A's device"})).await;
        let a_group = create_group(&app, &a, json!({"name": "A's", "device_ids": [a_device]})).await;
        let a_id = id_of(&a_group);
        let path = format!("/api/groups/{a_id}");

        let (_, list) = app.get("/api/groups", &b).await;
        assert_eq!(list, json!([]));
        for (what, (status, body)) in [
            ("GET", app.get(&path, &b).await),
            ("PUT", put(&app, &path, &b, json!({"name": "stolen"})).await),
            ("DELETE", app.delete(&path, &b).await),
            ("GET readings", app.get(&format!("{path}/readings"), &b).await),
            ("GET alerts", app.get(&format!("{path}/alerts"), &b).await),
        ] {
            assert_eq!((status, body), (StatusCode::NOT_FOUND, not_found(&a_id)), "{what}");
        }

        // B can neither create nor fill a group with A's device.
        let device_missing = json!({"detail": format!("Device {a_device} not found"), "code": "GROUP_002"});
        let (status, body) = app.post("/api/groups", &b, json!({"name": "B's", "device_ids": [a_device]})).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, device_missing.clone()));
        let b_group = create_group(&app, &b, json!({"name": "A's"})).await;
        let (status, body) = put(&app, &format!("/api/groups/{}", id_of(&b_group)), &b, json!({"device_ids": [a_device]})).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, device_missing));

        // A's group is as it was.
        let (_, one) = app.get(&path, &a).await;
        assert_eq!(one, a_group);
    }
}

on_both_stores! {
    async fn racing_creates_of_one_name_store_one_group_and_refuse_the_rest_with_group_001(app) {
        let admin = token("acme", &["admin"]);
        let d = create_device(&app, &admin, json!({"name": "D"})).await;
        let body = json!({"name": "Race", "device_ids": [d]});

        // Act: four creates at once.
        let (r1, r2, r3, r4) = tokio::join!(
            app.post("/api/groups", &admin, body.clone()),
            app.post("/api/groups", &admin, body.clone()),
            app.post("/api/groups", &admin, body.clone()),
            app.post("/api/groups", &admin, body.clone()),
        );

        // Assert: one 201, three GROUP_001, never a 500.
        let answers = [r1, r2, r3, r4];
        let created = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
        assert_eq!(created, 1, "{answers:?}");
        for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
            assert_eq!((*status, body.clone()), (StatusCode::BAD_REQUEST, json!({"detail": "Group with name 'Race' already exists", "code": "GROUP_001"})));
        }
        let (_, list) = app.get("/api/groups", &admin).await;
        assert_eq!(names(&list), ["Race"]);
        assert_eq!(list[0]["device_count"], 1);
    }
}

on_both_stores! {
    async fn null_description_and_device_ids_mean_none(app) {
        let admin = token("acme", &["admin"]);
        let group = create_group(&app, &admin, json!({"name": "G", "description": null, "device_ids": null})).await;
        assert_eq!(group["description"], Value::Null);
        assert_eq!(group["devices"], json!([]));
        assert_eq!(status_counts(&group["alert_summary"]), json!({"normal": 0, "warning": 0, "critical": 0, "in_maintenance": 0, "suppressed": 0}));
    }
}
