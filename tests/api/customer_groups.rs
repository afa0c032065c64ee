//! `/customer/device-groups`, seed 000, to the letter.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{detail, token};
use crate::on_both_stores;

fn is_generated_slug(value: &str) -> bool {
    value.len() == 12
        && value.starts_with("grp-")
        && value[4..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

on_both_stores! {
    async fn a_group_is_created_listed_renamed_and_deleted(app) {
        let t = token("acme", &["admin"]);

        // Act: create without group_id.
        let (status, created) = app.post("/customer/device-groups", &t, json!({"name": "Lobby", "description": "Ground floor"})).await;
        assert_eq!(status, StatusCode::OK, "{created}");
        let slug = created["group_id"].as_str().expect("group_id").to_owned();
        assert!(is_generated_slug(&slug), "{slug}");
        assert_eq!(created["name"], "Lobby");
        assert_eq!(created["description"], "Ground floor");
        assert!(created["id"].as_str().is_some_and(|id| id.len() == 36), "{created}");
        assert!(created["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{created}");

        // The list shows it with its member count.
        let (status, list) = app.get("/customer/device-groups", &t).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["total"], 1);
        assert_eq!(list["groups"][0]["group_id"], slug.as_str());
        assert_eq!(list["groups"][0]["member_count"], 0);

        // Rename; the description stays.
        let (status, renamed) = app.patch(&format!("/customer/device-groups/{slug}"), &t, json!({"name": "Lobby East"})).await;
        assert_eq!(status, StatusCode::OK, "{renamed}");
        assert_eq!(renamed["name"], "Lobby East");
        assert_eq!(renamed["description"], "Ground floor");
        assert!(renamed["updated_at"].as_str() >= created["updated_at"].as_str());

        // null clears the description.
        let (status, cleared) = app.patch(&format!("/customer/device-groups/{slug}"), &t, json!({"description": null})).await;
        assert_eq!(status, StatusCode::OK, "{cleared}");
        assert_eq!(cleared["description"], serde_json::Value::Null);

        let (status, one) = app.get(&format!("/customer/device-groups/{slug}"), &t).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(one["name"], "Lobby East");

        let (status, deleted) = app.delete(&format!("/customer/device-groups/{slug}"), &t).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(deleted, json!({"group_id": slug, "deleted": true}));

        let (status, gone) = app.delete(&format!("/customer/device-groups/{slug}"), &t).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(gone, json!({"detail": "Group not found"}));
        let (_, list) = app.get("/customer/device-groups", &t).await;
        assert_eq!(list, json!({"groups": [], "total": 0}));
    }
}

on_both_stores! {
    async fn a_taken_group_id_or_name_answers_409_and_stores_nothing(app) {
        let t = token("acme", &["admin"]);
        let (status, _) = app.post("/customer/device-groups", &t, json!({"group_id": "grp-lobby", "name": "Lobby"})).await;
        assert_eq!(status, StatusCode::OK);

        let (status, body) = app.post("/customer/device-groups", &t, json!({"group_id": "grp-lobby", "name": "Other"})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body, json!({"detail": "Group ID already exists"}));

        let (status, body) = app.post("/customer/device-groups", &t, json!({"name": "Lobby"})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(detail(&body), "Group with name 'Lobby' already exists");

        app.post("/customer/device-groups", &t, json!({"group_id": "grp-hall", "name": "Hall"})).await;
        let (status, body) = app.patch("/customer/device-groups/grp-hall", &t, json!({"name": "Lobby"})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(detail(&body), "Group with name 'Lobby' already exists");

        let (_, list) = app.get("/customer/device-groups", &t).await;
        assert_eq!(list["total"], 2);
        let names: Vec<&str> = list["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Hall", "Lobby"], "ordered by name, and the refused rename changed nothing");
    }
}

on_both_stores! {
    async fn patch_refuses_empty_bodies_unknown_groups_and_nulls_for_required_fields(app) {
        let t = token("acme", &["admin"]);
        app.post("/customer/device-groups", &t, json!({"group_id": "grp-a", "name": "A"})).await;

        let (status, body) = app.patch("/customer/device-groups/grp-a", &t, json!({})).await;
        assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"detail": "No fields to update"})));

        let (status, body) = app.patch("/customer/device-groups/grp-missing", &t, json!({"name": "B"})).await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"detail": "Group not found"})));

        let (status, body) = app.patch("/customer/device-groups/grp-a", &t, json!({"name": null})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(detail(&body), "name: must not be null");

        let (status, body) = app.patch("/customer/device-groups/grp-a", &t, json!({"name": "x".repeat(129)})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(detail(&body).starts_with("name:"), "{body}");

        let (status, body) = app.patch("/customer/device-groups/grp-a", &t, json!({"group_id": "grp-b"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(detail(&body).starts_with("group_id: unknown field"), "{body}");

        let (_, one) = app.get("/customer/device-groups/grp-a", &t).await;
        assert_eq!(one["name"], "A", "refused patches changed nothing");
    }
}

on_both_stores! {
    async fn invalid_group_bodies_answer_422_naming_the_field(app) {
        let t = token("acme", &["admin"]);
        for (body, field) in [
            (json!({}), "name: required"),
            (json!({"name": ""}), "name:"),
            (json!({"name": "   "}), "name:"),
            (json!({"name": "n".repeat(129)}), "name:"),
            (json!({"name": 7}), "name:"),
            (json!({"name": "ok", "description": "d".repeat(501)}), "description:"),
            (json!({"name": "ok", "group_id": "has space"}), "group_id:"),
            (json!({"name": "ok", "group_id": "a/b"}), "group_id:"),
            (json!({"name": "ok", "color": "red"}), "color:"),
            (json!(["name"]), "body:"),
        ] {
            let (status, answer) = app.post("/customer/device-groups", &t, body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {answer}");
            assert!(detail(&answer).starts_with(field), "{body} -> {answer}");
        }
        let (status, answer) = app.raw(reqwest::Method::POST, "/customer/device-groups", &t, b"{\"name\": ".to_vec()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(detail(&answer).starts_with("body: malformed JSON"), "{answer}");

        let (_, list) = app.get("/customer/device-groups", &t).await;
        assert_eq!(list["total"], 0, "nothing stored from a refused request");
    }
}

on_both_stores! {
    async fn a_128_character_name_and_an_empty_group_id_are_accepted(app) {
        let t = token("acme", &["admin"]);
        let name = "é".repeat(128);
        let (status, body) = app.post("/customer/device-groups", &t, json!({"name": name, "group_id": ""})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["name"], name.as_str());
        assert!(is_generated_slug(body["group_id"].as_str().unwrap()), "an empty group_id is generated, as in the seed");
    }
}
