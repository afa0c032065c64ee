//! What several resources share: the query parameters of lists and of readings, and the parsers
//! of fields that appear in more than one body.

use domain::list::ListQueryError;
use domain::{ListQuery, ReadingQuery, Timestamp};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};
use utoipa::IntoParams;

use crate::error::ApiError;

/// Name filter and paging of a list. Without them, lists answer as the seeds show, in full.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only items whose name contains this text (ASCII letters match either case); no control
    /// characters.
    #[param(value_type = Option<String>, min_length = 1, max_length = 128)]
    name: Option<String>,
    /// Most items to return, 1 to 1000. Default: all.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Items to skip first, 0 to 4294967295. Default 0.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 4_294_967_295_i64)]
    offset: Option<String>,
}

impl ListParams {
    /// # Errors
    /// 422 naming `name`, `limit` or `offset`.
    pub(crate) fn query(&self) -> Result<ListQuery, ApiError> {
        let integer = |field: &str, raw: Option<&str>| -> Result<Option<i64>, ApiError> {
            raw.map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::invalid(field, format!("must be an integer, got '{v}'")))
            })
            .transpose()
        };
        let limit = integer("limit", self.limit.as_deref())?;
        let offset = integer("offset", self.offset.as_deref())?;
        ListQuery::new(self.name.as_deref(), limit, offset).map_err(|e| {
            let field = match e {
                ListQueryError::Limit(_) => "limit",
                ListQueryError::Offset(_) => "offset",
                ListQueryError::Name => "name",
            };
            ApiError::invalid(field, e)
        })
    }
}

/// The time range and size of a readings query: the last `hours`, or `start_time`/`end_time`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadingsParams {
    /// Hours to look back, 1 to 8760. Default 24. Not together with `start_time`/`end_time`.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 8760)]
    hours: Option<String>,
    /// Readings at or after this instant (RFC 3339). Default: 24 hours before `end_time`.
    #[param(value_type = Option<String>, format = DateTime)]
    start_time: Option<String>,
    /// Readings before this instant (RFC 3339), later than `start_time`. Default: no end.
    #[param(value_type = Option<String>, format = DateTime)]
    end_time: Option<String>,
    /// Most readings to return, 1 to 10000. Default 1000. With `Accept: application/x-ndjson`,
    /// 1 to 10000000, default 10000000.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 10_000_000)]
    limit: Option<String>,
    /// Continues a raw page where the previous one stopped: its `next_cursor`, sent with the same
    /// parameters (or none: the cursor's are used). A cursor of another route, device, group,
    /// tenant or parameters is a 422. Not with `offset`; not with `Accept: application/x-ndjson`.
    #[param(value_type = Option<String>, max_length = 256)]
    cursor: Option<String>,
    /// Raw readings to skip first, 0 to 1000000. Default 0. Not with `cursor` (which goes on from
    /// any depth at no cost); not with `Accept: application/x-ndjson`.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 1_000_000)]
    offset: Option<String>,
    /// Aggregate into time buckets of this length instead of answering raw readings: `1m`,
    /// `5m`, `15m`, `1h`, `6h`, `1d`, `1w` (Monday to Monday), `1mo` (1st to 1st), or whole
    /// seconds from 60 to 31536000. Sub-day intervals must divide 24 hours: their buckets start
    /// wherever the zone's wall clock reads local midnight plus a multiple of the interval (a
    /// time shown twice at fall-back starts a bucket both times; one skipped at spring-forward
    /// starts none). Longer ones must be whole days, starting at local midnight. At most 10000
    /// buckets per series.
    #[param(value_type = Option<String>, example = "1h")]
    pub(crate) interval: Option<String>,
    /// With `interval`: comma list of `avg`, `min`, `max`, `count`, `first`, `last`, `sum`.
    /// Default `avg`.
    #[param(value_type = Option<String>, example = "avg,min,max")]
    pub(crate) agg: Option<String>,
    /// With `interval`: the IANA time zone whose calendar buckets align to. Default `UTC`.
    #[param(value_type = Option<String>, example = "Europe/Berlin")]
    pub(crate) timezone: Option<String>,
    /// With `interval`: empty buckets are left out (`none`, default), present with null
    /// aggregates (`null`), or carry the last value known before them (`previous`; `count` 0,
    /// `sum` null).
    #[param(value_type = Option<String>, example = "none")]
    pub(crate) fill: Option<String>,
}

