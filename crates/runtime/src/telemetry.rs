//! Logs (JSON or human) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, OpenTelemetry traces.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryArgs {
    /// `json` for machines, `pretty` for people (default: json, but pretty for `portal up`).
    #[arg(long, env = "PORTAL_LOG_FORMAT", value_enum, global = true)]
    pub log_format: Option<LogFormat>,

    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "PORTAL_LOG", default_value = "info", global = true)]
    pub log: String,

    /// OTLP/gRPC collector for traces (for example `http://otel-collector:4317`); tracing is
    /// off when unset. The other standard `OTEL_*` variables apply too.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
}

/// Keeps the trace exporter alive; flushes it when dropped.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports every finished span now (blocking).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider {
            let _ = provider.force_flush();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber. `service` is the default OpenTelemetry service name
/// (`OTEL_SERVICE_NAME` overrides it); `default_format` applies when none was configured.
pub fn init(
    args: &TelemetryArgs,
    service: &str,
    default_format: LogFormat,
) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_new(&args.log)?;
    let fmt = match args.log_format.unwrap_or(default_format) {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .event_format(JsonLines)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .compact()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let traces_endpoint = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").ok();
    let service_name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service.to_string());
    let mut builder = SdkTracerProvider::builder().with_resource(
        opentelemetry_sdk::Resource::builder()
            .with_service_name(service_name)
            .build(),
    );
    // Without a collector, spans still get trace and span ids (every JSON log line carries
    // them, and they pass to the next service), but nothing is exported.
    if args.otlp_endpoint.is_some() || traces_endpoint.is_some() {
        use opentelemetry_otlp::WithExportConfig;
        let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic();
        if let Some(endpoint) = traces_endpoint.or_else(|| args.otlp_endpoint.clone()) {
            exporter = exporter.with_endpoint(endpoint);
        }
        builder = builder.with_batch_exporter(exporter.build()?);
    }
    let provider = builder.build();
    let tracer = provider.tracer("portal");
    opentelemetry::global::set_tracer_provider(provider.clone());
    let otel_layer = tracing_opentelemetry::layer().with_tracer(tracer);
    let provider = Some(provider);
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel_layer)
        .try_init()?;
    Ok(TelemetryGuard { provider })
}

/// One JSON object a line: `timestamp`, `level`, `target`, the event's `fields` (its message
/// under `message`, once), the current `span`'s name, and the `trace_id` and `span_id` of the
/// current span, so a log line leads to its trace.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut line = serde_json::Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        let mut fields = serde_json::Map::new();
        event.record(&mut FieldVisitor(&mut fields));
        line.insert("fields".into(), fields.into());
        if let Some(span) = ctx.lookup_current() {
            line.insert("span".into(), serde_json::json!({ "name": span.name() }));
            if let Some(otel) = span.extensions().get::<tracing_opentelemetry::OtelData>() {
                if let Some(trace_id) = otel.trace_id() {
                    line.insert("trace_id".into(), trace_id.to_string().into());
                }
                if let Some(span_id) = otel.span_id() {
                    line.insert("span_id".into(), span_id.to_string().into());
                }
            }
        }
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// An event's fields as JSON values; a field recorded twice keeps its last value.
struct FieldVisitor<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        self.0.insert(field.name().into(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_json_line_carries_the_trace_and_span_ids_and_its_message_once() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLines)
                    .with_writer(move || writer.clone()),
            )
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(count = 3, "outside any span");
            let span = tracing::info_span!("grpc.server");
            let _entered = span.enter();
            tracing::warn!(error = "boom", "inside a span");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["fields"]["message"], "outside any span");
        assert_eq!(lines[0]["fields"]["count"], 3);
        assert!(lines[0].get("trace_id").is_none());
        let inside = &lines[1];
        assert_eq!(inside["level"], "WARN");
        assert_eq!(inside["fields"]["message"], "inside a span");
        assert_eq!(inside["span"]["name"], "grpc.server");
        let trace_id = inside["trace_id"].as_str().unwrap();
        let span_id = inside["span_id"].as_str().unwrap();
        assert_eq!(trace_id.len(), 32, "{trace_id}");
        assert_eq!(span_id.len(), 16, "{span_id}");
        assert_ne!(trace_id, "0".repeat(32));
        // serde_json keeps the last of a repeated key; the raw line has each key once.
        let raw = text.lines().nth(1).unwrap();
        assert_eq!(raw.matches("\"message\"").count(), 1, "{raw}");
    }
}
