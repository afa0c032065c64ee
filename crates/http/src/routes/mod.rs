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
        if media == "text/csv" && better(csv) {
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

/// An instant at the offset it carries (a bucket boundary at its zone's offset).
pub(crate) fn rfc3339_at(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Longest file name stem a CSV attachment carries.
const FILE_STEM_CHARS: usize = 100;

/// The `Content-Disposition` of a CSV answer about `name`: `attachment;
/// filename="<name>-readings.csv"`, the name cut down to ASCII letters, digits, `-` and `_`
/// (anything else `_`, at most 100 characters) so no client can be steered to a path or break
/// the quoting.
pub(crate) fn csv_attachment(name: &str) -> (actix_web::http::header::HeaderName, String) {
    let stem: String = name
        .chars()
        .take(FILE_STEM_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stem = if stem.trim_matches('_').is_empty() {
        "device".to_owned()
    } else {
        stem
    };
    (
        actix_web::http::header::CONTENT_DISPOSITION,
        format!("attachment; filename=\"{stem}-readings.csv\""),
    )
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
    fn attachment_names_keep_only_safe_characters() {
        let value = |name: &str| super::csv_attachment(name).1;
        assert_eq!(
            value("Boiler-1_a"),
            "attachment; filename=\"Boiler-1_a-readings.csv\""
        );
        assert_eq!(
            value("../\"etc\"/ä b"),
            "attachment; filename=\"____etc____b-readings.csv\""
        );
        assert_eq!(value("///"), "attachment; filename=\"device-readings.csv\"");
        assert_eq!(
            value(&"x".repeat(300)).len(),
            "attachment; filename=\"-readings.csv\"".len() + 100
        );
    }

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
