//! `GET /revocations/stream`: the revocation feed as server-sent events.
//!
//! Invariants: only authenticated clients with `revocation_feed = true` subscribe; the
//! live revocations (or those after `Last-Event-ID`) come first, then live ones; a
//! `: keep-alive` comment every 15 s; a subscriber that falls behind, or a feed that lost
//! Redis, ends with an `error` event and the client resumes with `Last-Event-ID`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;

use super::authenticate_client;
use crate::feed::{Entry, Next, Subscription};
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(super::resource("/revocations/stream").route(web::get().to(stream_revocations)));
}

const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Backlog events per body chunk.
const BATCH: usize = 64;
/// Sent first: the reconnection delay EventSource clients use.
const PREAMBLE: &str = "retry: 1000\n\n";
const RESET: &str = "event: reset\ndata: {}\n\n";
const KEEP_ALIVE_COMMENT: &str = ": keep-alive\n\n";
const DOWN: &str = "event: error\ndata: {\"error\":\"temporarily_unavailable\",\"error_description\":\"the revocation feed cannot follow its store; reconnect with Last-Event-ID\"}\n\n";
const LAGGED: &str = "event: error\ndata: {\"error\":\"slow_down\",\"error_description\":\"this subscriber fell behind; reconnect with Last-Event-ID\"}\n\n";

/// Follow revocations: first every live revocation (or, with `Last-Event-ID`, those after
/// it; `event: reset` then every live one when that id is too old), then each new one as
/// it happens, as `id: <id>`, `event: revocation`, `data: <RevocationEvent>`. A subject
/// event covers the user's tokens whose `iat` is below `issued_before`. `: keep-alive`
/// every 15 s; `event: error` before the server ends the stream (reconnect with
/// `Last-Event-ID`).
#[utoipa::path(get, path = "/revocations/stream", tag = "revocation",
    security(("client_basic" = [])),
    params(("Last-Event-ID" = Option<String>, Header, description = "The last event id received: resume after it")),
    responses(
        (status = 200, description = "Server-sent events; each `data` is a revocation event", content_type = "text/event-stream", body = crate::feed::RevocationEvent),
        (status = 401, description = "`invalid_client`", body = ErrorBody),
        (status = 403, description = "`access_denied`: the client is not configured with `revocation_feed = true`", body = ErrorBody),
        (status = 405, description = "Method not allowed", body = ErrorBody),
        (status = 429, description = "`slow_down`: the client has `server.max_feed_subscribers` streams open, or too many authentication failures from this address; `Retry-After`", body = ErrorBody),
        (status = 503, description = "`temporarily_unavailable`: the feed's store (Redis) cannot be reached; `Retry-After`", body = ErrorBody)))]
#[tracing::instrument(name = "revocation_stream", skip_all, fields(client_id))]
pub async fn stream_revocations(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let client = authenticate_client(&state, &req, None, None)?;
    tracing::Span::current().record("client_id", client.id.as_str());
    if !client.revocation_feed {
        return Err(ApiError::AccessDenied(
            "this client may not follow the revocation feed (revocation_feed is off)".into(),
        ));
    }
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok());
    let subscription = state
        .feed
        .subscribe(&client.id, last_event_id, state.clock.now())
        .await?;
    tracing::info!(
        reset = subscription.reset,
        backlog = subscription.backlog.len(),
        "feed subscriber"
    );
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header(("x-accel-buffering", HeaderValue::from_static("no")))
        .streaming(events(subscription)))
}

/// The SSE text of one event.
fn frame(out: &mut String, entry: &Entry) {
    use std::fmt::Write as _;
    let data = serde_json::to_string(&entry.event).unwrap_or_else(|_| "{}".into());
    let _ = write!(out, "id: {}\nevent: revocation\ndata: {data}\n\n", entry.id);
}

struct Feeding {
    subscription: Subscription,
    backlog: std::vec::IntoIter<Arc<Entry>>,
    preamble: Option<String>,
    keep_alive: tokio::time::Interval,
    done: bool,
}

fn events(
    mut subscription: Subscription,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
    let mut preamble = PREAMBLE.to_owned();
    if subscription.reset {
        preamble.push_str(RESET);
    }
    let backlog = std::mem::take(&mut subscription.backlog).into_iter();
    let start = tokio::time::Instant::now() + KEEP_ALIVE;
    let stream = Feeding {
        subscription,
        backlog,
        preamble: Some(preamble),
        keep_alive: tokio::time::interval_at(start, KEEP_ALIVE),
        done: false,
    };
    futures_util::stream::unfold(stream, |mut s| async move {
        if s.done {
            return None;
        }
        if let Some(preamble) = s.preamble.take() {
            return Some((Ok(Bytes::from(preamble)), s));
        }
        let mut chunk = String::new();
        for entry in s.backlog.by_ref().take(BATCH) {
            frame(&mut chunk, &entry);
        }
        if !chunk.is_empty() {
            return Some((Ok(Bytes::from(chunk)), s));
        }
        let text: Bytes = tokio::select! {
            next = s.subscription.next() => match next {
                Next::Event(entry) => {
                    s.keep_alive.reset();
                    frame(&mut chunk, &entry);
                    Bytes::from(chunk)
                }
                Next::Down => {
                    s.done = true;
                    Bytes::from_static(DOWN.as_bytes())
                }
                Next::Lagged => {
                    tracing::info!("feed subscriber fell behind; dropped");
                    s.done = true;
                    Bytes::from_static(LAGGED.as_bytes())
                }
                Next::Closed => return None,
            },
            _ = s.keep_alive.tick() => Bytes::from_static(KEEP_ALIVE_COMMENT.as_bytes()),
        };
        Some((Ok(text), s))
    })
}
