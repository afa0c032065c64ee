//! INTERIM (h-http branch only; DROP ON MERGE): placeholders so that the binary's wiring of
//! the alert ports compiles before this store implements them. The store's own helper branch
//! brings the real `AlertRepository` and `AlertEvaluator`; delete this file and its `mod`
//! line when merging it.

use async_trait::async_trait;
use domain::{Acknowledgement, Alert, AlertEvent, TenantId, Timestamp, WindowSlug};
use ports::{
    AckAlertError, AlertEvaluator, AlertListError, AlertPage, AlertQuery, AlertRepository,
    Evaluation, LookupError, StoreError,
};
use uuid::Uuid;

fn missing() -> StoreError {
    StoreError::Unknown(anyhow::anyhow!("alerts are not implemented on this branch"))
}

#[async_trait]
impl AlertRepository for crate::PgStore {
    async fn list_alerts(&self, _: &TenantId, _: &AlertQuery) -> Result<AlertPage, AlertListError> {
        Err(missing().into())
    }

    async fn get_alert(
        &self,
        _: &TenantId,
        _: Uuid,
    ) -> Result<(Alert, Vec<AlertEvent>), LookupError> {
        Err(missing().into())
    }

    async fn acknowledge(
        &self,
        _: &TenantId,
        _: Uuid,
        _: Acknowledgement,
    ) -> Result<Alert, AckAlertError> {
        Err(missing().into())
    }

    async fn unacknowledge(
        &self,
        _: &TenantId,
        _: Uuid,
        _: Timestamp,
    ) -> Result<Alert, AckAlertError> {
        Err(missing().into())
    }

    async fn muted_by_window(
        &self,
        _: &TenantId,
        _: &WindowSlug,
        _: Timestamp,
        _: Option<Timestamp>,
    ) -> Result<Vec<Alert>, StoreError> {
        Err(missing())
    }
}

#[async_trait]
impl AlertEvaluator for crate::PgStore {
    async fn evaluate(&self, _: Timestamp) -> Result<Evaluation, StoreError> {
        Err(missing())
    }
}
