//! When the store fails (a full disk, a file gone read-only), the workers wait before they ask it again, twice as
//! long after each failed try up to [`LONGEST`], and log one line per step saying what fails and since when,
//! instead of a line per attempt. The first success after that logs that the store is back.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

const FIRST: Duration = Duration::from_millis(100);
/// The longest wait: a store that comes back is used again within it.
pub(super) const LONGEST: Duration = Duration::from_secs(5);

struct Outage {
    since: Instant,
    since_wall: SystemTime,
    step: Duration,
    /// Until when the workers leave the store alone; failures before then are of tries already under way.
    until: Instant,
}

#[derive(Default)]
pub(super) struct StoreBackoff(Mutex<Option<Outage>>);

impl StoreBackoff {
    /// How long to wait before the store is asked again: zero while it works.
    pub(super) fn wait(&self) -> Duration {
        let outage = self.0.lock().ok();
        outage.and_then(|o| o.as_ref().map(|o| o.until.saturating_duration_since(Instant::now()))).unwrap_or_default()
    }

    /// A try of `what` failed. A failure after the current wait was served starts the next, longer one, and logs
    /// it; failures of tries made before then only confirm it.
    pub(super) fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        let Ok(mut outage) = self.0.lock() else { return };
        let now = Instant::now();
        let step = match outage.as_ref() {
            None => FIRST,
            Some(o) if now >= o.until => (o.step * 2).min(LONGEST),
            Some(_) => return,
        };
        let (since, since_wall) = outage.as_ref().map_or((now, SystemTime::now()), |o| (o.since, o.since_wall));
        *outage = Some(Outage { since, since_wall, step, until: now + step });
        let since_text = humantime::format_rfc3339_seconds(since_wall);
        tracing::error!(%error, since = %since_text, retry_in_ms = step.as_millis() as u64,
            "the store fails {what}: waiting before trying again");
    }

    /// A try succeeded: the store is back.
    pub(super) fn succeeded(&self) {
        let Ok(mut outage) = self.0.lock() else { return };
        if let Some(o) = outage.take() {
            let down = humantime::format_duration(Duration::from_secs(o.since.elapsed().as_secs().max(1)));
            tracing::info!(%down, "the store works again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_waits_twice_as_long_and_tries_under_way_do_not_advance_it() {
        let backoff = StoreBackoff::default();
        assert_eq!(backoff.wait(), Duration::ZERO);
        backoff.failed("leasing", &"disk full");
        let first = backoff.wait();
        assert!(first > Duration::from_millis(50) && first <= FIRST, "{first:?}");
        backoff.failed("recording an attempt", &"disk full");
        assert!(backoff.wait() <= FIRST, "a failure during the wait does not lengthen it");
        std::thread::sleep(first);
        backoff.failed("leasing", &"disk full");
        assert!(backoff.wait() > FIRST, "the next step is longer: {:?}", backoff.wait());
        backoff.succeeded();
        assert_eq!(backoff.wait(), Duration::ZERO);
    }
}
