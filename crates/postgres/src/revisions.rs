//! The tenant's revisions, moved by statement triggers, so a write through any instance makes
//! every instance's kept views stale: the revision by every write (migration V6), the status
//! revision by every write but readings and kept states that change no status (migration V7).

use async_trait::async_trait;
use domain::TenantId;
use ports::{Revision, StoreError, TenantRevisions};

use crate::error::query_error;
use crate::pool::PgStore;

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
