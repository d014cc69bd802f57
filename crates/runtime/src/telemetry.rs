//! Logs (JSON or human) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, OpenTelemetry traces.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
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
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .compact()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let traces_endpoint = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").ok();
    let (otel_layer, provider) = if args.otlp_endpoint.is_some() || traces_endpoint.is_some() {
        use opentelemetry_otlp::WithExportConfig;
        let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic();
        if let Some(endpoint) = traces_endpoint.or_else(|| args.otlp_endpoint.clone()) {
            exporter = exporter.with_endpoint(endpoint);
        }
        let exporter = exporter.build()?;
        let service_name =
            std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service.to_string());
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(service_name)
                    .build(),
            )
            .build();
        let tracer = provider.tracer("portal");
        opentelemetry::global::set_tracer_provider(provider.clone());
        (
            Some(tracing_opentelemetry::layer().with_tracer(tracer)),
            Some(provider),
        )
    } else {
        (None, None)
    };
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
