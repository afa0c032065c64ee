//! Readings: a device's readings, recording one, bulk ingest, time ranges and CSV.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use domain::{DeviceName, ReadingPoint, ReadingQuery, Unit};
use ports::{GroupReading, IngestError, LookupError};
use serde_json::{json, Value};
use time::macros::datetime;

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Device readings: read and record

#[actix_web::test]
async fn reading_a_devices_readings_looks_back_24_hours_for_at_most_1000_by_default() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .readings
        .expect_device_readings()
        .withf(|tenant, device, query: &ReadingQuery| {
            is_tenant_a(tenant)
                && *device == uuid(DEVICE_A)
                // One more than the page: whether it comes back tells `has_more`.
                && query.limit() == 1001
                && is_hours_ago(query.since(), 24)
        })
        .times(1)
        .returning(|_, _, _| {
            Ok(vec![
                ReadingPoint {
                    timestamp: at(datetime!(2025-10-20 11:00 UTC)),
                    value: 21.5,
                },
                ReadingPoint {
                    timestamp: at(datetime!(2025-10-20 10:00 UTC)),
                    value: 20.0,
                },
            ])
        });

    // Act
    let answer = call(mocks, get(&format!("{DEVICES}/{DEVICE_A}/readings"))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({
            "device_id": DEVICE_A,
            "total": 2,
            "readings": [
                {"timestamp": "2025-10-20T11:00:00Z", "value": 21.5},
                {"timestamp": "2025-10-20T10:00:00Z", "value": 20.0},
            ],
            "has_more": false,
            "next_cursor": null,
        })
    );
}

#[actix_web::test]
async fn reading_a_devices_readings_passes_hours_and_limit() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .readings
        .expect_device_readings()
        .withf(|_, _, query: &ReadingQuery| query.limit() == 6 && is_hours_ago(query.since(), 2))
        .times(1)
        .returning(|_, _, _| Ok(vec![]));

    // Act
    let answer = call(
        mocks,
        get(&format!("{DEVICES}/{DEVICE_A}/readings?hours=2&limit=5")),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["total"], 0);
}

#[actix_web::test]
async fn the_largest_hours_and_limit_are_accepted() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .readings
        .expect_device_readings()
        .withf(|_, _, query: &ReadingQuery| {
            query.limit() == 10_001 && is_hours_ago(query.since(), 8760)
        })
        .times(1)
        .returning(|_, _, _| Ok(vec![]));
    mocks
        .groups
        .expect_group_readings()
        .withf(|_, key, query: &ReadingQuery| {
            is_id(key, GROUP_ID) && query.limit() == 2 && is_hours_ago(query.since(), 1)
        })
        .times(1)
        .returning(|_, _, _| Ok(vec![]));

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&format!(
                "{DEVICES}/{DEVICE_A}/readings?hours=8760&limit=10000"
            )),
            get(&format!("{API_GROUPS}/{GROUP_ID}/readings?hours=1&limit=1")),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
}

#[actix_web::test]
async fn hours_or_limit_out_of_range_or_not_integers_are_refused_with_422_naming_the_parameter() {
    // Arrange: no port may be called.
    let mocks = Mocks::untouchable();
    let cases = [
        ("hours=0", "hours"),
        ("hours=8761", "hours"),
        ("hours=-1", "hours"),
        ("hours=abc", "hours"),
        ("hours=1.5", "hours"),
        ("limit=0", "limit"),
        ("limit=10001", "limit"),
        ("limit=abc", "limit"),
    ];
    let mut expected = Vec::new();
    let mut requests = Vec::new();
    for (query, field) in cases {
        for base in [
            format!("{DEVICES}/{DEVICE_A}/readings"),
            format!("{API_GROUPS}/{GROUP_ID}/readings"),
        ] {
            let uri = format!("{base}?{query}");
            requests.push(get(&uri));
            expected.push((uri, field));
        }
    }

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for ((uri, field), answer) in expected.iter().zip(&answers) {
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{uri}: {}",
            answer.text()
        );
        assert!(
            answer.detail().starts_with(&format!("{field}: ")),
            "{uri}: {}",
            answer.detail()
        );
    }
}

