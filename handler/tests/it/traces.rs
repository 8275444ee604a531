//! Traces: a trace the publisher starts (`traceparent` on `POST /events`, or on a Service Bus message) ends at
//! the receiver, whose request carries the `traceparent` of its attempt's span; the spans and the metrics go
//! out with OTLP (HTTP, protobuf), decoded here as a collector decodes them.

use crate::functions_serve::{invoke, start_serve, with_one_webhook};
use crate::support::{eventually, Behaviour, Dispatcher, Receivers};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The trace id and span id of a `traceparent`.
fn ids(traceparent: &str) -> (String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!((parts.len(), parts[0]), (4, "00"), "{traceparent}");
    (parts[1].to_owned(), parts[2].to_owned())
}

/// Every span exported so far, as (trace id, span id, parent span id, name), ids in hex.
fn exported_spans(receivers: &Receivers) -> Vec<(String, String, String, String)> {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let requests = receivers.at("traces");
    let exports = requests.iter().map(|r| ExportTraceServiceRequest::decode(r.body.as_ref()).expect("OTLP protobuf"));
    exports
        .flat_map(|export| export.resource_spans)
        .flat_map(|resource| resource.scope_spans)
        .flat_map(|scope| scope.spans)
        .map(|s| (hex(&s.trace_id), hex(&s.span_id), hex(&s.parent_span_id), s.name))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_started_by_the_publisher_ends_at_the_receiver_and_goes_out_with_otlp() {
    let receivers = Receivers::start().await;
    receivers.behave("failing", Behaviour { status: 500, ..Behaviour::default() });
    let (traces, metrics) = (receivers.url("traces"), receivers.url("metrics"));
    let env = [
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces.as_str()),
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", metrics.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
    ];
    let dispatcher = Dispatcher::start("traces", &["--retry-schedule", ""], &env);
    for name in ["traced", "failing"] {
        let hook = json!({"url": receivers.url(name), "subscriptions": ["ping"], "attributes": {"name": name},
                          "failureCallbackUrl": receivers.url("callback")});
        dispatcher.register(hook).await;
    }
    for name in ["traced", "failing"] {
        let published = dispatcher
            .client
            .post(format!("{}/events", dispatcher.api))
            .header("traceparent", CALLER)
            .json(&json!({"name": "ping", "payload": {"name": name}}))
            .send()
            .await
            .unwrap();
        assert_eq!(published.status(), 202);
    }
    eventually("the delivery and the callback", WAIT, || {
        receivers.at("traced").len() == 1 && receivers.at("callback").len() == 1
    })
    .await;
    let traceparent = |path: &str| receivers.at(path)[0].header("traceparent").map(ids).expect("a traceparent");
    let (delivered, callback, failed) = (traceparent("traced"), traceparent("callback"), traceparent("failing"));
    for (trace, _) in [&delivered, &callback, &failed] {
        assert_eq!(trace, TRACE_ID, "the publisher's trace reaches every request");
    }
    assert_ne!(delivered.1, "00f067aa0ba902b7", "each request carries a span of its own");
    assert_ne!(callback.1, failed.1, "the callback has its own span, apart from the attempt's");

    eventually("the spans exported", WAIT, || {
        let spans = exported_spans(&receivers);
        [&delivered.1, &callback.1].iter().all(|id| spans.iter().any(|(_, span, _, _)| span == *id))
    })
    .await;
    let spans = exported_spans(&receivers);
    let ours: Vec<&(String, String, String, String)> = spans.iter().filter(|s| s.0 == TRACE_ID).collect();
    let named = |name: &str| ours.iter().filter(|s| s.3 == name).count();
    assert_eq!((named("publish"), named("route"), named("delivery"), named("callback")), (2, 2, 2, 1), "{ours:#?}");
    let parent_of = |id: &str| ours.iter().find(|s| s.1 == id).map(|s| s.2.clone()).unwrap();
    let publish = ours.iter().find(|s| s.3 == "publish").unwrap();
    assert_eq!(publish.2, "00f067aa0ba902b7", "the publish span continues the caller's");
    let route = ours.iter().find(|s| s.1 == parent_of(&delivered.1)).unwrap();
    assert_eq!(route.3, "route", "an attempt's span is a child of the routing that made its delivery");
    assert_eq!(parent_of(&callback.1), failed.1, "the callback is a child of the failed attempt's span");

    eventually("the metrics exported", WAIT, || {
        receivers.at("metrics").iter().any(|r| {
            let export = ExportMetricsServiceRequest::decode(r.body.as_ref()).expect("OTLP protobuf");
            let names = export.resource_metrics.iter().flat_map(|m| &m.scope_metrics).flat_map(|s| &s.metrics);
            names.map(|m| m.name.as_str()).collect::<Vec<_>>().contains(&"dispatcher.events.accepted")
        })
    })
    .await;
}

/// On Azure: a trace context on the event's message (application property `traceparent`) is carried by the job
/// OnIncomingEvent outputs, and DeliverWebhook's request continues it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_on_a_service_bus_message_reaches_the_receiver() {
    let (cosmos, _store, receivers) = with_one_webhook("traced").await;
    let settings = [("DISPATCHER_ALLOW_PRIVATE_TARGETS", "true")];
    let (_handler, client, base) = start_serve(&cosmos, "traced", &settings, Stdio::null()).await;

    let ping = json!({"name": "ping", "payload": {"name": "wh1"}}).to_string();
    let invocation = json!({"Data": {"msg": ping}, "Metadata": {"MessageId": "\"traced-1\"",
                            "ApplicationProperties": {"traceparent": format!("\"{CALLER}\"")}}});
    let (status, answer) = invoke(&client, &base, "OnIncomingEvent", invocation.to_string().into_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    let job_text = answer["Outputs"]["deliveries"][0].as_str().unwrap().to_owned();
    let job: Value = serde_json::from_str(&job_text).unwrap();
    let carried = ids(job["traceparent"].as_str().expect("the job carries the trace"));
    assert_eq!(carried.0, TRACE_ID);

    let invocation = json!({"Data": {"msg": job_text}, "Metadata": {"MessageId": "\"job-1\"", "DeliveryCount": "1"}});
    let (status, answer) = invoke(&client, &base, "DeliverWebhook", invocation.to_string().into_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    let received = receivers.at("wh1");
    let (trace, span) = ids(received[0].header("traceparent").expect("a traceparent"));
    assert_eq!(trace, TRACE_ID, "the trace ends at the receiver");
    assert_ne!(span, carried.1, "in the span of the attempt, a child of the routing");
}
