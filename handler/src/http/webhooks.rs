//! `/webhooks`: register, read, replace, patch and delete webhooks, their signing secret, a ping, their
//! deliveries, and recovering the ones a disabled webhook missed.

use super::answer::{Answer, NoContent, Tagged};
use super::auth::Caller;
use super::extract::{
    ConfigurationSchema, DeliveriesQuery, Id, IfMatch, JsonBody, MergePatch, Query, RegistrationSchema,
};
use super::problem::ApiError;
use super::views::{
    DeliveryQueuedView, DeliveryView, HealthView, Page, RecoverRequest, RecoveredView, SecretView, WebhookView,
};
use super::{errors, AppState};
use aide::axum::routing::{get_with, post_with};
use aide::axum::ApiRouter;
use axum::extract::State;
use dispatcher_core::model::{Problem, Report};
use serde_json::Value;
use std::time::UNIX_EPOCH;

type Answered<const N: u16, T> = Result<Answer<N, T>, ApiError>;

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api/v1/webhooks",
            get_with(list, |op| op.id("listWebhooks").summary("All webhooks")).post_with(create, |op| {
                errors(
                    op.id("createWebhook").summary("Register a webhook; the answer holds its signing secret"),
                    &[400, 409, 415, 422],
                )
            }),
        )
        .api_route(
            "/api/v1/webhooks/{id}",
            get_with(get, |op| errors(op.id("getWebhook").summary("One webhook"), &[404]))
                .put_with(replace, |op| {
                    errors(
                        op.id("replaceWebhook").summary("Replace a webhook's configuration"),
                        &[400, 404, 409, 412, 415, 422],
                    )
                })
                .patch_with(patch, |op| {
                    errors(
                        op.id("patchWebhook").summary("Change some fields (JSON merge patch)"),
                        &[400, 404, 409, 412, 415, 422],
                    )
                })
                .delete_with(delete, |op| {
                    errors(op.id("deleteWebhook").summary("Delete a webhook; its pending deliveries end"), &[404])
                }),
        )
        .api_route(
            "/api/v1/webhooks/{id}/secret",
            get_with(secret, |op| {
                errors(
                    op.id("getWebhookSecret").summary("The signing secret (and the previous one during a rotation)"),
                    &[404],
                )
            }),
        )
        .api_route(
            "/api/v1/webhooks/{id}/rotate-secret",
            post_with(rotate, |op| {
                errors(
                    op.id("rotateWebhookSecret")
                        .summary("A new signing secret; the old one keeps signing for 24 hours"),
                    &[404, 409],
                )
            }),
        )
        .api_route(
            "/api/v1/webhooks/{id}/ping",
            post_with(ping, |op| {
                errors(
                    op.id("pingWebhook").summary("Deliver {\"name\":\"ping\",\"payload\":{}} to this webhook now"),
                    &[404],
                )
            }),
        )
        .api_route(
            "/api/v1/webhooks/{id}/recover",
            post_with(recover, |op| {
                errors(
                    op.id("recoverWebhook")
                        .summary("Send again the webhook's dead and skipped deliveries created in a time window"),
                    &[400, 404, 409, 415],
                )
            }),
        )
        .api_route(
            "/api/v1/webhooks/{id}/health",
            get_with(health, |op| {
                errors(
                    op.id("getWebhookHealth")
                        .summary("Deliveries and success rate over the last 24 hours, and the latest failure"),
                    &[404],
                )
            }),
        )
        .api_route(
            "/api/v1/webhooks/{id}/deliveries",
            get_with(deliveries, |op| {
                errors(
                    op.id("listDeliveries").summary("A webhook's deliveries with their attempts, newest first"),
                    &[400, 404],
                )
            }),
        )
}

async fn list(State(service): State<AppState>, Caller(access): Caller) -> Answered<200, Vec<WebhookView>> {
    Ok(Answer(service.list_webhooks(&access).await?.iter().map(|w| WebhookView::of(w, false)).collect()))
}

async fn create(
    State(service): State<AppState>,
    Caller(access): Caller,
    JsonBody(body, _): JsonBody<RegistrationSchema>,
) -> Answered<201, WebhookView> {
    Ok(Answer(WebhookView::of(&service.create_webhook(&access, &body).await?, true)))
}

async fn get(
    State(service): State<AppState>,
    Caller(access): Caller,
    Id(id): Id,
) -> Result<Tagged<WebhookView>, ApiError> {
    let (webhook, version) = service.versioned_webhook(&access, &id.into()).await?;
    Ok(Tagged(WebhookView::of(&webhook, false), version))
}

