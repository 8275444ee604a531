//! A webhook's rate limit: at most `rateLimit` deliveries in any one-second window. The generic cell rate
//! algorithm with a burst of one: each delivery takes the webhook's next free slot, one interval (a second
//! divided by the limit) after the one before, or now when that has passed. Slots are then at least an interval
//! apart, so any one-second window holds at most the limit; a token bucket whose burst equals the limit would let
//! twice the limit through in its first second.
//!
//! A delivery whose slot lies ahead reserves it and waits for it: a backlog is spaced once, instead of every
//! waiting delivery asking again at every slot.

/// A slot taken: when the delivery goes, and the webhook's theoretical arrival time (TAT), its next free slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub at_us: i64,
    pub tat_us: i64,
}

impl Slot {
    /// When the delivery goes, in milliseconds rounded up: never before its slot.
    pub fn at_ms(&self) -> i64 {
        (self.at_us + 999).div_euclid(1000)
    }
}

/// The milliseconds between two deliveries of a webhook limited to `limit` a second, rounded up.
pub fn interval_ms(limit: u32) -> i64 {
    (interval_us(limit) + 999) / 1000
}

/// The microseconds between two deliveries of a webhook limited to `limit` a second, rounded up: `limit` of them
/// span a whole second or more.
pub fn interval_us(limit: u32) -> i64 {
    let limit = i64::from(limit.max(1));
    (1_000_000 + limit - 1) / limit
}

/// The slot of a delivery asking at `now_us` (microseconds), given the webhook's TAT (`None`: nothing went yet).
pub fn reserve(tat_us: Option<i64>, now_us: i64, limit: u32) -> Slot {
    let at_us = tat_us.map_or(now_us, |tat| tat.max(now_us));
    Slot { at_us, tat_us: at_us + interval_us(limit) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// When deliveries asking at `asks` (µs) go, each at the slot it reserved.
    fn sent_at(asks: &[i64], limit: u32) -> Vec<i64> {
        let mut asks = asks.to_vec();
        asks.sort_unstable();
        let mut tat = None;
        asks.iter()
            .map(|&now| {
                let slot = reserve(tat, now, limit);
                tat = Some(slot.tat_us);
                slot.at_us
            })
            .collect()
    }

    #[test]
    fn a_burst_is_spaced_one_interval_apart_and_a_quiet_webhook_sends_at_once() {
        assert_eq!(sent_at(&[0; 5], 5), [0, 200_000, 400_000, 600_000, 800_000]);
        assert_eq!(sent_at(&[0, 5_000_000], 5), [0, 5_000_000]);
        assert_eq!(interval_us(3), 333_334);
        assert_eq!(interval_us(0), 1_000_000);
        assert_eq!(
            (interval_ms(3), reserve(None, 1_500, 3).at_ms(), reserve(Some(1_501), 1_500, 3).at_ms()),
            (334, 2, 2)
        );
    }

    proptest! {
        // Whatever the arrivals: any one-second window holds at most the limit, no delivery goes before it asked,
        // and none waits longer than the deliveries ahead of it need.
        #[test]
        fn no_second_holds_more_than_the_limit(asks in prop::collection::vec(0i64..3_000_000, 1..60), limit in 1u32..20) {
            let sent = sent_at(&asks, limit);
            let mut sorted = asks.clone();
            sorted.sort_unstable();
            for (i, (&at, &asked)) in sent.iter().zip(&sorted).enumerate() {
                prop_assert!(at >= asked);
                prop_assert!(at == asked || at == sent[i - 1] + interval_us(limit), "slot {} waited too long", i);
            }
            for &start in &sent {
                let in_window = sent.iter().filter(|&&t| t >= start && t < start + 1_000_000).count();
                prop_assert!(in_window <= limit as usize, "{} in the second from {}", in_window, start);
            }
        }
    }
}
