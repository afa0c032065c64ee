//! Bucketed readings (issue 16): `interval`, `agg`, `timezone`, `fill` on the device and group
//! readings routes; buckets on the calendar of real zones (DST days of 23 and 25 hours, months,
//! a half-hour offset), `top` and `device_ids`, CSV with a file name, and every bad input a 422
//! naming its parameter.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::devices::create_device;
use crate::helpers::{detail, token, TestApp};
use crate::on_both_stores;
use crate::readings::ingest;

fn buckets(answer: &Value, series: usize) -> &Vec<Value> {
    answer["series"][series]["buckets"]
        .as_array()
        .unwrap_or_else(|| panic!("no buckets in {answer}"))
}

fn enc(text: &str) -> String {
    text.replace('+', "%2B")
}

/// A CSV answer: status, `Content-Disposition`, body.
async fn csv(app: &TestApp, path: &str, token: &str) -> (StatusCode, String, String) {
    let (status, headers, body) = app.get_accepting(path, token, "text/csv").await;
    let disposition = headers
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, disposition, body)
}

on_both_stores! {
    async fn hourly_buckets_of_berlins_25_hour_day_are_25_with_nulls_filled(app) {
        let admin = token("acme", &["admin"]);
        let d = create_device(&app, &admin, json!({"name": "Boiler 1"})).await;
        // The first 02:30 (+02:00) and the second (+01:00) fall in different buckets.
        ingest(&app, &admin, &[
            (&d, "2025-10-26T02:30:00+02:00", 1.0),
            (&d, "2025-10-26T02:45:00+02:00", 3.0),
            (&d, "2025-10-26T02:30:00+01:00", 10.0),
            (&d, "2025-10-25T23:00:00+02:00", 99.0),
        ]).await;

        let path = format!(
            "/api/devices/{d}/readings?interval=1h&timezone=Europe/Berlin&fill=null\
             &agg=avg,min,max,count,first,last,sum&start_time={}&end_time={}",
            enc("2025-10-26T00:00:00+02:00"), enc("2025-10-27T00:00:00+01:00"));
        let (status, answer) = app.get(&path, &admin).await;

        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["device_id"], json!(d));
        assert_eq!(answer["interval"], "1h");
        assert_eq!(answer["timezone"], "Europe/Berlin");
        assert_eq!(answer["series"].as_array().map(Vec::len), Some(1));
        assert_eq!(answer["series"][0]["device_name"], "Boiler 1");
        let all = buckets(&answer, 0);
        assert_eq!(all.len(), 25);
        assert_eq!(all[0]["start"], "2025-10-26T00:00:00+02:00");
        assert_eq!(all[24]["end"], "2025-10-27T00:00:00+01:00");
        assert_eq!(all[2], json!({
            "start": "2025-10-26T02:00:00+02:00", "end": "2025-10-26T02:00:00+01:00",
            "avg": 2.0, "min": 1.0, "max": 3.0, "first": 1.0, "last": 3.0, "sum": 4.0, "count": 2,
        }));
        assert_eq!(all[3]["start"], "2025-10-26T02:00:00+01:00");
        assert_eq!((&all[3]["avg"], &all[3]["count"]), (&json!(10.0), &json!(1)));
        assert_eq!(all[0], json!({
            "start": "2025-10-26T00:00:00+02:00", "end": "2025-10-26T01:00:00+02:00",
            "avg": null, "min": null, "max": null, "first": null, "last": null, "sum": null,
            "count": 0,
        }));
    }
}

on_both_stores! {
    async fn six_hour_buckets_start_at_the_same_clock_times_on_a_dst_day(app) {
        let admin = token("acme", &["admin"]);
        let d = create_device(&app, &admin, json!({"name": "Boiler 6"})).await;
        ingest(&app, &admin, &[
            (&d, "2025-10-26T02:30:00+02:00", 1.0),
            (&d, "2025-10-26T05:30:00+01:00", 3.0),
            (&d, "2025-10-26T06:00:00+01:00", 7.0),
        ]).await;

        let path = format!(
            "/api/devices/{d}/readings?interval=6h&timezone=Europe/Berlin&agg=sum\
             &start_time={}&end_time={}",
            enc("2025-10-26T00:00:00+02:00"), enc("2025-10-27T00:00:00+01:00"));
        let (status, answer) = app.get(&path, &admin).await;

        assert_eq!(status, StatusCode::OK, "{answer}");
        let all = buckets(&answer, 0);
        // 00-06 local holds the repeated hour: 7 hours, both readings; 06 starts the next.
        assert_eq!(all[0], json!({
            "start": "2025-10-26T00:00:00+02:00", "end": "2025-10-26T06:00:00+01:00",
            "sum": 4.0, "count": 2,
        }));
        assert_eq!(all[1]["start"], "2025-10-26T06:00:00+01:00");
        assert_eq!(all[1]["end"], "2025-10-26T12:00:00+01:00");
        assert_eq!(all.len(), 2);
    }
}

