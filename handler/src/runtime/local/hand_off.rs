//! Deliveries accepted by this process and leased to it at once, waiting in memory for a worker.
//!
//! Taking them from memory spares the store a lease (a write of every row) per delivery. One queue per
//! webhook, taken from in turn, so that a webhook that uses its whole share of the workers never makes the
//! others' deliveries wait behind its own, and finding the next job for the others costs nothing however long
//! its queue is. Bounded (`LIMIT`): beyond it, accepted deliveries wait in the store as due.

use dispatcher_core::model::{Job, WebhookId};
use std::collections::{HashMap, VecDeque};

/// The most jobs held, give or take the accepts under way (room is checked before the store write, and the jobs
/// are added after it, without holding the lock across). A fanned-out burst fits, so that it skips the lease round
/// trip (docs/performance.md); a job takes a few hundred bytes, so this is about 25 MB at most.
pub const LIMIT: usize = 49_152;

#[derive(Default)]
pub struct HandOff {
    queues: HashMap<WebhookId, VecDeque<Job>>,
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

    pub fn push(&mut self, job: Job) {
        let webhook_id = job.delivery.webhook_id.clone();
        let queue = self.queues.entry(webhook_id.clone()).or_default();
        if queue.is_empty() {
            self.turns.push_back(webhook_id);
        }
        queue.push_back(job);
        self.len += 1;
    }

    /// Up to `limit` jobs, one webhook at a time in turn, oldest first for each, passing over (and keeping)
    /// those of the webhooks in `saturated`.
    pub fn take(&mut self, limit: usize, saturated: &[WebhookId]) -> Vec<Job> {
        let mut jobs = Vec::new();
        let mut passed_over = Vec::new();
        while jobs.len() < limit {
            let Some(webhook_id) = self.turns.pop_front() else { break };
            if saturated.contains(&webhook_id) {
                passed_over.push(webhook_id);
                continue;
            }
            let Some(queue) = self.queues.get_mut(&webhook_id) else { continue };
            if let Some(job) = queue.pop_front() {
                jobs.push(job);
                self.len -= 1;
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
        jobs
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
        let jobs = hand_off.take(limit, &saturated);
        jobs.into_iter().map(|j| (j.delivery.webhook_id.to_string(), j.delivery.source_id.parse().unwrap())).collect()
    }

    #[test]
    fn webhooks_take_turns_and_each_keeps_its_order() {
        let mut hand_off = HandOff::default();
        for (webhook, n) in [("a", 1), ("a", 2), ("a", 3), ("b", 4), ("c", 5), ("b", 6)] {
            hand_off.push(job(webhook, n));
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
            hand_off.push(job("busy", n));
        }
        hand_off.push(job("idle", 1001));
        assert_eq!(taken(&mut hand_off, 5, &["busy"]), vec![("idle".to_owned(), 1001)]);
        assert_eq!(hand_off.len(), 1000);
        assert_eq!(taken(&mut hand_off, 2, &[]), vec![("busy".to_owned(), 1), ("busy".to_owned(), 2)]);
    }

    #[test]
    fn the_limit_bounds_what_is_taken_and_what_is_held() {
        let mut hand_off = HandOff::default();
        for n in 1..=3 {
            hand_off.push(job("a", n));
        }
        assert_eq!(taken(&mut hand_off, 2, &[]).len(), 2);
        assert_eq!(hand_off.len(), 1);
        assert!(hand_off.has_room_for(LIMIT - 1));
        assert!(!hand_off.has_room_for(LIMIT));
    }
}
