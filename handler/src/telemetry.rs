//! Logs, metrics and traces, set up once per process (`init`): `tracing` events go to stderr as logs, and its
//! spans to OpenTelemetry; one meter provider is read as Prometheus text at `GET /metrics` (`render`) and, with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set, pushed with OTLP (HTTP, protobuf) every minute, as are the spans. Trace
//! context travels as W3C `traceparent` (`inject`, `extract`). What is counted is named in `service::metrics`.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use std::sync::OnceLock;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The registry `/metrics` reads, once `init` ran.
static REGISTRY: OnceLock<prometheus::Registry> = OnceLock::new();

/// The providers, flushed on shutdown.
pub struct Telemetry {
    meters: SdkMeterProvider,
    tracer: SdkTracerProvider,
}

/// Whether OTLP export is asked for, as the OpenTelemetry SDKs read it (one endpoint for both signals, or one
/// each).
fn otlp_endpoint() -> bool {
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()))
}

/// An exporter that could not be set up: which one, and why.
#[derive(Debug, thiserror::Error)]
#[error("{exporter}: {reason}")]
pub struct TelemetryError {
    pub exporter: &'static str,
    pub reason: String,
}

fn failed(exporter: &'static str) -> impl FnOnce(&dyn std::fmt::Display) -> TelemetryError {
    move |reason| TelemetryError { exporter, reason: reason.to_string() }
}

/// Sets up logs (`DISPATCHER_LOG`, `DISPATCHER_LOG_FORMAT`), metrics and traces for this process.
pub fn init() -> Result<Telemetry, TelemetryError> {
    // No resource detectors: the service name is all the exports need, and each detector costs resident code.
    let resource = Resource::builder_empty().with_service_name("public-event-dispatcher").build();
    let registry = prometheus::Registry::new();
    let prometheus = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .map_err(|e| failed("the Prometheus exporter")(&e))?;
    let mut meters = SdkMeterProvider::builder().with_resource(resource.clone()).with_reader(prometheus);
    let mut tracer = SdkTracerProvider::builder().with_resource(resource);
    if otlp_endpoint() {
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .build()
            .map_err(|e| failed("the OTLP metric exporter")(&e))?;
        meters = meters.with_reader(PeriodicReader::builder(metrics).build());
        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| failed("the OTLP span exporter")(&e))?;
        tracer = tracer.with_batch_exporter(spans);
    }
    let (meters, tracer) = (meters.build(), tracer.build());
    let _ = REGISTRY.set(registry);
    opentelemetry::global::set_meter_provider(meters.clone());
    init_logs(tracer.tracer("dispatcher"));
    Ok(Telemetry { meters, tracer })
}

impl Telemetry {
    /// Sends what is still buffered (spans, the last metrics) before the process ends.
    pub fn shutdown(self) {
        let _ = self.tracer.shutdown();
        let _ = self.meters.shutdown();
    }
}

fn init_logs(tracer: opentelemetry_sdk::trace::Tracer) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter: tracing_subscriber::filter::Targets = std::env::var("DISPATCHER_LOG")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| "info".parse().unwrap_or_default());
    let json = std::env::var("DISPATCHER_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // Spans carry what their fields say: no source locations, thread names or busy/idle times.
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false);
    let registry = tracing_subscriber::registry().with(filter).with(spans);
    if json {
        registry.with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr)).init();
    } else {
        use std::io::IsTerminal;
        let colours = std::io::stderr().is_terminal();
        registry.with(tracing_subscriber::fmt::layer().with_ansi(colours).with_writer(std::io::stderr)).init();
    }
}

/// Every metric in the Prometheus text format (empty before `init`).
pub fn render() -> String {
    let Some(registry) = REGISTRY.get() else { return String::new() };
    let mut text = String::new();
    match prometheus::TextEncoder::new().encode_utf8(&registry.gather(), &mut text) {
        Ok(()) => text,
        Err(error) => format!("# the metrics could not be encoded: {error}\n"),
    }
}

/// Makes `span` continue the trace of a W3C `traceparent` (an event's caller, or the event a delivery came
/// from); nothing when there is none, or it does not parse.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else { return };
    let carrier = Traceparent(Some(traceparent.to_owned()));
    let parent = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(parent);
}

/// The `traceparent` of `span`, to hand on to a request or a queued delivery; `None` outside any trace.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let mut carrier = Traceparent(None);
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.0
}

/// A carrier of the one header W3C trace context needs (`tracestate` is not handed on).
struct Traceparent(Option<String>);

impl Injector for Traceparent {
    fn set(&mut self, key: &str, value: String) {
        if key == "traceparent" {
            self.0 = Some(value);
        }
    }
}

impl Extractor for Traceparent {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent").then_some(self.0.as_deref()).flatten()
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}