on_both_stores! {
    async fn days_and_months_follow_new_york_kolkata_and_adelaide(app) {
        let admin = token("acme", &["admin"]);
        let d = create_device(&app, &admin, json!({"name": "Meter"})).await;
        ingest(&app, &admin, &[
            (&d, "2025-03-08T12:00:00-05:00", 1.0),
            (&d, "2025-03-09T23:30:00-04:00", 2.0),
            (&d, "2025-03-09T00:10:00-05:00", 4.0),
            (&d, "2025-01-31T23:59:00+05:30", 5.0),
            (&d, "2025-02-01T00:00:00+05:30", 6.0),
        ]).await;

        // New York: 2025-03-09 lasts 23 hours; default fill leaves empty days out.
        let path = format!(
            "/api/devices/{d}/readings?interval=1d&timezone=America/New_York&agg=sum,count\
             &start_time=2025-03-08T00:00:00Z&end_time=2025-03-11T00:00:00Z");
        let (status, answer) = app.get(&path, &admin).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(buckets(&answer, 0), &vec![
            json!({"start": "2025-03-08T00:00:00-05:00", "end": "2025-03-09T00:00:00-05:00", "sum": 1.0, "count": 1}),
            json!({"start": "2025-03-09T00:00:00-05:00", "end": "2025-03-10T00:00:00-04:00", "sum": 6.0, "count": 2}),
        ]);

        // Kolkata (+05:30): months turn at 18:30 UTC.
        let path = format!(
            "/api/devices/{d}/readings?interval=1mo&timezone=Asia/Kolkata&agg=last\
             &start_time=2025-01-15T00:00:00Z&end_time=2025-02-15T00:00:00Z");
        let (status, answer) = app.get(&path, &admin).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(buckets(&answer, 0), &vec![
            json!({"start": "2025-01-01T00:00:00+05:30", "end": "2025-02-01T00:00:00+05:30", "last": 5.0, "count": 1}),
            json!({"start": "2025-02-01T00:00:00+05:30", "end": "2025-03-01T00:00:00+05:30", "last": 6.0, "count": 1}),
        ]);

        // Adelaide (+10:30 to +09:30 on 2025-04-06): the month's end carries the new offset;
        // the range ends 09:30 local on May 1st, so May's bucket is there too; fill=previous
        // carries the reading before the range into empty buckets.
        let path = format!(
            "/api/devices/{d}/readings?interval=1mo&timezone=Australia/Adelaide&fill=previous\
             &agg=avg,sum&start_time=2025-04-01T00:00:00Z&end_time=2025-05-01T00:00:00Z");
        let (status, answer) = app.get(&path, &admin).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(buckets(&answer, 0), &vec![
            json!({"start": "2025-04-01T00:00:00+10:30", "end": "2025-05-01T00:00:00+09:30", "avg": 2.0, "sum": null, "count": 0}),
            json!({"start": "2025-05-01T00:00:00+09:30", "end": "2025-06-01T00:00:00+09:30", "avg": 2.0, "sum": null, "count": 0}),
        ]);
    }
}

