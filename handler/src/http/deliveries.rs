//! `/deliveries`: one delivery with every attempt, and sending it again.

use super::answer::Answer;
use super::auth::Caller;
use super::extract::Id;
use super::problem::ApiError;
use super::views::{DeliveryQueuedView, DeliveryView};
use super::{errors, AppState};
use aide::axum::routing::{get_with, post_with};
use aide::axum::ApiRouter;
use axum::extract::State;

pub fn routes() -> ApiRouter<AppState> {
    ApiRouter::new()
        .api_route(
            "/api/v1/deliveries/{id}",
            get_with(get, |op| errors(op.id("getDelivery").summary("One delivery with every attempt"), &[404])),
        )
        .api_route(
            "/api/v1/deliveries/{id}/retry",
            post_with(retry, |op| {
                errors(op.id("retryDelivery").summary("Send a delivery again, with the same webhook-id"), &[404, 409])
            }),
        )
}

async fn get(
    State(service): State<AppState>,
    Caller(access): Caller,
    Id(id): Id,
) -> Result<Answer<200, DeliveryView>, ApiError> {
    Ok(Answer(DeliveryView::from(service.delivery(&access, &id).await?)))
}

async fn retry(
    State(service): State<AppState>,
    Caller(access): Caller,
    Id(id): Id,
) -> Result<Answer<202, DeliveryQueuedView>, ApiError> {
    Ok(Answer(DeliveryQueuedView { id: service.retry(&access, &id).await? }))
}