/// What a raw page asks of the store, and what its `next_cursor` is made of.
pub(crate) struct RawPage {
    /// What the page is of: as asked, or the cursor's (a tree's cursor sent without
    /// `include_descendants`).
    pub scope: crate::cursor::Scope,
    /// The page's query (range, position or offset, limit).
    pub query: ReadingQuery,
    /// The query's parameters as its cursors carry them (the first page's).
    pub selection: crate::cursor::Selection,
    /// A first page (neither cursor nor offset): the same for every client asking it.
    pub first: bool,
}

/// Parses an integer parameter.
fn integer(field: &str, raw: Option<&str>, default: i64) -> Result<i64, ApiError> {
    raw.map_or(Ok(default), |v| {
        v.parse::<i64>()
            .map_err(|_| ApiError::invalid(field, format!("must be an integer, got '{v}'")))
    })
}

fn reading_query_error(e: domain::reading::ReadingQueryError) -> ApiError {
    use domain::reading::ReadingQueryError;
    match e {
        ReadingQueryError::Hours(_) => ApiError::invalid("hours", e),
        ReadingQueryError::Limit(_) | ReadingQueryError::ExportLimit(_) => {
            ApiError::invalid("limit", e)
        }
        ReadingQueryError::EmptyRange => ApiError::invalid("end_time", e),
        ReadingQueryError::Offset(_) => ApiError::invalid("offset", e),
    }
}

impl ReadingsParams {
    /// # Errors
    /// 422 naming `hours`, `start_time`, `end_time` or `limit`.
    pub(crate) fn query(&self) -> Result<ReadingQuery, ApiError> {
        self.range(integer("limit", self.limit.as_deref(), 1000)?)
    }

    /// `cursor` or `offset`, whichever is given (raw pages only).
    pub(crate) fn paging_given(&self) -> Option<&'static str> {
        if self.cursor.is_some() {
            Some("cursor")
        } else if self.offset.is_some() {
            Some("offset")
        } else {
            None
        }
    }

    /// The range asked, with `limit` readings at most.
    fn range(&self, limit: i64) -> Result<ReadingQuery, ApiError> {
        let now = Timestamp::now();
        let query = if self.start_time.is_some() || self.end_time.is_some() {
            if self.hours.is_some() {
                return Err(ApiError::invalid(
                    "hours",
                    "give either hours or start_time/end_time, not both",
                ));
            }
            let start = self
                .start_time
                .as_deref()
                .map(|v| instant("start_time", v))
                .transpose()?;
            let end = self
                .end_time
                .as_deref()
                .map(|v| instant("end_time", v))
                .transpose()?;
            ReadingQuery::between(start, end, now, limit)
        } else {
            ReadingQuery::last_hours(now, integer("hours", self.hours.as_deref(), 24)?, limit)
        };
        query.map_err(reading_query_error)
    }

    /// A raw page of `scope`: the range and limit asked, continued after `cursor` (made with
    /// `key` for `tenant`) or past `offset`.
    ///
    /// # Errors
    /// 422 naming `hours`, `start_time`, `end_time`, `limit`, `offset` or `cursor` (also both
    /// `cursor` and `offset`, or a cursor of another query).
    pub(crate) fn page(
        &self,
        scope: crate::cursor::Scope,
        tree_given: bool,
        key: &crate::cursor::CursorKey,
        tenant: &domain::TenantId,
    ) -> Result<RawPage, ApiError> {
        use crate::cursor::{Cursor, Given, Selection};
        let asked = self.query()?;
        match (self.cursor.as_deref(), self.offset.as_deref()) {
            (Some(_), Some(_)) => Err(ApiError::invalid(
                "cursor",
                "give either cursor or offset, not both",
            )),
            (Some(raw), None) => {
                let cursor = Cursor::decode(raw, key, tenant)?;
                let given = Given {
                    range: self.hours.is_some()
                        || self.start_time.is_some()
                        || self.end_time.is_some(),
                    limit: self.limit.is_some(),
                    tree: tree_given,
                };
                let (scope, query) = cursor.resume(scope, &asked, given)?;
                Ok(RawPage {
                    scope,
                    query,
                    selection: cursor.selection,
                    first: false,
                })
            }
            (None, Some(raw)) => Ok(RawPage {
                scope,
                query: asked
                    .skipping(integer("offset", Some(raw), 0)?)
                    .map_err(reading_query_error)?,
                selection: Selection::of(&asked),
                first: false,
            }),
            (None, None) => Ok(RawPage {
                scope,
                query: asked,
                selection: Selection::of(&asked),
                first: true,
            }),
        }
    }

    /// The query of a streamed export: the range asked, `limit` up to
    /// [`domain::reading::MAX_READINGS_PER_EXPORT`] (default: that).
    ///
    /// # Errors
    /// 422 naming `hours`, `start_time`, `end_time`, `limit`, or `cursor`/`offset` (pages
    /// only).
    pub(crate) fn export(&self) -> Result<ReadingQuery, ApiError> {
        for (field, given) in [("cursor", &self.cursor), ("offset", &self.offset)] {
            if given.is_some() {
                return Err(ApiError::invalid(
                    field,
                    "pages only: an NDJSON export (Accept: application/x-ndjson) streams the whole range",
                ));
            }
        }
        let limit = integer(
            "limit",
            self.limit.as_deref(),
            i64::from(domain::reading::MAX_READINGS_PER_EXPORT),
        )?;
        self.range(1)?.exporting(limit).map_err(reading_query_error)
    }
}

