//! Auto-disable: a webhook whose attempts have all failed for at least a window (at least three failed attempts,
//! no success in between) is disabled at its first failed attempt past the window, instead of being retried for
//! days. Its failure streak is kept on the webhook; a success ends it.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The fewest failed attempts that disable a webhook, however long ago the first was.
pub const MIN_FAILED_ATTEMPTS: u32 = 3;

/// Failed attempts in a row, since the first of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureStreak {
    pub since_ms: i64,
    pub failed: u32,
}

/// What a failed attempt at `now_ms` does to a webhook's streak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// The streak goes on as this; `record` when it is worth writing (its start and first counts: past
    /// [`MIN_FAILED_ATTEMPTS`] only its start matters).
    Continue { streak: FailureStreak, record: bool },
    /// Disable the webhook: every attempt failed since `streak.since_ms`.
    Disable { streak: FailureStreak },
}

/// The streak after a failed attempt at `now_ms`, and whether the webhook is to be disabled, given the window
/// (`None`: auto-disable is off).
pub fn after_failure(streak: Option<FailureStreak>, now_ms: i64, window: Option<Duration>) -> AfterFailure {
    let streak = match streak {
        Some(s) => FailureStreak { since_ms: s.since_ms, failed: s.failed.saturating_add(1) },
        None => FailureStreak { since_ms: now_ms, failed: 1 },
    };
    let failing_for = Duration::from_millis(u64::try_from(now_ms - streak.since_ms).unwrap_or(0));
    match window {
        Some(window) if streak.failed >= MIN_FAILED_ATTEMPTS && failing_for >= window => {
            AfterFailure::Disable { streak }
        }
        _ => AfterFailure::Continue { streak, record: streak.failed <= MIN_FAILED_ATTEMPTS },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Option<Duration> = Some(Duration::from_secs(60));

    fn fail(times: &[i64], window: Option<Duration>) -> AfterFailure {
        let mut last = None;
        let mut streak = None;
        for &at in times {
            let after = after_failure(streak, at, window);
            streak = Some(match after {
                AfterFailure::Continue { streak, .. } | AfterFailure::Disable { streak } => streak,
            });
            last = Some(after);
        }
        last.unwrap()
    }

    #[test]
    fn three_failures_spanning_the_window_disable_at_the_first_past_it() {
        assert!(matches!(fail(&[0, 10_000, 59_999], WINDOW), AfterFailure::Continue { .. }));
        assert_eq!(
            fail(&[0, 10_000, 59_999, 60_000], WINDOW),
            AfterFailure::Disable { streak: FailureStreak { since_ms: 0, failed: 4 } }
        );
        // Two failures, however far apart, are not enough.
        assert!(matches!(fail(&[0, 600_000], WINDOW), AfterFailure::Continue { .. }));
        assert!(matches!(fail(&[0, 1, 600_000], WINDOW), AfterFailure::Disable { .. }));
        // Off: never.
        assert!(matches!(fail(&[0, 1, 2, 600_000], None), AfterFailure::Continue { .. }));
    }

    #[test]
    fn only_the_first_counts_of_a_streak_are_worth_recording() {
        let records: Vec<bool> = (1..=5)
            .map(|n| match fail(&vec![0; n], WINDOW) {
                AfterFailure::Continue { record, .. } => record,
                AfterFailure::Disable { .. } => true,
            })
            .collect();
        assert_eq!(records, [true, true, true, false, false]);
    }
}
