//! Cosmos DB throttling: a request answered 429 (its request units ran out), 449 (retry with) or 503 is tried
//! again after the wait the service asks for (`x-ms-retry-after-ms`), within a budget; past it, the error goes
//! up, the invocation fails, and Service Bus delivers the message again. The SDK's own throttle retries are
//! turned off (`connect`), so that this is the one loop, and each wait is logged.
//!
//! Trying again is safe for every write of the store: a create that went through answers 409 the second time,
//! a replace 412 (both read again as a lost race), and an upsert writes the same item twice.

use azure_data_cosmos::CosmosError;
use std::future::Future;
use std::time::Duration;

/// How long one request may wait out throttling in all: well inside the lock of a Service Bus message (one
/// minute on the events queue), so that the invocation fails before the message is given to another instance.
pub const BUDGET: Duration = Duration::from_secs(20);

/// The wait when the service names none: Cosmos DB's own hint is usually a few to a few hundred milliseconds.
const DEFAULT_WAIT: Duration = Duration::from_millis(100);

/// How long the service asks to wait before `error`'s request is tried again, when it is throttling.
fn wait_asked(error: &CosmosError) -> Option<Duration> {
    let status = error.status();
    // A 503 the SDK made up for a connection that failed is no request to wait: the store is unreachable, and
    // the invocation fails at once.
    let unavailable = status.is_service_unavailable() && !status.is_transport_generated_503();
    if !(status.is_throttled() || status.is_retry_with() || unavailable) {
        return None;
    }
    let asked = error.response().and_then(|r| r.headers().retry_after_ms).map(Duration::from_millis);
    Some(asked.unwrap_or(DEFAULT_WAIT))
}

/// Runs `request` (made again for each try) until it is not throttled, or until the waits would pass `budget`.
pub async fn unthrottled<T, F, Fut>(what: &str, budget: Duration, mut request: F) -> Result<T, CosmosError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CosmosError>>,
{
    let mut waited = Duration::ZERO;
    loop {
        let error = match request().await {
            Err(error) => error,
            done => return done,
        };
        let Some(wait) = wait_asked(&error) else { return Err(error) };
        if waited + wait > budget {
            tracing::warn!(waited_ms = waited.as_millis() as u64, "Cosmos DB still throttles {what}: giving up");
            return Err(error);
        }
        let status = u16::from(error.status().status_code());
        tracing::warn!(
            status,
            wait_ms = wait.as_millis() as u64,
            waited_ms = waited.as_millis() as u64,
            "Cosmos DB throttles {what}: waiting as it asks"
        );
        tokio::time::sleep(wait).await;
        waited += wait;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::http::StatusCode;
    use azure_data_cosmos::CosmosStatus;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn answer(status: StatusCode) -> CosmosError {
        CosmosError::builder().with_status(CosmosStatus::new(status)).build()
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_request_is_tried_again_until_it_goes_through_or_the_budget_is_spent() {
        let tries = AtomicU32::new(0);
        let throttled_twice = || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0 => Err(answer(StatusCode::TooManyRequests)),
                1 => Err(answer(StatusCode::ServiceUnavailable)),
                _ => Ok("written"),
            }
        };
        let started = tokio::time::Instant::now();
        assert_eq!(unthrottled("writing", BUDGET, throttled_twice).await.unwrap(), "written");
        assert_eq!((tries.load(Ordering::SeqCst), started.elapsed()), (3, DEFAULT_WAIT * 2));

        let tries = AtomicU32::new(0);
        let always = || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(answer(StatusCode::TooManyRequests))
        };
        let error = unthrottled("writing", Duration::from_secs(1), always).await.unwrap_err();
        assert!(error.status().is_throttled());
        assert_eq!(tries.load(Ordering::SeqCst), 11, "ten waits of 100 ms fill a budget of 1 s");

        let tries = AtomicU32::new(0);
        let conflict = || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(answer(StatusCode::Conflict))
        };
        assert!(unthrottled("writing", BUDGET, conflict).await.unwrap_err().status().is_conflict());
        assert_eq!(tries.load(Ordering::SeqCst), 1, "any other answer goes up at once");

        let tries = AtomicU32::new(0);
        let unreachable = || async {
            tries.fetch_add(1, Ordering::SeqCst);
            let status = CosmosStatus::new(StatusCode::ServiceUnavailable).with_sub_status(20003);
            Err::<(), _>(CosmosError::builder().with_status(status).build())
        };
        assert!(unthrottled("writing", BUDGET, unreachable).await.is_err());
        assert_eq!(tries.load(Ordering::SeqCst), 1, "a connection that failed is not throttling");
    }
}
