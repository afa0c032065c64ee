//! The tenant's revision: moved by statement triggers on every tenant table (migration V6), so a
//! write through any instance makes every instance's kept views stale.

use async_trait::async_trait;
use domain::TenantId;
use ports::{Revision, StoreError, TenantRevisions};

use crate::error::query_error;
use crate::pool::PgStore;

#[async_trait]
impl TenantRevisions for PgStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn revision(&self, tenant: &TenantId) -> Result<Revision, StoreError> {
        let tx = self.reader(tenant).await?;
        let statement = tx
            .prepare(crate::shared::REVISION)
            .await
            .map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&tenant_id];
        let row = tx
            .run(|client| client.query_one(&statement, &params))
            .await
            .map_err(query_error)?;
        Ok(Revision(row.try_get(0).map_err(query_error)?))
    }

    async fn status_revision(&self, tenant: &TenantId) -> Result<Revision, StoreError> {
        // Interim: the whole revision moves at least as often as the status revision must.
        self.revision(tenant).await
    }
}
