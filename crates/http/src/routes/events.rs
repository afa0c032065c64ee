//! `GET /api/events`: the live stream of the tenant's events (Server-Sent Events), for every
//! role.

use actix_web::{http::Method, web, HttpRequest, HttpResponse, Responder as _};
use actix_web_lab::sse;
use app::events::{EventHub, OpenStreamError, StreamItem, StreamRequest};
use futures_util::StreamExt as _;

use crate::api::alerts::group_not_found;
use crate::api::events::{last_event_id, reset_data, EventParams};
use crate::auth::StreamCaller;
use crate::error::{ApiError, ErrorBody};
use crate::events::StreamResponse;

/// The header a reconnecting `EventSource` sends.
const LAST_EVENT_ID: &str = "Last-Event-ID";

/// The tenant's events as they happen (Server-Sent Events).
///
/// An endless `text/event-stream` answer, as a browser's `EventSource` reads it. Each event: `id:` its seq (increasing per tenant), `event:`
/// its type, `data:` JSON (`AlertEventData`, `WindowEventData` or `DeviceStateData`). With
/// `Last-Event-ID`, every retained event after it comes first, in order, then live ones, never
/// one twice; if some it missed are no longer retained, an `event: reset` (data `ResetData`)
/// comes first and the replay starts at the oldest retained event. Without it, events from now
/// on. A comment (`: keep-alive`) at least every 15 s. A client that falls too far behind is
/// disconnected (reconnect with `Last-Event-ID`). Every role may read.
#[utoipa::path(
    get, path = "/api/events", tag = "events", operation_id = "stream_events",
    params(
        EventParams,
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event received: replay what followed it"),
    ),
    responses(
        (status = 200, description = "An endless event stream: `id: <seq>`, `event: <type>`, `data: <JSON>` per event; `: keep-alive` comments; `event: reset` when events a reconnecting client missed are gone", content_type = "text/event-stream", body = String),
        (status = 401, description = "Missing or invalid token (header or `access_token`)", body = ErrorBody),
        (status = 404, description = "`group_id` names no group of the tenant (`Group … not found`)", body = ErrorBody),
        (status = 422, description = "Unknown event type in `types`, a bad `Last-Event-ID`, or an unknown query parameter; `detail` names it", body = ErrorBody),
        (status = 503, description = "Too many streams open on this instance, the instance is shutting down, or the store is unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn stream(
    caller: StreamCaller,
    hub: web::Data<EventHub>,
    settings: web::Data<StreamResponse>,
    params: web::Query<EventParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let request = StreamRequest {
        last_event_id: last_event_id(req.headers().get(LAST_EVENT_ID).map(|v| v.as_bytes()))?,
        types: params.types()?,
        group: params.group()?,
    };
    let refused = |e| match e {
        OpenStreamError::Busy { limit } => ApiError::busy(format!(
            "Too many event streams are open on this instance (at most {limit}); retry later"
        )),
        OpenStreamError::Closed => {
            ApiError::busy("The server is shutting down; reconnect to another instance")
        }
        OpenStreamError::GroupNotFound => group_not_found(params.group_id().unwrap_or_default()),
        OpenStreamError::Store(e) => e.into(),
    };
    if req.method() == Method::HEAD {
        // The headers a GET would get, and no stream opened (HEAD waits for no body).
        hub.check(&caller.0.tenant, &request)
            .await
            .map_err(refused)?;
        return Ok(
            sse::Sse::from_infallible_stream(futures_util::stream::empty())
                .respond_to(&req)
                .map_into_boxed_body(),
        );
    }
    let events = hub.open(&caller.0.tenant, request).await.map_err(refused)?;
    let frames = events.map(|item| match item {
        StreamItem::Event(event) => sse::Data::new(event.data.clone())
            .id(event.seq.to_string())
            .event(event.event_type.as_str())
            .into(),
        // No `id:`: the client's last id stays the one it sent until a real event arrives.
        StreamItem::Reset { after } => sse::Data::new(reset_data(after)).event("reset").into(),
    });
    Ok(sse::Sse::from_infallible_stream(frames)
        .with_keep_alive(settings.keep_alive)
        .respond_to(&req)
        .map_into_boxed_body())
}