on_both_stores! {
    async fn a_groups_series_are_its_members_with_readings_narrowed_by_top_and_device_ids(app) {
        let admin = token("acme", &["admin"]);
        let a = create_device(&app, &admin, json!({"name": "a"})).await;
        let b = create_device(&app, &admin, json!({"name": "b"})).await;
        let c = create_device(&app, &admin, json!({"name": "c"})).await;
        let outsider = create_device(&app, &admin, json!({"name": "z"})).await;
        let (status, group) = app.post("/api/groups", &admin,
            json!({"name": "Floor / 1", "device_ids": [a, b, c]})).await;
        assert_eq!(status, StatusCode::CREATED, "{group}");
        let g = group["id"].as_str().expect("id").to_owned();
        ingest(&app, &admin, &[
            (&b, "2025-06-01T10:05:00Z", 1.0),
            (&b, "2025-06-01T10:15:00Z", 3.0),
            (&c, "2025-06-01T10:20:00Z", 5.0),
            (&outsider, "2025-06-01T10:20:00Z", 7.0),
        ]).await;
        let base = format!(
            "/api/groups/{g}/readings?interval=15m&start_time=2025-06-01T10:00:00Z\
             &end_time=2025-06-01T11:00:00Z");

        let (status, answer) = app.get(&base, &admin).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["group_id"], json!(g));
        assert_eq!(answer["timezone"], "UTC");
        let series = answer["series"].as_array().expect("series");
        assert_eq!(series.iter().map(|s| s["device_id"].clone()).collect::<Vec<_>>(), vec![json!(b), json!(c)]);
        assert_eq!(buckets(&answer, 0), &vec![
            json!({"start": "2025-06-01T10:00:00Z", "end": "2025-06-01T10:15:00Z", "avg": 1.0, "count": 1}),
            json!({"start": "2025-06-01T10:15:00Z", "end": "2025-06-01T10:30:00Z", "avg": 3.0, "count": 1}),
        ]);

        let (status, top) = app.get(&format!("{base}&top=1"), &admin).await;
        assert_eq!(status, StatusCode::OK, "{top}");
        assert_eq!(top["series"].as_array().map(Vec::len), Some(1));
        assert_eq!(top["series"][0]["device_id"], json!(b));

        let (status, listed) = app.get(&format!("{base}&device_ids={c},{a}"), &admin).await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        assert_eq!(listed["series"].as_array().map(Vec::len), Some(1));
        assert_eq!(listed["series"][0]["device_id"], json!(c));

        let (status, refused) = app.get(&format!("{base}&device_ids={a},{outsider}"), &admin).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert!(detail(&refused).starts_with("device_ids: "), "{refused}");
        assert!(detail(&refused).contains(&outsider), "{refused}");

        // CSV: one row per bucket, named after the group.
        let (status, disposition, body) =
            csv(&app, &format!("{base}&agg=min,max&fill=null"), &admin).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(disposition, "attachment; filename=\"Floor__1-readings.csv\"");
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines[0], "device_id,device_name,unit,start,end,min,max,count");
        assert_eq!(lines.len(), 1 + 2 * 4, "{body}");
        assert_eq!(lines[1], format!("{b},b,,2025-06-01T10:00:00Z,2025-06-01T10:15:00Z,1,1,1"));
        assert_eq!(lines[4], format!("{b},b,,2025-06-01T10:45:00Z,2025-06-01T11:00:00Z,,,0"));

        let (status, disposition, body) = csv(
            &app,
            &format!("/api/devices/{b}/readings?interval=1h&start_time=2025-06-01T10:00:00Z&end_time=2025-06-01T11:00:00Z"),
            &admin,
        ).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(disposition, "attachment; filename=\"b-readings.csv\"");
        assert_eq!(body.lines().nth(1), Some(format!("{b},b,,2025-06-01T10:00:00Z,2025-06-01T11:00:00Z,2,2").as_str()));
    }
}

on_both_stores! {
    async fn bad_bucket_parameters_are_422_naming_them(app) {
        let admin = token("acme", &["admin"]);
        let d = create_device(&app, &admin, json!({"name": "d"})).await;
        let (status, group) = app.post("/api/groups", &admin, json!({"name": "G", "device_ids": [d]})).await;
        assert_eq!(status, StatusCode::CREATED);
        let g = group["id"].as_str().expect("id").to_owned();
        let dev = format!("/api/devices/{d}/readings?");
        let grp = format!("/api/groups/{g}/readings?");
        for (path, field) in [
            (format!("{dev}interval=7m"), "interval"),
            (format!("{dev}interval=420"), "interval"),
            (format!("{dev}interval=90000"), "interval"),
            (format!("{dev}interval=1y"), "interval"),
            (format!("{dev}interval=59"), "interval"),
            (format!("{dev}interval=1m&hours=200"), "interval"),
            (format!("{dev}interval=1h&agg=avg,median"), "agg"),
            (format!("{dev}interval=1h&timezone=Mars/Olympus"), "timezone"),
            (format!("{dev}interval=1h&fill=linear"), "fill"),
            (format!("{dev}agg=avg"), "agg"),
            (format!("{dev}interval=1h&top=3"), "top"),
            (format!("{grp}interval=1h&top=0"), "top"),
            (format!("{grp}interval=1h&top=1001"), "top"),
            (format!("{grp}interval=1h&device_ids=nope"), "device_ids"),
            (format!("{grp}top=2"), "top"),
            (format!("{dev}interval=1h&offset=10"), "offset"),
            (format!("{grp}interval=1m&hours=24"), "interval"),
            (format!("{grp}interval=1h&cursor=abc"), "cursor"),
            (format!("{grp}interval=1mo&start_time=1000-01-01T00:00:00Z"), "interval"),
        ] {
            let (status, answer) = app.get(&path, &admin).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path} -> {answer}");
            assert!(detail(&answer).starts_with(&format!("{field}: ")), "{path} -> {answer}");
        }
        // Fewer series make room for more buckets: 300 × 1,440 is within the answer's bound.
        let (status, narrowed) = app.get(&format!("{grp}interval=1m&hours=24&top=300"), &admin).await;
        assert_eq!(status, StatusCode::OK, "{narrowed}");
        // Without interval the raw answer stays as it was.
        let (status, raw) = app.get(&format!("{dev}hours=1"), &admin).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(raw, json!({"device_id": d, "readings": [], "total": 0, "has_more": false, "next_cursor": null}));
        let (status, missing) = app.get(&format!("/api/groups/{}/readings?interval=1h", uuid_nil()), &admin).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    }
}

fn uuid_nil() -> &'static str {
    "00000000-0000-0000-0000-000000000000"
}
