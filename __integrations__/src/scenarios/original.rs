//! The original system's integration set (`__integrations__/scenarios/original.json`, which the core's tests
//! play through `dispatch` too), end to end: its three webhooks registered with the dispatcher, each scenario's
//! events published, and exactly the bodies it lists received, signed, with the webhooks' configured headers.

use super::{Ctx, Outcome, Scenario};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn set() -> &'static Value {
    static SET: OnceLock<Value> = OnceLock::new();
    SET.get_or_init(|| serde_json::from_str(include_str!("../../scenarios/original.json")).unwrap_or_default())
}

/// Registers wh1, wh2 and wh3, each delivering to the consumer's hook of its name.
pub(super) async fn register(c: &Ctx) -> Result<(), String> {
    for (hook, config) in set()["webhooks"].as_object().into_iter().flatten() {
        c.register(hook, config.clone()).await?;
    }
    Ok(())
}

pub(super) fn scenarios() -> Vec<Scenario> {
    let mut all: Vec<Scenario> = set()["scenarios"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, s)| {
            let name = format!("original: {}", s["name"].as_str().unwrap_or("?"));
            Scenario::new(name, move |c| Box::pin(play(c, &set()["scenarios"][i])))
        })
        .collect();
    let sizes =
        set()["bursts"]["sizes"].as_array().map(|s| s.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", "));
    all.push(Scenario::new(format!("original: bursts of {} pings", sizes.unwrap_or_default()), |c| {
        Box::pin(bursts(c))
    }));
    all
}

/// Publishes the scenario's events, then waits for each hook to receive exactly the bodies listed for it.
async fn play(c: &Ctx, scenario: &Value) -> Outcome {
    let expected: BTreeMap<String, Vec<Value>> =
        serde_json::from_value(scenario["expect"].clone()).map_err(|e| format!("scenarios/original.json: {e}"))?;
    let hooks: Vec<String> = set()["webhooks"].as_object().into_iter().flatten().map(|(h, _)| h.clone()).collect();
    let before: BTreeMap<&str, usize> = hooks.iter().map(|h| (h.as_str(), c.consumer.at(h).len())).collect();
    let mut made = Some(0);
    for event in scenario["publish"].as_array().into_iter().flatten() {
        let counted = c.publish_counted(event, None, None).await?;
        made = made.zip(counted).map(|(a, b)| a + b);
    }
    let wanted: usize = expected.values().map(Vec::len).sum();
    check!(made.is_none_or(|m| m == wanted as u64), "{} deliveries made, expected {wanted}", made.unwrap_or_default());
    for (hook, bodies) in &expected {
        let received = c.received(hook, before[hook.as_str()] + bodies.len()).await?;
        let new = &received[before[hook.as_str()]..];
        let mut got: Vec<Value> = new.iter().map(|r| r.json()).collect();
        let mut want = bodies.clone();
        got.sort_by_key(Value::to_string);
        want.sort_by_key(Value::to_string);
        check!(got == want, "{hook} got {got:?}, expected {want:?}");
        let headers = set()["webhooks"][hook]["headers"].as_object().cloned().unwrap_or_default();
        for (name, value) in &headers {
            check!(new.iter().all(|r| r.header(name) == value.as_str()), "{hook}: its configured header {name}");
        }
    }
    for hook in hooks.iter().filter(|h| !expected.contains_key(*h)) {
        let now = c.consumer.at(hook).len();
        check!(now == before[hook.as_str()], "{hook} received {} requests, expected none", now - before[hook.as_str()]);
    }
    Ok(())
}

/// Bursts of pings to one webhook: one delivery each, each with its own `webhook-id`.
async fn bursts(c: &Ctx) -> Outcome {
    let bursts = &set()["bursts"];
    let (hook, event) = (bursts["to"].as_str().unwrap_or_default(), &bursts["event"]);
    for size in bursts["sizes"].as_array().into_iter().flatten().filter_map(Value::as_u64) {
        let before = c.consumer.at(hook).len();
        for _ in 0..size {
            c.publish(event.clone(), 1).await?;
        }
        let received = c.received(hook, before + size as usize).await?;
        let ids: std::collections::HashSet<_> =
            received[before..].iter().filter_map(|r| r.header("webhook-id")).collect();
        check!(ids.len() as u64 == size, "burst of {size}: {} distinct webhook-ids", ids.len());
    }
    Ok(())
}
