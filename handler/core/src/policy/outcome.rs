//! What an attempt's result means: delivered, try again, or give up (and why).

use std::time::Duration;

/// What came back from one HTTP attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The receiver answered with this status (and maybe a `Retry-After`).
    Status { code: u16, retry_after: Option<Duration> },
    /// No answer: the reason, and whether trying again can help.
    Failed { error: String, transient: bool },
}

impl Response {
    /// `HTTP 503`, or the error: what came back, in a few words.
    pub fn describe(&self) -> String {
        match self {
            Response::Status { code, .. } => format!("HTTP {code}"),
            Response::Failed { error, .. } => error.clone(),
        }
    }
}

/// The verdict on one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Worth another attempt, no sooner than `retry_after` when the receiver asked.
    Retry {
        retry_after: Option<Duration>,
    },
    /// Not worth another attempt.
    Dead {
        reason: String,
    },
    /// 410 Gone: the receiver wants no more deliveries; the webhook is disabled.
    Gone,
}

/// 2xx is delivered; timeouts, network errors, 408, 425, 429 and 5xx are retried; 410 disables the webhook;
/// redirects (never followed) and other 4xx are not retried.
pub fn classify(response: &Response) -> Verdict {
    match *response {
        Response::Status { code: 200..=299, .. } => Verdict::Delivered,
        Response::Status { code: 410, .. } => Verdict::Gone,
        Response::Status { code: 408 | 425 | 429 | 500..=599, retry_after } => Verdict::Retry { retry_after },
        Response::Status { code: code @ 300..=399, .. } => {
            Verdict::Dead { reason: format!("HTTP {code}: redirects are not followed; register the final URL") }
        }
        Response::Status { code, .. } => Verdict::Dead { reason: format!("HTTP {code} is not retried") },
        Response::Failed { transient: true, .. } => Verdict::Retry { retry_after: None },
        Response::Failed { ref error, transient: false } => Verdict::Dead { reason: error.clone() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Verdict {
        classify(&Response::Status { code, retry_after: None })
    }

    #[test]
    fn statuses_are_classified_as_standard_webhooks_recommends() {
        for code in [200, 201, 202, 204, 299] {
            assert_eq!(status(code), Verdict::Delivered, "{code}");
        }
        for code in [408, 425, 429, 500, 502, 503, 504, 599] {
            assert_eq!(status(code), Verdict::Retry { retry_after: None }, "{code}");
        }
        assert_eq!(status(410), Verdict::Gone);
        for code in [400, 401, 403, 404, 409, 413, 422] {
            assert_eq!(status(code), Verdict::Dead { reason: format!("HTTP {code} is not retried") });
        }
        for code in [301, 302, 307, 308] {
            assert!(matches!(status(code), Verdict::Dead { reason } if reason.contains("redirects are not followed")));
        }
        let asked = Some(Duration::from_secs(30));
        assert_eq!(
            classify(&Response::Status { code: 429, retry_after: asked }),
            Verdict::Retry { retry_after: asked }
        );
    }

    #[test]
    fn network_failures_are_retried_unless_permanent() {
        assert_eq!(
            classify(&Response::Failed { error: "timed out".into(), transient: true }),
            Verdict::Retry { retry_after: None }
        );
        assert_eq!(
            classify(&Response::Failed { error: "refused: loopback".into(), transient: false }),
            Verdict::Dead { reason: "refused: loopback".into() }
        );
    }
}
