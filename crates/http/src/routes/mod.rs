pub mod alerts;
pub mod buckets;
pub mod customer_groups;
pub mod customer_windows;
pub mod devices;
pub mod events;
pub mod groups;
pub mod meta;
pub mod readings;
pub mod table;
pub mod webhooks;

use domain::{Device, TenantId, Timestamp};
use ports::MaintenanceWindowRepository;

use crate::api::devices::DeviceView;
use crate::error::ApiError;

/// The devices as answers show them now, with whether a window covers each (one question to
/// the store for all of them).
pub(crate) async fn device_views(
    windows: &dyn MaintenanceWindowRepository,
    tenant: &TenantId,
    devices: &[Device],
) -> Result<Vec<DeviceView>, ApiError> {
    let now = Timestamp::now();
    let covered = app::devices::in_maintenance(windows, tenant, devices, now).await?;
    Ok(devices
        .iter()
        .zip(covered)
        .map(|(d, in_maintenance)| DeviceView::at(d, in_maintenance, now))
        .collect())
}

/// One device as answers show it now.
pub(crate) async fn device_view(
    windows: &dyn MaintenanceWindowRepository,
    tenant: &TenantId,
    device: &Device,
) -> Result<DeviceView, ApiError> {
    device_views(windows, tenant, std::slice::from_ref(device))
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no view of the device")))
}

/// The header that carries the number of matches of a list answered as a bare array.
pub(crate) const TOTAL_COUNT: &str = "X-Total-Count";

/// Whether the client prefers CSV: `text/csv` is acceptable and weighs more than JSON (on a
/// tie, the one listed first wins).
pub(crate) fn wants_csv(req: &actix_web::HttpRequest) -> bool {
    prefers(req, &["text/csv"])
}

/// Whether the client prefers NDJSON (`application/x-ndjson`, or `application/ndjson`) over
/// JSON, as [`wants_csv`] judges CSV.
pub(crate) fn wants_ndjson(req: &actix_web::HttpRequest) -> bool {
    prefers(req, &["application/x-ndjson", "application/ndjson"])
}

/// Whether one of the media types `wanted` is acceptable and weighs more than JSON.
fn prefers(req: &actix_web::HttpRequest, wanted: &[&str]) -> bool {
    let Some(accept) = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    // (weight, position) of the best range matching CSV, and of the best matching JSON.
    let mut csv: Option<(f32, usize)> = None;
    let mut json: Option<(f32, usize)> = None;
    for (position, range) in accept.split(',').enumerate() {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let weight = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let better = |best: Option<(f32, usize)>| best.is_none_or(|(w, _)| weight > w);
        if wanted.contains(&media.as_str()) && better(csv) {
            csv = Some((weight, position));
        }
        if matches!(media.as_str(), "application/json" | "application/*" | "*/*") && better(json) {
            json = Some((weight, position));
        }
    }
    match (csv, json) {
        (Some((c, _)), _) if c <= 0.0 => false,
        (Some(_), None) => true,
        (Some((c, cp)), Some((j, jp))) => c > j || (c == j && cp < jp),
        (None, _) => false,
    }
}

/// A CSV document: a header row, then one row per record, fields quoted where needed (RFC 4180).
/// One CSV cell: text a client chose (escaped against formula injection), or a number.
pub(crate) enum Cell {
    Text(String),
    Number(f64),
}

pub(crate) fn csv(
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<Cell>>,
) -> actix_web::HttpResponse {
    let mut body = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = Cell>| {
        let quoted: Vec<String> = cells
            .map(|cell| match cell {
                Cell::Text(text) => csv_field(&neutralised(text)),
                Cell::Number(value) => value.to_string(),
            })
            .collect();
        body.push_str(&quoted.join(","));
        body.push_str("\r\n");
    };
    line(&mut header.iter().map(|h| Cell::Text((*h).to_owned())));
    for row in rows {
        line(&mut row.into_iter());
    }
    actix_web::HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .body(body)
}

/// Longest name a CSV file name starts with, in characters.
const FILE_NAME_CHARS: usize = 64;

/// The `Content-Disposition` of a CSV export of the readings of `name` (a device's or a group's):
/// `attachment; filename="<name>-readings.csv"`, the name kept to ASCII letters, digits, `-`,
/// `_` and `.` (spaces become `_`; quotes, slashes, control and other characters are dropped;
/// no leading `.`), at most 64 characters, `readings` when nothing is left.
pub(crate) fn csv_attachment(
    name: &str,
) -> (
    actix_web::http::header::HeaderName,
    actix_web::http::header::HeaderValue,
) {
    let safe: String = name
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => Some(c),
            ' ' => Some('_'),
            _ => None,
        })
        .skip_while(|c| *c == '.')
        .take(FILE_NAME_CHARS)
        .collect();
    let safe = if safe.is_empty() { "readings" } else { &safe };
    let value = format!("attachment; filename=\"{safe}-readings.csv\"");
    (
        actix_web::http::header::CONTENT_DISPOSITION,
        actix_web::http::header::HeaderValue::from_str(&value).unwrap_or_else(|_| {
            actix_web::http::header::HeaderValue::from_static(
                "attachment; filename=\"readings-readings.csv\"",
            )
        }),
    )
}

/// Lines an NDJSON export writes per chunk at most (as many as are ready).
const NDJSON_LINES_PER_CHUNK: usize = 512;

