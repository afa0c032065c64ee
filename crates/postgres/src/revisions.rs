//! The tenant's revisions, moved by statement triggers, so a write through any instance makes
//! every instance's kept views stale: the revision by every write (migration V6), the status
//! revision by every write but readings and kept states that change no status (migration V7).

use async_trait::async_trait;
use domain::{ReadingPoint, TenantId};
use ports::{MembersLatest, Revision, Revisions, StoreError, TenantRevisions};
use uuid::Uuid;

use crate::error::query_error;
use crate::pool::PgStore;
use crate::rows::timestamp;

#[async_trait]
impl TenantRevisions for PgStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn revision(&self, tenant: &TenantId) -> Result<Revision, StoreError> {
        self.sum_of(tenant, crate::shared::REVISION).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn status_revision(&self, tenant: &TenantId) -> Result<Revision, StoreError> {
        self.sum_of(tenant, crate::shared::STATUS_REVISION).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn revisions(&self, tenant: &TenantId) -> Result<Revisions, StoreError> {
        let tx = self.reader(tenant).await?;
        let statement = tx
            .prepare(crate::shared::REVISIONS)
            .await
            .map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&tenant_id];
        let row = tx
            .run(|client| client.query_one(&statement, &params))
            .await
            .map_err(query_error)?;
        Ok(Revisions {
            full: Revision(row.try_get(0).map_err(query_error)?),
            status: Revision(row.try_get(1).map_err(query_error)?),
        })
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn members_latest(
        &self,
        tenant: &TenantId,
        group: Uuid,
        kept: Revisions,
    ) -> Result<MembersLatest, StoreError> {
        let tx = self.reader(tenant).await?;
        let statement = tx
            .prepare(crate::shared::MEMBERS_LATEST)
            .await
            .map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&tenant_id, &group, &kept.full.0, &kept.status.0];
        let rows = tx
            .run(|client| client.query(&statement, &params))
            .await
            .map_err(query_error)?;
        // By position (see the statement): a large group is thousands of rows.
        let mut revisions = None;
        let mut latest = Vec::with_capacity(rows.len().saturating_sub(1));
        for row in &rows {
            let device: Option<Uuid> = row.try_get(2).map_err(query_error)?;
            match device {
                None => {
                    revisions = Some(Revisions {
                        full: Revision(row.try_get(0).map_err(query_error)?),
                        status: Revision(row.try_get(1).map_err(query_error)?),
                    });
                }
                Some(device) => latest.push((
                    device,
                    ReadingPoint {
                        timestamp: timestamp(row, 3)?,
                        value: row.try_get(4).map_err(query_error)?,
                    },
                )),
            }
        }
        let revisions = revisions
            .ok_or_else(|| StoreError::Unknown(anyhow::anyhow!("the revisions row is missing")))?;
        // The statement's own gate, so an empty group's empty list still says "read".
        let read = revisions.full != kept.full && revisions.status == kept.status;
        Ok(MembersLatest {
            revisions,
            latest: read.then_some(latest),
        })
    }
}

impl PgStore {
    /// One of the tenant's revisions, by its statement: one round trip.
    async fn sum_of(&self, tenant: &TenantId, sql: &str) -> Result<Revision, StoreError> {
        let tx = self.reader(tenant).await?;
        let statement = tx.prepare(sql).await.map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&tenant_id];
        let row = tx
            .run(|client| client.query_one(&statement, &params))
            .await
            .map_err(query_error)?;
        Ok(Revision(row.try_get(0).map_err(query_error)?))
    }
}
