//! Issue 17: dynamic groups (both API families), previews, and windows scoped by labels and by
//! dynamic groups, through the real server on both stores.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::devices::put;
use crate::helpers::{detail, token};
use crate::on_both_stores;

fn id(body: &Value) -> String {
    body["id"].as_str().expect("an id").to_owned()
}

on_both_stores! {
    async fn dynamic_groups_follow_the_fleet_and_refuse_hand_written_members(app) {
        let admin = token("dynamic", &["admin"]);
        let viewer = token("dynamic", &["viewer"]);
        let mut ids = Vec::new();
        for (name, line) in [("v1", "a"), ("v2", "b"), ("v3", "a")] {
            let (status, body) = app.post("/api/devices", &admin, json!({
                "name": name, "site_id": "plant-1", "labels": {"line": line},
            })).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            ids.push(id(&body));
        }

        // Preview: any role, nothing stored.
        let (status, preview) = app.post("/api/groups/preview", &viewer, json!({
            "filter": {"labels": {"line": "a"}},
        })).await;
        assert_eq!(status, StatusCode::OK, "{preview}");
        assert_eq!(preview["count"], 2);
        assert_eq!(preview["devices"][0]["name"], "v1");
        assert_eq!(preview["devices"][1]["name"], "v3");
        assert_eq!(app.get("/api/groups", &admin).await.1, json!([]));

        // Created dynamic in the Group API, seen in both families with its filter.
        let (status, group) = app.post("/api/groups", &admin, json!({
            "name": "Line A", "filter": {"labels": {"line": "a"}, "site_ids": ["plant-1"]},
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{group}");
        assert_eq!(group["filter"], json!({"site_ids": ["plant-1"], "labels": {"line": "a"}}));
        assert_eq!(group["devices"].as_array().map(Vec::len), Some(2));
        let group_path = format!("/api/groups/{}", id(&group));
        let slug = group["group_id"].as_str().expect("a slug").to_owned();
        let (_, customer) = app.get(&format!("/customer/device-groups/{slug}"), &admin).await;
        assert_eq!(customer["filter"], group["filter"]);
        assert_eq!(customer["member_count"], 2);

        // A device moved onto line a joins; one moved off leaves: every read follows.
        put(&app, &format!("/api/devices/{}", ids[1]), &admin, json!({"labels": {"line": "a"}})).await;
        put(&app, &format!("/api/devices/{}", ids[0]), &admin, json!({"labels": {"line": "c"}})).await;
        let (_, detail_now) = app.get(&group_path, &admin).await;
        let names: Vec<&str> = detail_now["devices"].as_array().expect("devices").iter()
            .map(|d| d["name"].as_str().unwrap_or_default()).collect();
        assert_eq!(names, ["v2", "v3"], "{detail_now}");
        let (_, groups_of_v2) = app.get(&format!("/api/devices/{}/groups", ids[1]), &admin).await;
        assert_eq!(groups_of_v2.to_string().matches(&slug).count(), 1, "{groups_of_v2}");

        // Members are the filter's to choose.
        let member = format!("/customer/device-groups/{slug}/devices/{}", ids[0]);
        let (status, body) = app.request(reqwest::Method::PUT, &member, Some(&admin), None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(detail(&body), "Group membership is defined by its filter");
        let (status, body) = put(&app, &group_path, &admin, json!({"device_ids": [ids[0]]})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let (status, body) = put(&app, &group_path, &admin, json!({
            "device_ids": [ids[0]], "filter": {"all": true},
        })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("filter: "), "{body}");

        // Bad filters: 422 naming the key, nothing stored.
        for (filter, field) in [
            (json!({}), "filter: "),
            (json!({"all": true, "labels": {"a": "b"}}), "filter.all: "),
            (json!({"statuses": ["on"]}), "filter.statuses[0]: "),
            (json!({"labels": {"Line": "a"}}), "filter.labels: "),
            (json!({"nope": 1}), "filter"),
        ] {
            let (status, body) = app.post("/customer/device-groups", &admin, json!({
                "name": "Bad", "filter": filter,
            })).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{filter}: {body}");
            assert!(detail(&body).starts_with(field), "{filter}: {body}");
        }
        let (_, listed) = app.get("/customer/device-groups", &admin).await;
        assert_eq!(listed["total"], 1);

        // {"all": true}, then made static with filter null: it keeps its members.
        let (status, every) = app.post("/customer/device-groups", &admin, json!({
            "group_id": "grp-every", "name": "Every", "filter": {"all": true},
        })).await;
        assert_eq!(status, StatusCode::OK, "{every}");
        assert_eq!(every["member_count"], 3);
        let (status, made_static) = app.patch("/customer/device-groups/grp-every", &admin,
            json!({"filter": null})).await;
        assert_eq!(status, StatusCode::OK, "{made_static}");
        assert_eq!(made_static["filter"], Value::Null);
        assert_eq!(made_static["member_count"], 3);
        let (status, body) = app.delete(
            &format!("/customer/device-groups/grp-every/devices/{}", ids[2]), &admin).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

on_both_stores! {
    async fn windows_scope_by_labels_and_dynamic_groups_as_the_fleet_changes(app) {
        let admin = token("dynamic-windows", &["admin"]);
        let (_, a) = app.post("/api/devices", &admin, json!({
            "name": "a", "labels": {"zone": "north"},
        })).await;
        let (_, b) = app.post("/api/devices", &admin, json!({"name": "b"})).await;
        let (status, _) = app.post("/customer/device-groups", &admin, json!({
            "group_id": "grp-north", "name": "North", "filter": {"labels": {"zone": "north"}},
        })).await;
        assert_eq!(status, StatusCode::OK);
        let (status, window) = app.post("/customer/maintenance-windows", &admin, json!({
            "name": "North works", "starts_at": "2025-01-01T00:00:00Z", "group_ids": ["grp-north"],
        })).await;
        assert_eq!(status, StatusCode::OK, "{window}");
        let (status, by_label) = app.post("/customer/maintenance-windows", &admin, json!({
            "name": "Labelled", "starts_at": "2025-01-01T00:00:00Z", "labels": {"zone": "north"},
        })).await;
        assert_eq!(status, StatusCode::OK, "{by_label}");
        assert_eq!(by_label["labels"], json!({"zone": "north"}));
        let muted = |body: &Value| body["state"]["in_maintenance"].as_bool();
        let b_path = format!("/api/devices/{}", id(&b));
        assert_eq!(muted(&app.get(&format!("/api/devices/{}", id(&a)), &admin).await.1), Some(true));
        assert_eq!(muted(&app.get(&b_path, &admin).await.1), Some(false));

        // b gains the label: both windows now cover it, and it says why.
        put(&app, &b_path, &admin, json!({"labels": {"zone": "north"}})).await;
        assert_eq!(muted(&app.get(&b_path, &admin).await.1), Some(true));
        let (_, why) = app.get(&format!("{b_path}/maintenance"), &admin).await;
        assert_eq!(why["windows"].as_array().map(Vec::len), Some(2), "{why}");

        // A bad window label is refused, naming it.
        let (status, body) = app.post("/customer/maintenance-windows", &admin, json!({
            "name": "Bad", "starts_at": "2025-01-01T00:00:00Z", "labels": {"Zone": "x"},
        })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("labels"), "{body}");
    }
}
