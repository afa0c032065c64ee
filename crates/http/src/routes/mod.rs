pub mod customer_groups;
pub mod customer_windows;
pub mod devices;
pub mod groups;
pub mod meta;
pub mod readings;

use domain::{ReadingQuery, Timestamp};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Caller, Role};
use crate::error::ApiError;

/// Who may write devices, readings and Group API groups.
const WRITER_ROLES: [Role; 2] = [Role::Admin, Role::Owner];
pub(crate) const FORBIDDEN: &str = "Access forbidden. Required roles: admin, owner";

/// 403 unless the caller is an admin or owner.
pub(crate) fn require_writer(caller: &Caller) -> Result<(), ApiError> {
    if caller.has_any_role(&WRITER_ROLES) {
        Ok(())
    } else {
        Err(ApiError::forbidden(FORBIDDEN))
    }
}

/// Look-back and size of a readings query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadingsParams {
    /// Hours to look back, 1 to 8760. Default 24.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 8760)]
    hours: Option<String>,
    /// Most readings to return, 1 to 10000. Default 1000.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 10000)]
    limit: Option<String>,
}

impl ReadingsParams {
    /// # Errors
    /// 422 naming `hours` or `limit` when not an integer in range.
    pub(crate) fn query(&self) -> Result<ReadingQuery, ApiError> {
        let integer = |field: &str, raw: Option<&str>, default: i64| -> Result<i64, ApiError> {
            raw.map_or(Ok(default), |v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::invalid(field, format!("must be an integer, got '{v}'")))
            })
        };
        let hours = integer("hours", self.hours.as_deref(), 24)?;
        let limit = integer("limit", self.limit.as_deref(), 1000)?;
        ReadingQuery::last_hours(Timestamp::now(), hours, limit).map_err(|e| match e {
            domain::reading::ReadingQueryError::Hours(_) => ApiError::invalid("hours", e),
            domain::reading::ReadingQueryError::Limit(_) => ApiError::invalid("limit", e),
        })
    }
}