#[actix_web::test]
async fn recording_a_reading_answers_201_with_the_reading_normalised_to_utc() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .readings
        .expect_ingest()
        .withf(|tenant, batch| {
            is_tenant_a(tenant)
                && batch.readings() == [reading(DEVICE_A, datetime!(2025-10-20 10:00 UTC), 21.5)]
        })
        .times(1)
        .returning(|_, _| Ok(1));

    // Act
    let answer = call(
        mocks,
        post(
            &format!("{DEVICES}/{DEVICE_A}/readings"),
            &json!({"value": 21.5, "timestamp": "2025-10-20T12:00:00+02:00"}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({"device_id": DEVICE_A, "timestamp": "2025-10-20T10:00:00Z", "value": 21.5})
    );
}

#[actix_web::test]
async fn recording_a_reading_without_a_timestamp_stamps_it_now() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .readings
        .expect_ingest()
        .withf(|_, batch| {
            let readings = batch.readings();
            readings.len() == 1
                && readings[0].device_id == uuid(DEVICE_A)
                && readings[0].value.get() == 3.0
                && is_hours_ago(readings[0].timestamp, 0)
        })
        .times(1)
        .returning(|_, _| Ok(1));

    // Act
    let answer = call(
        mocks,
        post(
            &format!("{DEVICES}/{DEVICE_A}/readings"),
            &json!({"value": 3}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["value"], 3.0);
    assert!(body["timestamp"].is_string());
}

#[actix_web::test]
async fn recording_a_reading_with_a_bad_timestamp_or_no_value_is_refused_with_422() {
    // Arrange
    let mocks = Mocks::untouchable();
    let uri = format!("{DEVICES}/{DEVICE_A}/readings");

    // Act
    let answers = call_all(
        mocks,
        vec![
            post(&uri, &json!({"value": 1.0, "timestamp": "yesterday"})),
            post(&uri, &json!({"timestamp": "2025-10-20T10:00:00Z"})),
            post(&uri, &json!({"value": "hot"})),
        ],
    )
    .await;

    // Assert
    assert!(
        answers[0].detail().starts_with("timestamp:"),
        "{}",
        answers[0].detail()
    );
    assert!(
        answers[1].detail().contains("value"),
        "{}",
        answers[1].detail()
    );
    assert!(
        answers[2].detail().starts_with("value:"),
        "{}",
        answers[2].detail()
    );
    for answer in answers {
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

// ---------------------------------------------------------------------------------------------
// Readings: bulk ingest

/// `count` readings of device A, one second apart, so none repeats another.
fn many_readings(count: usize) -> Value {
    let start = datetime!(2025-10-20 00:00 UTC);
    let readings: Vec<Value> = (0..count)
        .map(|i| {
            let t = start + time::Duration::seconds(i64::try_from(i).expect("small"));
            let t = t
                .format(&time::format_description::well_known::Rfc3339)
                .expect("formats");
            reading_json(DEVICE_A, &t, 1.0)
        })
        .collect();
    json!({ "readings": readings })
}

#[actix_web::test]
async fn ingesting_readings_answers_201_with_the_number_accepted() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .readings
        .expect_ingest()
        .withf(|tenant, batch| {
            is_tenant_a(tenant)
                && batch.readings()
                    == [
                        reading(DEVICE_A, datetime!(2025-10-20 10:00 UTC), 20.5),
                        reading(DEVICE_B, datetime!(2025-10-20 10:00 UTC), -3.0),
                        reading(DEVICE_A, datetime!(2025-10-20 11:00 UTC), 21.0),
                    ]
        })
        .times(1)
        .returning(|_, _| Ok(3));

    // Act
    let answer = call(
        mocks,
        post(
            READINGS,
            &json!({"readings": [
                reading_json(DEVICE_A, "2025-10-20T10:00:00Z", 20.5),
                reading_json(DEVICE_B, "2025-10-20T12:00:00+02:00", -3.0),
                reading_json(DEVICE_A, "2025-10-20T11:00:00", 21.0),
            ]}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(answer.json(), json!({"accepted": 3}));
}

#[actix_web::test]
async fn a_bad_timestamp_in_the_third_reading_is_refused_with_422_naming_it() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        post(
            READINGS,
            &json!({"readings": [
                reading_json(DEVICE_A, "2025-10-20T10:00:00Z", 1.0),
                reading_json(DEVICE_A, "2025-10-20T11:00:00Z", 2.0),
                reading_json(DEVICE_A, "2025-13-40T11:00:00Z", 3.0),
            ]}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("readings[2].timestamp"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_device_id_that_is_no_uuid_is_refused_with_422_naming_its_reading() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        post(
            READINGS,
            &json!({"readings": [
                reading_json(DEVICE_A, "2025-10-20T10:00:00Z", 1.0),
                reading_json("sensor-7", "2025-10-20T10:00:00Z", 2.0),
            ]}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("readings[1].device_id"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_reading_with_a_missing_value_is_refused_with_422_naming_its_path() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        post(
            READINGS,
            &json!({"readings": [
                reading_json(DEVICE_A, "2025-10-20T10:00:00Z", 1.0),
                {"device_id": DEVICE_A, "timestamp": "2025-10-20T11:00:00Z", "value": "x"},
            ]}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("readings[1].value"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn more_than_10000_readings_are_refused_with_422_before_the_repository() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(mocks, post(READINGS, &many_readings(10_001))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("readings:"),
        "{}",
        answer.detail()
    );
    assert!(answer.detail().contains("10000"), "{}", answer.detail());
}

#[actix_web::test]
async fn exactly_10000_readings_are_accepted() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .readings
        .expect_ingest()
        .withf(|_, batch| batch.readings().len() == 10_000)
        .times(1)
        .returning(|_, batch| Ok(batch.readings().len() as u64));

    // Act
    let answer = call(mocks, post(READINGS, &many_readings(10_000))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(answer.json(), json!({"accepted": 10_000}));
}

#[actix_web::test]
async fn an_empty_list_of_readings_is_refused_with_422() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answers = call_all(
        mocks,
        vec![
            post(READINGS, &json!({"readings": []})),
            post(READINGS, &json!({})),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(answer.detail().contains("readings"), "{}", answer.detail());
    }
}

#[actix_web::test]
async fn an_unknown_device_refuses_the_batch_with_422_naming_its_first_reading() {
    // Arrange: the store reports device B, first sent in the second reading.
    let mut mocks = Mocks::new();
    mocks
        .readings
        .expect_ingest()
        .times(1)
        .returning(|_, _| Err(IngestError::UnknownDevice(uuid(DEVICE_B))));

    // Act
    let answer = call(
        mocks,
        post(
            READINGS,
            &json!({"readings": [
                reading_json(DEVICE_A, "2025-10-20T10:00:00Z", 1.0),
                reading_json(DEVICE_B, "2025-10-20T10:00:00Z", 2.0),
                reading_json(DEVICE_B, "2025-10-20T11:00:00Z", 3.0),
            ]}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("readings[1].device_id"),
        "{}",
        answer.detail()
    );
    assert!(answer.detail().contains(DEVICE_B), "{}", answer.detail());
}

#[actix_web::test]
async fn an_unknown_device_is_named_at_its_first_reading_however_its_uuid_is_spelled() {
    // Arrange: the client wrote device C in upper case; the store names it canonically.
    let mut mocks = Mocks::new();
    mocks
        .readings
        .expect_ingest()
        .times(1)
        .returning(|_, _| Err(IngestError::UnknownDevice(uuid(DEVICE_C))));

    // Act
    let answer = call(
        mocks,
        post(
            READINGS,
            &json!({"readings": [
                reading_json(DEVICE_A, "2025-10-20T10:00:00Z", 1.0),
                reading_json(DEVICE_A, "2025-10-20T11:00:00Z", 1.0),
                reading_json(&DEVICE_C.to_uppercase(), "2025-10-20T10:00:00Z", 2.0),
            ]}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("readings[2].device_id"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_bulk_body_may_exceed_one_mib_but_not_four() {
    // Arrange: one valid reading, padded with whitespace to 2 MiB and to just over 4 MiB.
    let mut mocks = Mocks::new();
    mocks
        .readings
        .expect_ingest()
        .times(1)
        .returning(|_, _| Ok(1));
    let padded = |size: usize| {
        let body =
            json!({"readings": [reading_json(DEVICE_A, "2025-10-20T10:00:00Z", 1.0)]}).to_string();
        format!("{body}{}", " ".repeat(size - body.len()))
    };

    // Act
    let answers = call_all(
        mocks,
        vec![
            post_raw(READINGS, padded(2 * 1024 * 1024)),
            post_raw(READINGS, padded(4 * 1024 * 1024 + 1)),
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
    assert_eq!(answers[1].status, StatusCode::PAYLOAD_TOO_LARGE);
}

// ---------------------------------------------------------------------------------------------
// Readings: a repeated reading counts once

#[actix_web::test]
async fn the_accepted_count_is_what_the_repository_stored_when_a_reading_is_repeated() {
    // Arrange: two readings of the same device and instant are one reading; the store says 1.
    let mut mocks = Mocks::new();
    mocks
        .readings
        .expect_ingest()
        .withf(|_, batch| batch.readings().len() == 1)
        .times(1)
        .returning(|_, batch| Ok(batch.readings().len() as u64));

    // Act
    let answer = call(
        mocks,
        post(
            READINGS,
            &json!({"readings": [
                reading_json(DEVICE_A, "2025-10-20T10:00:00Z", 1.0),
                reading_json(DEVICE_A, "2025-10-20T10:00:00Z", 2.0),
            ]}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    assert_eq!(answer.json(), json!({"accepted": 1}));
}

// ---------------------------------------------------------------------------------------------
// Readings: time ranges and CSV

/// Whether `query` covers exactly `[since, until)` and asks for a page of `limit` readings (the
/// store is asked one more, which tells whether more follow).
fn is_range(
    query: &ReadingQuery,
    since: time::OffsetDateTime,
    until: Option<time::OffsetDateTime>,
    limit: u32,
) -> bool {
    query.since() == at(since) && query.until() == until.map(at) && query.limit() == limit + 1
}

#[actix_web::test]
async fn start_and_end_time_reach_the_repositories_as_the_query_range() {
    // Arrange: one expectation per request; an offset is taken to UTC.
    let mut mocks = Mocks::new();
    mocks
        .readings
        .expect_device_readings()
        .withf(|tenant, device, query| {
            is_tenant_a(tenant)
                && *device == uuid(DEVICE_A)
                && is_range(
                    query,
                    datetime!(2025-10-20 00:00 UTC),
                    Some(datetime!(2025-10-20 06:00 UTC)),
                    1000,
                )
        })
        .times(1)
        .returning(|_, _, _| Ok(vec![]));
    mocks
        .readings
        .expect_device_readings()
        .withf(|_, _, query| is_range(query, datetime!(2025-10-19 00:00 UTC), None, 1000))
        .times(1)
        .returning(|_, _, _| Ok(vec![]));
    mocks
        .groups
        .expect_group_readings()
        .withf(|tenant, key, query| {
            is_tenant_a(tenant)
                && is_id(key, GROUP_ID)
                && is_range(
                    query,
                    datetime!(2025-10-20 00:00 UTC),
                    Some(datetime!(2025-10-20 06:30 UTC)),
                    10,
                )
        })
        .times(1)
        .returning(|_, _, _| Ok(vec![]));
    let device = format!("{DEVICES}/{DEVICE_A}/readings");
    let group = format!("{API_GROUPS}/{GROUP_ID}/readings");

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&format!(
                "{device}?start_time=2025-10-20T00:00:00Z&end_time=2025-10-20T06:00:00Z"
            )),
            get(&format!("{device}?start_time=2025-10-19T00:00:00Z")),
            get(&format!(
                "{group}?start_time=2025-10-20T02:00:00%2B02:00&end_time=2025-10-20T06:30:00Z&limit=10"
            )),
        ],
    )
    .await;

    // Assert
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(answer.json()["total"], 0);
    }
}

#[actix_web::test]
async fn only_an_end_time_looks_back_24_hours_from_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .readings
        .expect_device_readings()
        .withf(|_, _, query| {
            is_range(
                query,
                datetime!(2025-10-19 06:00 UTC),
                Some(datetime!(2025-10-20 06:00 UTC)),
                1000,
            )
        })
        .times(1)
        .returning(|_, _, _| Ok(vec![]));
    mocks
        .groups
        .expect_group_readings()
        .withf(|_, _, query| {
            is_range(
                query,
                datetime!(2025-10-19 06:00 UTC),
                Some(datetime!(2025-10-20 06:00 UTC)),
                1000,
            )
        })
        .times(1)
        .returning(|_, _, _| Ok(vec![]));

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&format!(
                "{DEVICES}/{DEVICE_A}/readings?end_time=2025-10-20T06:00:00Z"
            )),
            get(&format!(
                "{API_GROUPS}/{GROUP_ID}/readings?end_time=2025-10-20T06:00:00Z"
            )),
        ],
    )
    .await;

    // Assert
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
}

#[actix_web::test]
async fn a_bad_or_empty_time_range_is_refused_with_422_naming_the_parameter_before_the_repository()
{
    // Arrange: no port may be called.
    let mocks = Mocks::untouchable();
    let cases = [
        ("hours=6&start_time=2025-10-20T00:00:00Z", "hours"),
        ("hours=6&end_time=2025-10-20T00:00:00Z", "hours"),
        (
            "start_time=2025-10-20T06:00:00Z&end_time=2025-10-20T06:00:00Z",
            "end_time",
        ),
        (
            "start_time=2025-10-20T06:00:00Z&end_time=2025-10-20T05:59:59Z",
            "end_time",
        ),
        ("start_time=yesterday", "start_time"),
        ("start_time=2025-13-01T00:00:00Z", "start_time"),
        ("start_time=", "start_time"),
        ("start_time=bad&end_time=2025-10-20T06:00:00Z", "start_time"),
        ("start_time=2025-10-20T06:00:00Z&end_time=soon", "end_time"),
    ];
    let mut expected = Vec::new();
    let mut requests = Vec::new();
    for (query, field) in cases {
        for base in [
            format!("{DEVICES}/{DEVICE_A}/readings"),
            format!("{API_GROUPS}/{GROUP_ID}/readings"),
        ] {
            let uri = format!("{base}?{query}");
            requests.push(get(&uri));
            expected.push((uri, field));
        }
    }

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for ((uri, field), answer) in expected.iter().zip(&answers) {
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{uri}: {}",
            answer.text()
        );
        assert!(
            answer.detail().starts_with(&format!("{field}: ")),
            "{uri}: {}",
            answer.detail()
        );
    }
}

/// `request` asking for CSV.
fn as_csv(request: TestRequest) -> TestRequest {
    request.insert_header((header::ACCEPT, "text/csv"))
}

#[actix_web::test]
async fn a_devices_readings_as_csv_are_one_crlf_row_per_reading_under_a_header_row() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .readings
        .expect_device_readings()
        .withf(|tenant, device, _| is_tenant_a(tenant) && *device == uuid(DEVICE_A))
        .times(3)
        .returning(|_, _, _| {
            Ok(vec![
                ReadingPoint {
                    timestamp: at(datetime!(2025-10-20 11:00 UTC)),
                    value: 21.5,
                },
                ReadingPoint {
                    timestamp: at(datetime!(2025-10-20 10:00 UTC)),
                    value: -3.25,
                },
            ])
        });
    // CSV rows carry the device's name and unit, and the file is named after it.
    mocks
        .devices
        .expect_get_device()
        .withf(|tenant, id| is_tenant_a(tenant) && *id == uuid(DEVICE_A))
        .times(1)
        .returning(|_, id| Ok(device(id, "Hall \"east\"/2", office_thresholds())));
    let uri = format!("{DEVICES}/{DEVICE_A}/readings");

    // Act
    let answers = call_all(
        mocks,
        vec![
            as_csv(get(&uri)),
            get(&uri),
            get(&uri).insert_header((header::ACCEPT, "application/json")),
        ],
    )
    .await;

    // Assert: CSV on request; otherwise the JSON answer as before.
    assert_eq!(answers[0].status, StatusCode::OK, "{}", answers[0].text());
    assert_eq!(
        answers[0].header(header::CONTENT_TYPE),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        answers[0].text(),
        format!(
            "device_id,device_name,timestamp,value,unit\r\n\
             {DEVICE_A},\"Hall \"\"east\"\"/2\",2025-10-20T11:00:00Z,21.5,°C\r\n\
             {DEVICE_A},\"Hall \"\"east\"\"/2\",2025-10-20T10:00:00Z,-3.25,°C\r\n"
        )
    );
    assert_eq!(
        answers[0].header(header::CONTENT_DISPOSITION),
        Some("attachment; filename=\"Hall_east2-readings.csv\"")
    );
    let json_answer = json!({
        "device_id": DEVICE_A,
        "total": 2,
        "readings": [
            {"timestamp": "2025-10-20T11:00:00Z", "value": 21.5},
            {"timestamp": "2025-10-20T10:00:00Z", "value": -3.25},
        ],
        "has_more": false,
        "next_cursor": null,
    });
    for answer in &answers[1..] {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(
            answer.header(header::CONTENT_TYPE),
            Some("application/json")
        );
        assert_eq!(answer.json(), json_answer);
    }
}

#[actix_web::test]
async fn a_groups_readings_as_csv_quote_a_device_name_holding_a_comma_and_a_quote() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_group_readings()
        .withf(|tenant, key, _| is_tenant_a(tenant) && is_id(key, GROUP_ID))
        .times(2)
        .returning(|_, _, _| {
            Ok(vec![
                GroupReading {
                    device_id: uuid(DEVICE_B),
                    device_name: DeviceName::parse("Lobby").expect("valid"),
                    unit: Unit::parse("kPa").expect("valid"),
                    timestamp: at(datetime!(2025-10-20 11:00 UTC)),
                    value: 101.3,
                },
                GroupReading {
                    device_id: uuid(DEVICE_A),
                    device_name: DeviceName::parse("Sensor, \"north\"").expect("valid"),
                    unit: Unit::parse("°C").expect("valid"),
                    timestamp: at(datetime!(2025-10-20 10:00 UTC)),
                    value: 20.5,
                },
            ])
        });
    mocks
        .groups
        .expect_get_group_row()
        .withf(|tenant, key| is_tenant_a(tenant) && is_id(key, GROUP_ID))
        .times(1)
        .returning(|_, _| Ok(stored_group("grp-lobby", "Lobby / West")));
    let uri = format!("{API_GROUPS}/{GROUP_ID}/readings");

    // Act
    let answers = call_all(mocks, vec![as_csv(get(&uri)), get(&uri)]).await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::OK, "{}", answers[0].text());
    assert_eq!(
        answers[0].header(header::CONTENT_TYPE),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        answers[0].text(),
        format!(
            "device_id,device_name,timestamp,value,unit\r\n\
             {DEVICE_B},Lobby,2025-10-20T11:00:00Z,101.3,kPa\r\n\
             {DEVICE_A},\"Sensor, \"\"north\"\"\",2025-10-20T10:00:00Z,20.5,°C\r\n"
        )
    );
    assert_eq!(
        answers[0].header(header::CONTENT_DISPOSITION),
        Some("attachment; filename=\"Lobby__West-readings.csv\"")
    );
    assert_eq!(answers[1].status, StatusCode::OK, "{}", answers[1].text());
    assert_eq!(
        answers[1].json(),
        json!({
            "group_id": GROUP_ID,
            "total": 2,
            "readings": [
                {"device_id": DEVICE_B, "device_name": "Lobby", "timestamp": "2025-10-20T11:00:00Z", "value": 101.3, "unit": "kPa"},
                {"device_id": DEVICE_A, "device_name": "Sensor, \"north\"", "timestamp": "2025-10-20T10:00:00Z", "value": 20.5, "unit": "°C"},
            ],
            "has_more": false,
            "next_cursor": null,
        })
    );
}

#[actix_web::test]
async fn no_readings_as_csv_are_the_header_row_alone_and_errors_stay_json() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .readings
        .expect_device_readings()
        .withf(|_, device, _| *device == uuid(DEVICE_A))
        .times(1)
        .returning(|_, _, _| Ok(vec![]));
    mocks
        .devices
        .expect_get_device()
        .withf(|_, id| *id == uuid(DEVICE_A))
        .times(1)
        .returning(|_, id| Ok(device(id, "Hall", office_thresholds())));
    mocks
        .devices
        .expect_get_device()
        .withf(|_, id| *id == uuid(DEVICE_B))
        .times(1)
        .returning(|_, _| Err(LookupError::NotFound));
    mocks
        .groups
        .expect_get_group_row()
        .times(1)
        .returning(|_, _| Ok(stored_group("grp-lobby", "Lobby")));
    mocks
        .groups
        .expect_group_readings()
        .times(1)
        .returning(|_, _, _| Ok(vec![]));

    // Act
    let answers = call_all(
        mocks,
        vec![
            as_csv(get(&format!("{DEVICES}/{DEVICE_A}/readings"))),
            as_csv(get(&format!("{API_GROUPS}/{GROUP_ID}/readings"))),
            as_csv(get(&format!("{DEVICES}/{DEVICE_B}/readings"))),
            as_csv(get(&format!("{DEVICES}/{DEVICE_A}/readings?hours=0"))),
        ],
    )
    .await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::OK);
    assert_eq!(
        answers[0].text(),
        "device_id,device_name,timestamp,value,unit\r\n"
    );
    assert_eq!(answers[1].status, StatusCode::OK);
    assert_eq!(
        answers[1].text(),
        "device_id,device_name,timestamp,value,unit\r\n"
    );
    assert_eq!(answers[2].status, StatusCode::NOT_FOUND);
    assert_eq!(answers[2].detail(), format!("Device {DEVICE_B} not found"));
    assert_eq!(answers[3].status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answers[3].detail().starts_with("hours: "),
        "{}",
        answers[3].detail()
    );
}

#[actix_web::test]
async fn a_range_delete_reaches_the_store_as_asked_and_answers_the_count() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .readings
        .expect_delete_device_readings()
        .withf(|tenant, device, start, end| {
            is_tenant_a(tenant)
                && *device == uuid(DEVICE_A)
                && *start == at(datetime!(2025-10-20 0:00 UTC))
                && *end == at(datetime!(2025-10-20 6:00 UTC))
        })
        .times(1)
        .returning(|_, _, _, _| Ok(3));
    let path = format!("{DEVICES}/{DEVICE_A}/readings");
    let range = "start_time=2025-10-20T02:00:00%2B02:00&end_time=2025-10-20T06:00:00Z";

    // Act
    let answers = call_all(
        mocks,
        vec![
            as_roles(
                &["admin"],
                TestRequest::delete().uri(&format!("{path}?{range}")),
            ),
            as_roles(
                &["viewer"],
                TestRequest::delete().uri(&format!("{path}?{range}")),
            ),
            as_roles(
                &["owner"],
                TestRequest::delete().uri(&format!("{path}?end_time=2025-10-20T06:00:00Z")),
            ),
            as_roles(
                &["owner"],
                TestRequest::delete().uri(&format!("{path}?{range}&limit=5")),
            ),
        ],
    )
    .await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::OK, "{}", answers[0].text());
    assert_eq!(answers[0].json(), json!({"deleted": 3}));
    assert_eq!(answers[1].status, StatusCode::FORBIDDEN);
    assert_eq!(answers[2].status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answers[2].detail(), "start_time: required");
    assert_eq!(answers[3].status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answers[3].detail(), "limit: unknown query parameter");
}