/// The range of `DELETE /api/devices/{id}/readings`: both ends required.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadingsDeleteParams {
    /// Delete readings at or after this instant (RFC 3339). Required.
    #[param(value_type = String, format = DateTime)]
    start_time: Option<String>,
    /// Delete readings before this instant (RFC 3339), later than `start_time`. Required.
    #[param(value_type = String, format = DateTime)]
    end_time: Option<String>,
}

impl ReadingsDeleteParams {
    /// `[start, end)`.
    ///
    /// # Errors
    /// 422 naming `start_time` or `end_time` when missing or invalid, or `end_time` when it is
    /// not later than `start_time`.
    pub(crate) fn range(&self) -> Result<(Timestamp, Timestamp), ApiError> {
        let required = |field: &str, value: Option<&str>| -> Result<Timestamp, ApiError> {
            let value = value.ok_or_else(|| ApiError::invalid(field, "required"))?;
            instant(field, value)
        };
        let start = required("start_time", self.start_time.as_deref())?;
        let end = required("end_time", self.end_time.as_deref())?;
        if end <= start {
            return Err(ApiError::invalid(
                "end_time",
                "must be later than start_time",
            ));
        }
        Ok((start, end))
    }
}

/// A PATCH/PUT field that may be absent but not null.
pub(crate) fn not_null<T>(field: &str, value: Option<Option<T>>) -> Result<Option<T>, ApiError> {
    match value {
        Some(None) => Err(ApiError::invalid(field, "must not be null")),
        Some(Some(v)) => Ok(Some(v)),
        None => Ok(None),
    }
}

/// Parses an RFC 3339 instant; one without an offset is taken as UTC.
///
/// # Errors
/// 422 naming `field` when the text is no such instant or lies outside years 1..=9999.
pub fn instant(field: &str, value: &str) -> Result<Timestamp, ApiError> {
    let naive = time::macros::format_description!(
        version = 2,
        "[year]-[month]-[day][first [T][t][ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    let parsed = OffsetDateTime::parse(value, &Rfc3339)
        .or_else(|_| PrimitiveDateTime::parse(value, naive).map(PrimitiveDateTime::assume_utc))
        .map_err(|_| ApiError::invalid(field, format!("'{value}' is not an RFC 3339 date-time")))?;
    Timestamp::new(parsed).map_err(|e| ApiError::invalid(field, e))
}

/// A group's description, in either API family: 422 naming `description` when invalid.
///
/// # Errors
/// 422 naming `description`.
pub(crate) fn description(value: Option<&str>) -> Result<Option<domain::Description>, ApiError> {
    value
        .map(domain::Description::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("description", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn instants_parse_with_offset_or_as_utc() {
        assert_eq!(
            instant("t", "2025-10-20T12:00:00+02:00").unwrap().get(),
            datetime!(2025-10-20 10:00 UTC)
        );
        assert_eq!(
            instant("t", "2025-10-20T10:00:00").unwrap().get(),
            datetime!(2025-10-20 10:00 UTC)
        );
        assert_eq!(
            instant("t", "2025-10-20T10:00:00.5Z").unwrap().get(),
            datetime!(2025-10-20 10:00:00.5 UTC)
        );
        assert!(instant("t", "yesterday")
            .unwrap_err()
            .detail()
            .starts_with("t: "));
        assert!(instant("t", "0000-12-31T23:00:00Z").is_err());
    }
}
