//! Device groups in PostgreSQL.

use async_trait::async_trait;
use domain::{
    Description, DeviceGroup, GroupChanges, GroupName, GroupSlug, NewDeviceGroup, TenantId,
    Timestamp,
};
use ports::{CreateGroupError, DeviceGroupRepository, LookupError, StoreError, UpdateGroupError};
use tokio_postgres::Row;

use crate::error::{corrupt_row, query_error, unique_violation};
use crate::{tenant_transaction, PgStore};

/// The columns every group read returns, in the order [`group_from_row`] expects.
macro_rules! group_columns {
    ($g:literal) => {
        concat!(
            $g,
            ".id, ",
            $g,
            ".group_id, ",
            $g,
            ".name, ",
            $g,
            ".description, ",
            $g,
            ".created_at, ",
            $g,
            ".updated_at, ",
            "(SELECT count(*) FROM device_group_members m WHERE m.tenant_id = ",
            $g,
            ".tenant_id AND m.group_id = ",
            $g,
            ".id) AS member_count"
        )
    };
}

const LIST: &str = concat!(
    "SELECT ",
    group_columns!("g"),
    " FROM device_groups g WHERE g.tenant_id = $1 ORDER BY g.name COLLATE \"C\""
);
const GET: &str = concat!(
    "SELECT ",
    group_columns!("g"),
    " FROM device_groups g WHERE g.tenant_id = $1 AND g.group_id = $2"
);
const INSERT: &str = concat!(
    "INSERT INTO device_groups AS g (tenant_id, id, group_id, name, description) ",
    "VALUES ($1, $2, $3, $4, $5) RETURNING ",
    group_columns!("g")
);
// $4 says whether the description is being set (to $5, which may be NULL) or kept.
// greatest() keeps updated_at from going backwards if the server clock does.
const UPDATE: &str = concat!(
    "UPDATE device_groups AS g SET name = COALESCE($3, g.name), ",
    "description = CASE WHEN $4 THEN $5 ELSE g.description END, ",
    "updated_at = greatest(now(), g.updated_at) ",
    "WHERE g.tenant_id = $1 AND g.group_id = $2 RETURNING ",
    group_columns!("g")
);
const DELETE: &str = "DELETE FROM device_groups WHERE tenant_id = $1 AND group_id = $2";

fn group_from_row(row: &Row) -> Result<DeviceGroup, StoreError> {
    let corrupt = |reason: &dyn std::fmt::Display| corrupt_row("group", reason);
    let slug: String = row.try_get("group_id").map_err(query_error)?;
    let name: String = row.try_get("name").map_err(query_error)?;
    let description: Option<String> = row.try_get("description").map_err(query_error)?;
    let member_count: i64 = row.try_get("member_count").map_err(query_error)?;
    Ok(DeviceGroup {
        id: row.try_get("id").map_err(query_error)?,
        group_id: GroupSlug::parse(&slug).map_err(|e| corrupt(&e))?,
        name: GroupName::parse(&name).map_err(|e| corrupt(&e))?,
        description: description
            .as_deref()
            .map(Description::parse)
            .transpose()
            .map_err(|e| corrupt(&e))?,
        member_count: u64::try_from(member_count).map_err(|e| corrupt(&e))?,
        created_at: timestamp(row, "created_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

pub(crate) fn timestamp(row: &Row, column: &str) -> Result<Timestamp, StoreError> {
    let value: time::OffsetDateTime = row.try_get(column).map_err(query_error)?;
    Timestamp::new(value).map_err(|e| corrupt_row(column, e))
}

#[async_trait]
impl DeviceGroupRepository for PgStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn list_groups(&self, tenant: &TenantId) -> Result<Vec<DeviceGroup>, StoreError> {
        let mut client = self.client().await?;
        let tx = tenant_transaction(&mut client, tenant).await?;
        let statement = tx.prepare_cached(LIST).await.map_err(query_error)?;
        let rows = tx
            .query(&statement, &[&tenant.as_str()])
            .await
            .map_err(query_error)?;
        tx.commit().await.map_err(query_error)?;
        rows.iter().map(group_from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn create_group(
        &self,
        tenant: &TenantId,
        group: NewDeviceGroup,
    ) -> Result<DeviceGroup, CreateGroupError> {
        let mut client = self.client().await?;
        let tx = tenant_transaction(&mut client, tenant).await?;
        let statement = tx.prepare_cached(INSERT).await.map_err(query_error)?;
        let description = group.description.as_ref().map(Description::as_str);
        let inserted = tx
            .query_one(
                &statement,
                &[
                    &tenant.as_str(),
                    &group.id,
                    &group.group_id.as_str(),
                    &group.name.as_str(),
                    &description,
                ],
            )
            .await;
        let row = match inserted {
            Ok(row) => row,
            Err(e) => {
                return Err(match unique_violation(&e) {
                    Some("device_groups_group_id_key") => {
                        CreateGroupError::GroupIdTaken(group.group_id)
                    }
                    Some("device_groups_name_key") => CreateGroupError::NameTaken(group.name),
                    _ => query_error(e).into(),
                })
            }
        };
        tx.commit().await.map_err(query_error)?;
        Ok(group_from_row(&row)?)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn get_group(
        &self,
        tenant: &TenantId,
        group_id: &GroupSlug,
    ) -> Result<DeviceGroup, LookupError> {
        let mut client = self.client().await?;
        let tx = tenant_transaction(&mut client, tenant).await?;
        let statement = tx.prepare_cached(GET).await.map_err(query_error)?;
        let row = tx
            .query_opt(&statement, &[&tenant.as_str(), &group_id.as_str()])
            .await
            .map_err(query_error)?;
        tx.commit().await.map_err(query_error)?;
        Ok(group_from_row(&row.ok_or(LookupError::NotFound)?)?)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn update_group(
        &self,
        tenant: &TenantId,
        group_id: &GroupSlug,
        changes: GroupChanges,
    ) -> Result<DeviceGroup, UpdateGroupError> {
        let mut client = self.client().await?;
        let tx = tenant_transaction(&mut client, tenant).await?;
        let statement = tx.prepare_cached(UPDATE).await.map_err(query_error)?;
        let name = changes.name.as_ref().map(GroupName::as_str);
        let sets_description = changes.description.is_some();
        let description = changes
            .description
            .as_ref()
            .and_then(|d| d.as_ref().map(Description::as_str));
        let updated = tx
            .query_opt(
                &statement,
                &[
                    &tenant.as_str(),
                    &group_id.as_str(),
                    &name,
                    &sets_description,
                    &description,
                ],
            )
            .await;
        let row = match updated {
            Ok(row) => row.ok_or(UpdateGroupError::NotFound)?,
            Err(e) => {
                return Err(match (unique_violation(&e), changes.name) {
                    (Some("device_groups_name_key"), Some(name)) => {
                        UpdateGroupError::NameTaken(name)
                    }
                    _ => query_error(e).into(),
                })
            }
        };
        tx.commit().await.map_err(query_error)?;
        Ok(group_from_row(&row)?)
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn delete_group(
        &self,
        tenant: &TenantId,
        group_id: &GroupSlug,
    ) -> Result<(), LookupError> {
        let mut client = self.client().await?;
        let tx = tenant_transaction(&mut client, tenant).await?;
        let statement = tx.prepare_cached(DELETE).await.map_err(query_error)?;
        let deleted = tx
            .execute(&statement, &[&tenant.as_str(), &group_id.as_str()])
            .await
            .map_err(query_error)?;
        tx.commit().await.map_err(query_error)?;
        if deleted == 0 {
            return Err(LookupError::NotFound);
        }
        Ok(())
    }
}