/// A streamed NDJSON answer: one line per row, each `view` of it as JSON. The body is written
/// as the store reads; a store error (or the export's deadline) ends it without its final chunk,
/// so a client sees the export cut, never a short one taken for whole.
pub(crate) fn ndjson<T, V>(
    rows: ports::ReadingStream<T>,
    view: fn(&T) -> V,
) -> actix_web::HttpResponse
where
    T: 'static,
    V: serde::Serialize + 'static,
{
    use futures_util::StreamExt as _;
    let body = rows.ready_chunks(NDJSON_LINES_PER_CHUNK).map(move |rows| {
        let mut chunk = Vec::with_capacity(rows.len() * 64);
        for row in rows {
            let row = row.map_err(|e| {
                let e = ApiError::from(e);
                tracing::warn!(error = %e, "an NDJSON export ended early");
                std::io::Error::other(e.detail().to_owned())
            })?;
            serde_json::to_writer(&mut chunk, &view(&row)).map_err(std::io::Error::other)?;
            chunk.push(b'\n');
        }
        Ok::<_, std::io::Error>(actix_web::web::Bytes::from(chunk))
    });
    actix_web::HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(body)
}

/// Text a spreadsheet would run as a formula, prefixed with `'` so it shows as text (OWASP,
/// "CSV Injection").
fn neutralised(text: String) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    }
}

/// An instant as the JSON answers write it.
pub(crate) fn rfc3339(t: Timestamp) -> String {
    t.get()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// An instant at the offset it carries (a bucket boundary at its zone's offset); in UTC when
/// RFC 3339 cannot write that offset (historical offsets with seconds, such as Monrovia's
/// -00:44:30 before 1972).
pub(crate) fn rfc3339_at(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .or_else(|_| {
            t.to_offset(time::UtcOffset::UTC)
                .format(&time::format_description::well_known::Rfc3339)
        })
        .unwrap_or_default()
}

fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::{csv_field, Cell};

    fn body_of(answer: actix_web::HttpResponse) -> String {
        let body =
            actix_web::rt::System::new().block_on(actix_web::body::to_bytes(answer.into_body()));
        let Ok(bytes) = body else { panic!("no body") };
        String::from_utf8(bytes.to_vec()).expect("UTF-8")
    }

    fn accepts(header: &str) -> bool {
        let req = actix_web::test::TestRequest::default()
            .insert_header(("Accept", header))
            .to_http_request();
        super::wants_csv(&req)
    }

    #[test]
    fn csv_is_chosen_by_weight_then_order() {
        assert!(accepts("text/csv"));
        assert!(accepts("text/csv, application/json"));
        assert!(!accepts("application/json, text/csv"));
        assert!(!accepts("application/json, text/csv;q=0.1"));
        assert!(accepts("application/json;q=0.5, text/csv"));
        assert!(!accepts("text/csv;q=0"));
        assert!(!accepts("*/*"));
        assert!(accepts("*/*;q=0.8, text/csv"));
    }

    #[test]
    fn text_a_spreadsheet_would_run_is_prefixed_and_numbers_stay_numbers() {
        let answer = super::csv(
            &["name", "value"],
            [
                vec![
                    Cell::Text("=HYPERLINK(\"http://x\",\"y\")".into()),
                    Cell::Number(-5.5),
                ],
                vec![Cell::Text("+1".into()), Cell::Number(2.0)],
                vec![Cell::Text("-2".into()), Cell::Number(-0.25)],
                vec![Cell::Text("@SUM(A1)".into()), Cell::Number(1e21)],
                vec![Cell::Text("\tx".into()), Cell::Number(0.0)],
                vec![Cell::Text("\rx".into()), Cell::Number(3.5)],
                vec![Cell::Text("plain".into()), Cell::Number(-1.0)],
            ],
        );
        assert_eq!(
            body_of(answer),
            "name,value\r\n\
             \"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",-5.5\r\n\
             '+1,2\r\n\
             '-2,-0.25\r\n\
             '@SUM(A1),1000000000000000000000\r\n\
             '\tx,0\r\n\
             \"'\rx\",3.5\r\n\
             plain,-1\r\n"
        );
    }

    #[test]
    fn ndjson_is_chosen_like_csv() {
        assert!(super::wants_ndjson(
            &actix_web::test::TestRequest::default()
                .insert_header(("Accept", "application/x-ndjson"))
                .to_http_request()
        ));
        assert!(!super::wants_ndjson(
            &actix_web::test::TestRequest::default()
                .insert_header(("Accept", "application/json, application/x-ndjson;q=0.5"))
                .to_http_request()
        ));
        assert!(!accepts("application/x-ndjson"), "not CSV");
    }

    #[test]
    fn csv_file_names_keep_a_safe_part_of_the_name() {
        let name = |n: &str| {
            let (_, value) = super::csv_attachment(n);
            value.to_str().expect("ASCII").to_owned()
        };
        assert_eq!(
            name("Temperature Sensor 1"),
            "attachment; filename=\"Temperature_Sensor_1-readings.csv\""
        );
        assert_eq!(
            name("../\"evil\"/\r\nx;y"),
            "attachment; filename=\"evilxy-readings.csv\""
        );
        assert_eq!(
            name("Überraum °C"),
            "attachment; filename=\"berraum_C-readings.csv\""
        );
        assert_eq!(
            name("日本"),
            "attachment; filename=\"readings-readings.csv\""
        );
        let long = name(&"a".repeat(500));
        assert_eq!(
            long.len(),
            "attachment; filename=\"-readings.csv\"".len() + 64
        );
    }

    #[test]
    fn offsets_rfc3339_cannot_write_fall_back_to_utc() {
        let monrovia = time::macros::datetime!(1970-01-01 00:00 -00:44:30);
        assert_eq!(super::rfc3339_at(monrovia), "1970-01-01T00:44:30Z");
        let berlin = time::macros::datetime!(2025-10-26 00:00 +02:00);
        assert_eq!(super::rfc3339_at(berlin), "2025-10-26T00:00:00+02:00");
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
