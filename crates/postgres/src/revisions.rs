//! The tenant's revisions, moved by statement triggers, so a write through any instance makes
//! every instance's kept views stale: the revision by every write (migration V6), the status
//! revision by every write but readings and kept states that change no status (migration V7).

use async_trait::async_trait;
use domain::TenantId;
use domain::{MemberAlerts, MemberPatch};
use ports::{
    MembersLatest, Revision, Revisions, StateChanges, StateMark, StoreError, TenantRevisions,
};
use uuid::Uuid;

use crate::error::query_error;
use crate::pool::PgStore;
use crate::rows::state_from_row;

#[async_trait]
impl TenantRevisions for PgStore {
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn revision(&self, tenant: &TenantId) -> Result<Revision, StoreError> {
        let row = self.row_of(tenant, crate::shared::REVISION).await?;
        Ok(Revision(row.try_get(0).map_err(query_error)?))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn status_revision(&self, tenant: &TenantId) -> Result<Revision, StoreError> {
        let row = self.row_of(tenant, crate::shared::STATUS_REVISION).await?;
        Ok(Revision(row.try_get(0).map_err(query_error)?))
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn revisions(&self, tenant: &TenantId) -> Result<Revisions, StoreError> {
        let row = self.row_of(tenant, crate::shared::REVISIONS).await?;
        Ok(Revisions {
            full: Revision(row.try_get(0).map_err(query_error)?),
            scope: Revision(row.try_get(1).map_err(query_error)?),
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
            [&tenant_id, &group, &kept.full.0, &kept.scope.0];
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
                        scope: Revision(row.try_get(1).map_err(query_error)?),
                    });
                }
                Some(device) => latest.push((device, patch_from_row(row)?)),
            }
        }
        let revisions = revisions
            .ok_or_else(|| StoreError::Unknown(anyhow::anyhow!("the revisions row is missing")))?;
        // The statement's own gate, so an empty group's empty list still says "read".
        let read = revisions.full != kept.full && revisions.scope == kept.scope;
        Ok(MembersLatest {
            revisions,
            latest: read.then_some(latest),
        })
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn state_mark(&self, tenant: &TenantId) -> Result<StateMark, StoreError> {
        let row = self.row_of(tenant, crate::shared::STATE_MARK).await?;
        Ok(StateMark {
            scope: Revision(row.try_get(0).map_err(query_error)?),
            seq: row.try_get(1).map_err(query_error)?,
        })
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn state_changes(
        &self,
        tenant: &TenantId,
        kept: StateMark,
        limit: usize,
    ) -> Result<StateChanges, StoreError> {
        // Most asks find nothing new (a few devices change a second, requests come by the
        // thousand): the mark alone costs a fraction of planning the changes' statement.
        let mark = self.state_mark(tenant).await?;
        if mark == kept {
            return Ok(StateChanges {
                mark,
                changed: Some(Vec::new()),
            });
        }
        let tx = self.reader(tenant).await?;
        let statement = tx
            .prepare(crate::shared::STATE_CHANGES)
            .await
            .map_err(query_error)?;
        let tenant_id = tenant.as_str();
        // One over the limit, to tell "exactly the limit" from "more".
        let asked = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&tenant_id, &kept.scope.0, &kept.seq, &asked];
        let rows = tx
            .run(|client| client.query(&statement, &params))
            .await
            .map_err(query_error)?;
        let mut mark = None;
        let mut changed = Vec::with_capacity(rows.len().saturating_sub(1));
        for row in &rows {
            let device: Option<Uuid> = row.try_get(2).map_err(query_error)?;
            match device {
                None => {
                    let first_seq: Option<i64> = row.try_get(8).map_err(query_error)?;
                    mark = Some((
                        StateMark {
                            scope: Revision(row.try_get(0).map_err(query_error)?),
                            seq: row.try_get(1).map_err(query_error)?,
                        },
                        first_seq,
                    ));
                }
                Some(device) => changed.push((device, patch_from_row(row)?)),
            }
        }
        let (mark, first_seq) =
            mark.ok_or_else(|| StoreError::Unknown(anyhow::anyhow!("the mark row is missing")))?;
        // The statement's own gate, so "nothing changed" and "cannot tell" stay apart.
        let complete = mark.scope == kept.scope
            && (mark.seq == kept.seq || first_seq.unwrap_or(mark.seq + 1) <= kept.seq + 1)
            && changed.len() <= limit;
        Ok(StateChanges {
            mark,
            changed: complete.then_some(changed),
        })
    }
}

/// A device's kept state (columns 3 to 6) and open alerts (column 7) in a row of
/// [`crate::shared::MEMBERS_LATEST`] or [`crate::shared::STATE_CHANGES`].
fn patch_from_row(row: &tokio_postgres::Row) -> Result<MemberPatch, StoreError> {
    let open_alert: Option<bool> = row.try_get(7).map_err(query_error)?;
    Ok(MemberPatch {
        state: state_from_row(row, 3)?,
        alerts: MemberAlerts {
            open: open_alert.is_some(),
            acknowledged: open_alert.unwrap_or(false),
        },
    })
}

impl PgStore {
    /// The one row of a statement of the tenant's revisions (`$1` the tenant): one round trip.
    async fn row_of(
        &self,
        tenant: &TenantId,
        sql: &str,
    ) -> Result<tokio_postgres::Row, StoreError> {
        let tx = self.reader(tenant).await?;
        let statement = tx.prepare(sql).await.map_err(query_error)?;
        let tenant_id = tenant.as_str();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&tenant_id];
        let row = tx
            .run(|client| client.query_one(&statement, &params))
            .await
            .map_err(query_error)?;
        Ok(row)
    }
}
