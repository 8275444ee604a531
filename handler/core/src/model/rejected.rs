//! An event that was refused, with why: kept so that a producer can see what went wrong.

use super::Problem;
use serde::{Deserialize, Serialize};

/// A refused event: its id, when it came, every problem found, and the start of what was received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejected {
    pub id: String,
    pub received_at_ms: i64,
    pub problems: Vec<Problem>,
    /// The start of what was received (at most [`Rejected::BODY_KEPT`] bytes).
    pub body: String,
}

impl Rejected {
    /// How much of a refused body is kept: enough to see what it was, never a whole 256 KiB event.
    pub const BODY_KEPT: usize = 4096;

    pub fn new(id: String, received_at_ms: i64, problems: Vec<Problem>, body: &[u8]) -> Rejected {
        let body = String::from_utf8_lossy(&body[..body.len().min(Self::BODY_KEPT)]).into_owned();
        Rejected { id, received_at_ms, problems, body }
    }

    /// Every problem on one line, for logs and invocation answers.
    pub fn reason(&self) -> String {
        self.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_start_of_the_body_is_kept() {
        let body = "é".repeat(Rejected::BODY_KEPT);
        let rejected =
            Rejected::new("e".into(), 1, vec![Problem::new("a", "b"), Problem::new("c", "d")], body.as_bytes());
        assert!(rejected.body.len() <= Rejected::BODY_KEPT + 2, "{}", rejected.body.len());
        assert!(rejected.body.starts_with("éé"));
        assert_eq!(rejected.reason(), "a: b; c: d");
    }
}
