//! New deliveries, logged leased to this process, waiting in memory for a worker.
//!
//! Taking them from memory spares the store a lease (a write of every row) per delivery. One queue per
//! webhook, taken from in turn, so that a webhook that uses its whole share of the workers never makes the
//! others' deliveries wait behind its own, and finding the next job for the others costs nothing however long
//! its queue is. Bounded (`LIMIT`): beyond it, new deliveries wait in the store. A job not taken by its
//! `take_by` time is let go: its lease could run out during its attempt, and the store hand it out again; the
//! store makes it due when the lease ends.

use dispatcher_core::model::{Job, WebhookId};
use std::collections::{HashMap, VecDeque};

/// The most jobs held. A fanned-out burst fits, so that it skips the lease round trip (docs/performance.md); a
/// job takes a few hundred bytes, so this is about 25 MB at most.
pub const LIMIT: usize = 49_152;

#[derive(Default)]
pub struct HandOff {
    /// Each job with the time it must be taken by.
    queues: HashMap<WebhookId, VecDeque<(Job, i64)>>,
    /// The webhooks with jobs, in the order they are next taken from.
    turns: VecDeque<WebhookId>,
    len: usize,
}

impl HandOff {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn has_room_for(&self, n: usize) -> bool {
        self.len + n <= LIMIT
    }

    /// Holds `job` until a worker takes it, at the latest at `take_by_ms`.
    pub fn push(&mut self, job: Job, take_by_ms: i64) {
        let webhook_id = job.delivery.webhook_id.clone();
        let queue = self.queues.entry(webhook_id.clone()).or_default();
        if queue.is_empty() {
            self.turns.push_back(webhook_id);
        }
        queue.push_back((job, take_by_ms));
        self.len += 1;
    }

    /// Up to `limit` jobs at `now_ms`, one webhook at a time in turn, oldest first for each, passing over (and
    /// keeping) those of the webhooks in `saturated`. The jobs met past their `take_by` time are let go, and
    /// counted.
    pub fn take(&mut self, limit: usize, saturated: &[WebhookId], now_ms: i64) -> (Vec<Job>, usize) {
        let mut let_go = 0;
        let mut jobs = Vec::new();
        let mut passed_over = Vec::new();
        while jobs.len() < limit {
            let Some(webhook_id) = self.turns.pop_front() else { break };
            if saturated.contains(&webhook_id) {
                passed_over.push(webhook_id);
                continue;
            }
            let Some(queue) = self.queues.get_mut(&webhook_id) else { continue };
            while let Some((job, take_by_ms)) = queue.pop_front() {
                self.len -= 1;
                if take_by_ms >= now_ms {
                    jobs.push(job);
                    break;
                }
                let_go += 1;
            }
            if queue.is_empty() {
                self.queues.remove(&webhook_id);
            } else {
                self.turns.push_back(webhook_id);
            }
        }
        // Passed over, they keep their turn: first when their webhook has room again.
        for webhook_id in passed_over.into_iter().rev() {
            self.turns.push_front(webhook_id);
        }
        (jobs, let_go)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dispatcher_core::dispatch::{direct, Source};

    fn job(webhook: &str, n: i64) -> Job {
        let source = Source { id: n.to_string(), correlation_id: None, traceparent: None };
        Job::first(direct(&source, &WebhookId::from(webhook), "ping", "{}".into()), None)
    }

    fn taken(hand_off: &mut HandOff, limit: usize, saturated: &[&str]) -> Vec<(String, i64)> {
        let saturated: Vec<WebhookId> = saturated.iter().map(|s| WebhookId::from(*s)).collect();
        let (jobs, let_go) = hand_off.take(limit, &saturated, 0);
        assert_eq!(let_go, 0);
        jobs.into_iter().map(|j| (j.delivery.webhook_id.to_string(), j.delivery.source_id.parse().unwrap())).collect()
    }

    #[test]
    fn webhooks_take_turns_and_each_keeps_its_order() {
        let mut hand_off = HandOff::default();
        for (webhook, n) in [("a", 1), ("a", 2), ("a", 3), ("b", 4), ("c", 5), ("b", 6)] {
            hand_off.push(job(webhook, n), 0);
        }
        assert_eq!(hand_off.len(), 6);
        let all = taken(&mut hand_off, 10, &[]);
        let expected = [("a", 1), ("b", 4), ("c", 5), ("a", 2), ("b", 6), ("a", 3)];
        assert_eq!(all, expected.map(|(w, n)| (w.to_owned(), n)));
        assert_eq!(hand_off.len(), 0);
        assert!(taken(&mut hand_off, 10, &[]).is_empty());
    }

    #[test]
    fn saturated_webhooks_keep_their_jobs_and_their_turn() {
        let mut hand_off = HandOff::default();
        for n in 1..=1000 {
            hand_off.push(job("busy", n), 0);
        }
        hand_off.push(job("idle", 1001), 0);
        assert_eq!(taken(&mut hand_off, 5, &["busy"]), vec![("idle".to_owned(), 1001)]);
        assert_eq!(hand_off.len(), 1000);
        assert_eq!(taken(&mut hand_off, 2, &[]), vec![("busy".to_owned(), 1), ("busy".to_owned(), 2)]);
    }

    #[test]
    fn the_limit_bounds_what_is_taken_and_what_is_held() {
        let mut hand_off = HandOff::default();
        for n in 1..=3 {
            hand_off.push(job("a", n), 0);
        }
        assert_eq!(taken(&mut hand_off, 2, &[]).len(), 2);
        assert_eq!(hand_off.len(), 1);
        assert!(hand_off.has_room_for(LIMIT - 1));
        assert!(!hand_off.has_room_for(LIMIT));
    }

    #[test]
    fn a_job_not_taken_by_its_time_is_let_go_and_the_next_one_taken() {
        let mut hand_off = HandOff::default();
        hand_off.push(job("a", 1), 100);
        hand_off.push(job("a", 2), 100);
        hand_off.push(job("a", 3), 300);
        hand_off.push(job("b", 4), 300);
        let (jobs, let_go) = hand_off.take(10, &[], 200);
        let taken: Vec<&str> = jobs.iter().map(|j| j.delivery.source_id.as_str()).collect();
        assert_eq!((taken, let_go), (vec!["3", "4"], 2), "its lease could run out mid-attempt: the store has it");
        assert_eq!(hand_off.len(), 0);
    }
}
