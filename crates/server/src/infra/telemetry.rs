//! Structured JSON logs, OpenTelemetry traces (OTLP over gRPC, when an endpoint is
//! configured) and Prometheus metrics.
//!
//! Trace export runs on a tokio runtime of its own: the SDK's batch processor exports from a
//! plain thread, and the tonic exporter needs a reactor there (a known trap: without one the
//! exporter's thread panics and every span is silently dropped).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Where and as what to export traces.
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// OTLP/gRPC endpoint, e.g. `http://127.0.0.1:4317`.
    pub endpoint: String,
    /// `service.name` resource attribute.
    pub service_name: String,
    /// Which spans to export (tracing `EnvFilter` syntax), independent of the log filter:
    /// quiet logs must not silence traces.
    pub filter: String,
}

/// Keeps the trace pipeline alive; dropping it flushes and shuts the exporter down.
#[derive(Debug, Default)]
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("softpos-server: trace export shutdown: {error}");
        }
    }
}

/// Installs the JSON log subscriber (stdout) and, with `otlp`, the OpenTelemetry layer that
/// exports every span (requests and what runs inside them) to the collector. Safe to call
/// once per process.
///
/// # Errors
/// The OTLP endpoint is not a valid URI or the export runtime cannot start.
pub fn init_logging(filter: &str, otlp: Option<&OtlpSettings>) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_filter(filter);
    let Some(otlp) = otlp else {
        let _ = tracing_subscriber::registry().with(json).try_init();
        return Ok(TelemetryGuard::default());
    };
    let trace_filter = EnvFilter::try_new(&otlp.filter)
        .map_err(|error| anyhow::anyhow!("OTEL_TRACES_FILTER: {error}"))?;
    let provider = tracer_provider(otlp)?;
    let tracer = provider.tracer("softpos-server");
    let _ = tracing_subscriber::registry()
        .with(json)
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(trace_filter),
        )
        .try_init();
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

/// Upper bound of one export call (the SDK requires exporters to time out).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

fn tracer_provider(otlp: &OtlpSettings) -> anyhow::Result<SdkTracerProvider> {
    let runtime = export_runtime()?;
    // tonic builds its (lazy) channel inside a runtime context.
    let exporter = {
        let _entered = runtime.enter();
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(otlp.endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()?
    };
    let exporter = OnExportRuntime {
        inner: Arc::new(exporter),
        runtime,
    };
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(otlp.service_name.clone())
                .build(),
        )
        .build())
}

/// A current-thread runtime driven by a thread of its own for as long as the process lives;
/// only its handle leaves, so no runtime is ever dropped inside async code.
fn export_runtime() -> anyhow::Result<tokio::runtime::Handle> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("otlp-export".to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => {
                    let _ = sender.send(Ok(runtime.handle().clone()));
                    runtime.block_on(std::future::pending::<()>());
                }
                Err(error) => {
                    let _ = sender.send(Err(error));
                }
            }
        })?;
    Ok(receiver.recv()??)
}

/// Runs the OTLP exporter's calls on the export runtime, whatever thread asks.
#[derive(Debug)]
struct OnExportRuntime {
    inner: Arc<opentelemetry_otlp::SpanExporter>,
    runtime: tokio::runtime::Handle,
}

impl SpanExporter for OnExportRuntime {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let inner = self.inner.clone();
        let task = self.runtime.spawn(async move { inner.export(batch).await });
        async move {
            task.await
                .unwrap_or_else(|error| Err(OTelSdkError::InternalFailure(error.to_string())))
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Called while building the provider, before the exporter is shared.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global Prometheus recorder (once) and returns its handle.
///
/// # Errors
/// When another recorder was installed first.
pub fn init_metrics() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = PROMETHEUS.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ])?
        .install_recorder()?;
    Ok(PROMETHEUS.get_or_init(|| handle).clone())
}

/// Middleware: counts requests and records latencies by route template (never raw paths,
/// which would explode label cardinality and could leak identifiers).
pub async fn track_http(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
