//! Alerts: reading them a page at a time, and acknowledging them.

use domain::alerting::AckRequestError;
use domain::{
    AckMode, AckNote, Acknowledgement, Actor, Alert, AlertCursor, AlertEvent, AlertState, TenantId,
    Timestamp,
};
use ports::{
    AckAlertError, AlertFilter, AlertListError, AlertPage, AlertQuery, AlertRepository, LookupError,
};
use thiserror::Error;
use uuid::Uuid;

/// The page of the tenant's alerts `query` selects, newest `opened_at` first.
///
/// # Errors
/// The store's [`AlertListError`]: an unknown group or device in the filter.
pub async fn list(
    alerts: &dyn AlertRepository,
    tenant: &TenantId,
    query: &AlertQuery,
) -> Result<AlertPage, AlertListError> {
    alerts.list_alerts(tenant, query).await
}

/// A page of one device's alerts (its history): those in `state` (`None`: all), newest first.
///
/// # Errors
/// [`AlertListError::DeviceNotFound`] for a device the tenant does not have; the store's.
pub async fn device_history(
    alerts: &dyn AlertRepository,
    tenant: &TenantId,
    device: Uuid,
    state: Option<AlertState>,
    limit: u32,
    after: Option<AlertCursor>,
) -> Result<AlertPage, AlertListError> {
    let query = AlertQuery {
        filter: AlertFilter {
            state,
            device_id: Some(device),
            ..AlertFilter::default()
        },
        limit,
        after,
    };
    alerts.list_alerts(tenant, &query).await
}

/// The alert with its events, oldest first.
///
/// # Errors
/// [`LookupError::NotFound`] for an alert the tenant does not have.
pub async fn get(
    alerts: &dyn AlertRepository,
    tenant: &TenantId,
    id: Uuid,
) -> Result<(Alert, Vec<AlertEvent>), LookupError> {
    alerts.get_alert(tenant, id).await
}

/// What a caller asks of an acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckRequest {
    pub mode: AckMode,
    pub until: Option<Timestamp>,
    pub note: Option<AckNote>,
}

/// Errors of [`acknowledge`].
#[derive(Debug, Error)]
pub enum AcknowledgeError {
    /// The request itself does not make an acknowledgement (`until` missing, misplaced or past).
    #[error(transparent)]
    Invalid(#[from] AckRequestError),
    #[error(transparent)]
    Alert(#[from] AckAlertError),
}

/// Acknowledges the alert on behalf of `by` at `now`. The request is judged before the alert is
/// looked at, so a malformed one is refused whatever the alert.
///
/// # Errors
/// [`AcknowledgeError::Invalid`] for a request that makes no acknowledgement; the store's
/// [`AckAlertError`] (unknown alert, resolved alert).
pub async fn acknowledge(
    alerts: &dyn AlertRepository,
    tenant: &TenantId,
    by: &Actor,
    id: Uuid,
    request: AckRequest,
    now: Timestamp,
) -> Result<Alert, AcknowledgeError> {
    let ack = Acknowledgement::new(by.clone(), now, request.mode, request.until, request.note)?;
    Ok(alerts.acknowledge(tenant, id, ack).await?)
}

/// Withdraws the alert's acknowledgement at `now`; without one, the alert is answered as it is.
///
/// # Errors
/// The store's [`AckAlertError`].
pub async fn unacknowledge(
    alerts: &dyn AlertRepository,
    tenant: &TenantId,
    id: Uuid,
    now: Timestamp,
) -> Result<Alert, AckAlertError> {
    alerts.unacknowledge(tenant, id, now).await
}

#[cfg(test)]
mod tests {
    use ports::MockAlertRepository;
    use time::Duration;

    use super::*;

    fn tenant() -> TenantId {
        TenantId::parse("acme").expect("valid")
    }

    fn actor() -> Actor {
        Actor::parse("alice").expect("valid")
    }

    fn at(minutes: i64) -> Timestamp {
        Timestamp::now()
            .checked_add(Duration::minutes(minutes))
            .expect("in range")
    }

    #[tokio::test]
    async fn a_device_history_asks_the_store_for_that_device_only_in_the_state_asked() {
        let device = Uuid::from_u128(5);
        let after = AlertCursor {
            opened_at: at(-5),
            id: Uuid::from_u128(9),
        };
        let mut alerts = MockAlertRepository::new();
        alerts
            .expect_list_alerts()
            .withf(move |_, q| {
                q.filter
                    == AlertFilter {
                        state: None,
                        device_id: Some(device),
                        ..AlertFilter::default()
                    }
                    && q.limit == 7
                    && q.after == Some(after)
            })
            .times(1)
            .returning(|_, _| {
                Ok(AlertPage {
                    alerts: Vec::new(),
                    next: None,
                })
            });
        let page = device_history(&alerts, &tenant(), device, None, 7, Some(after))
            .await
            .expect("listed");
        assert!(page.alerts.is_empty());
    }

    #[tokio::test]
    async fn an_acknowledgement_is_by_the_caller_at_now_with_what_was_asked() {
        let now = at(0);
        let until = at(30);
        let mut alerts = MockAlertRepository::new();
        alerts
            .expect_acknowledge()
            .withf(move |_, id, ack| {
                *id == Uuid::from_u128(3)
                    && ack.by.as_str() == "alice"
                    && ack.at == now
                    && ack.mode == AckMode::Until
                    && ack.until == Some(until)
                    && ack.note.as_ref().map(AckNote::as_str) == Some("on it")
            })
            .times(1)
            .returning(|_, _, _| Err(AckAlertError::Resolved));
        let request = AckRequest {
            mode: AckMode::Until,
            until: Some(until),
            note: Some(AckNote::parse("on it").expect("valid")),
        };
        let answer = acknowledge(
            &alerts,
            &tenant(),
            &actor(),
            Uuid::from_u128(3),
            request,
            now,
        )
        .await;
        assert!(matches!(
            answer,
            Err(AcknowledgeError::Alert(AckAlertError::Resolved))
        ));
    }

    #[tokio::test]
    async fn a_request_that_makes_no_acknowledgement_never_reaches_the_store() {
        let mut alerts = MockAlertRepository::new();
        alerts.expect_acknowledge().never();
        for (mode, until, wanted) in [
            (AckMode::Until, None, AckRequestError::UntilMissing),
            (AckMode::Until, Some(at(-1)), AckRequestError::UntilPast),
            (
                AckMode::UntilResolved,
                Some(at(10)),
                AckRequestError::UntilNotAllowed,
            ),
        ] {
            let request = AckRequest {
                mode,
                until,
                note: None,
            };
            let answer = acknowledge(
                &alerts,
                &tenant(),
                &actor(),
                Uuid::from_u128(3),
                request,
                at(0),
            )
            .await;
            assert!(
                matches!(&answer, Err(AcknowledgeError::Invalid(e)) if *e == wanted),
                "{answer:?}"
            );
        }
    }
}