async fn replace(
    State(service): State<AppState>,
    Caller(access): Caller,
    Id(id): Id,
    IfMatch(if_match): IfMatch,
    JsonBody(body, _): JsonBody<ConfigurationSchema>,
) -> Result<Tagged<WebhookView>, ApiError> {
    let (webhook, version) = service.replace_webhook(&access, &id.into(), &body, if_match.as_deref()).await?;
    Ok(Tagged(WebhookView::of(&webhook, false), version))
}

async fn patch(
    State(service): State<AppState>,
    Caller(access): Caller,
    Id(id): Id,
    IfMatch(if_match): IfMatch,
    JsonBody(patch, _): JsonBody<MergePatch<ConfigurationSchema>>,
) -> Result<Tagged<WebhookView>, ApiError> {
    let (webhook, version) = service.patch_webhook(&access, &id.into(), &patch, if_match.as_deref()).await?;
    Ok(Tagged(WebhookView::of(&webhook, false), version))
}

async fn delete(State(service): State<AppState>, Caller(access): Caller, Id(id): Id) -> Result<NoContent, ApiError> {
    service.delete_webhook(&access, &id.into()).await?;
    Ok(NoContent)
}

async fn secret(State(service): State<AppState>, Caller(access): Caller, Id(id): Id) -> Answered<200, SecretView> {
    Ok(Answer(SecretView::of(&service.webhook(&access, &id.into()).await?, service.now_ms())))
}

async fn rotate(State(service): State<AppState>, Caller(access): Caller, Id(id): Id) -> Answered<200, SecretView> {
    Ok(Answer(SecretView::of(&service.rotate_secret(&access, &id.into()).await?, service.now_ms())))
}

async fn ping(
    State(service): State<AppState>,
    Caller(access): Caller,
    Id(id): Id,
) -> Answered<202, DeliveryQueuedView> {
    Ok(Answer(DeliveryQueuedView { id: service.ping(&access, &id.into()).await? }))
}

async fn recover(
    State(service): State<AppState>,
    Caller(access): Caller,
    Id(id): Id,
    JsonBody(body, _): JsonBody<RecoverRequest>,
) -> Answered<202, RecoveredView> {
    let time = |field: &str, required: bool| match body.get(field) {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(text)) => rfc3339_ms(text)
            .map(Some)
            .ok_or_else(|| Problem::new(field, format!("{text:?} is not an RFC 3339 time like 2026-01-31T12:00:00Z"))),
        other => Err(Problem::new(
            field,
            format!("{} where an RFC 3339 time is expected", other.map_or("nothing".to_owned(), |v| v.to_string())),
        )),
    };
    let (since, until) = (time("since", true), time("until", false));
    let problems: Vec<Problem> = [&since, &until].into_iter().filter_map(|r| r.as_ref().err().cloned()).collect();
    let (Ok(Some(since)), Ok(until)) = (since, until) else {
        let report = Report::check(problems).err().unwrap_or_else(|| Report::single("since", "is missing"));
        return Err(ApiError::invalid("invalid-recovery", "the recovery window is invalid", report));
    };
    let until = until.unwrap_or_else(|| service.now_ms() + 1);
    Ok(Answer(RecoveredView { deliveries: service.recover(&access, &id.into(), since, until).await? }))
}

async fn health(State(service): State<AppState>, Caller(access): Caller, Id(id): Id) -> Answered<200, HealthView> {
    Ok(Answer(service.health(&access, &id.into()).await?.into()))
}

async fn deliveries(
    State(service): State<AppState>,
    Caller(access): Caller,
    Id(id): Id,
    Query(query): Query<DeliveriesQuery>,
) -> Answered<200, Page<DeliveryView>> {
    let found = service.deliveries(&access, &id.into(), query.status, query.limit()?, query.cursor()).await?;
    Ok(Answer(Page::of(found, DeliveryView::from)))
}

/// Milliseconds since the Unix epoch of an RFC 3339 time (any offset), or of the looser form humantime reads
/// (a space for `T`, no `Z`: UTC), as earlier versions took.
fn rfc3339_ms(text: &str) -> Option<i64> {
    let strict = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
    strict.or_else(|| {
        let loose = humantime::parse_rfc3339_weak(text).ok()?;
        Some(loose.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64))
    })
}
