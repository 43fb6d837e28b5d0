//! Liveness, readiness, metrics, OpenAPI, docs, request ids, security headers.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{Backend, TestApp};

async fn health_readiness_and_metrics(app: TestApp) {
    let res = app.req(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let res = app.req(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let (db, stores) = match app.backend {
        Backend::Sqlite => ("sqlite", "memory"),
        Backend::Postgres => ("postgres", "redis"),
    };
    assert_eq!(body["database"]["kind"], db);
    assert_eq!(body["stores"]["kind"], stores);
    assert_eq!(body["status"], "ready");

    // Some traffic, then the counters show it by route template.
    let _ = app
        .req(Method::GET, "/api/v1/auth/me")
        .send()
        .await
        .unwrap();
    let res = app.req(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("route=\"/api/v1/auth/me\""), "{text}");
}

async fn openapi_is_31_and_everything_is_under_api_v1(app: TestApp) {
    let res = app
        .req(Method::GET, "/api/openapi.json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "only {} paths", paths.len());
    for path in paths.keys() {
        assert!(
            path.starts_with("/api/v1/")
                || ["/healthz", "/readyz", "/metrics"].contains(&path.as_str()),
            "{path} is outside /api/v1"
        );
    }
    let res = app.req(Method::GET, "/api/docs/").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("swagger"));
}

async fn request_ids_and_security_headers(app: TestApp) {
    let res = app.req(Method::GET, "/healthz").send().await.unwrap();
    let id = res
        .headers()
        .get("x-request-id")
        .expect("request id")
        .to_str()
        .unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(
        res.headers().get("x-content-type-options").unwrap(),
        "nosniff"
    );
    assert_eq!(res.headers().get("x-frame-options").unwrap(), "DENY");
    // A caller's id is propagated.
    let res = app
        .req(Method::GET, "/healthz")
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("x-request-id").unwrap(), "trace-me-123");
    // No CORS by default.
    let res = app
        .req(Method::OPTIONS, "/api/v1/auth/login")
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    // Unknown routes get the JSON error shape.
    let res = app.req(Method::GET, "/api/v1/nope").send().await.unwrap();
    crate::expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
}

crate::on_both_backends!(
    health_readiness_and_metrics,
    openapi_is_31_and_everything_is_under_api_v1,
    request_ids_and_security_headers,
);

/// `--tls-self-signed` serves TLS 1.3 with a generated certificate.
#[tokio::test]
async fn self_signed_tls_serves_https() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, &[("TLS_SELF_SIGNED", "true")]).await else {
        return;
    };
    assert!(app.base.starts_with("https://"), "{}", app.base);
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .min_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    let res = client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("strict-transport-security").is_some());
    // TLS 1.2 only: refused.
    let old = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    assert!(
        old.get(format!("{}/healthz", app.base))
            .send()
            .await
            .is_err()
    );
}

/// An OTLP/gRPC collector on an ephemeral port that keeps every span it receives.
mod collector {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };

    /// What one received span says.
    #[derive(Debug, Clone)]
    pub(super) struct ReceivedSpan {
        pub(super) service: String,
        pub(super) name: String,
        pub(super) attributes: Vec<(String, String)>,
    }

    #[derive(Debug, Clone, Default)]
    pub(super) struct Collector {
        pub(super) spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    }

    #[tonic::async_trait]
    impl TraceService for Collector {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let mut spans = self.spans.lock().unwrap();
            for resource_spans in request.into_inner().resource_spans {
                let service = resource_spans
                    .resource
                    .iter()
                    .flat_map(|resource| resource.attributes.iter())
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref())
                    .map(|value| format!("{:?}", value.value))
                    .unwrap_or_default();
                for scope in resource_spans.scope_spans {
                    for span in scope.spans {
                        spans.push(ReceivedSpan {
                            service: service.clone(),
                            name: span.name,
                            attributes: span
                                .attributes
                                .into_iter()
                                .map(|kv| (kv.key, format!("{:?}", kv.value)))
                                .collect(),
                        });
                    }
                }
            }
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        }
    }

    /// Starts the collector; returns it and its address.
    pub(super) async fn start() -> (Collector, SocketAddr) {
        let collector = Collector::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(collector.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream_listener(listener))
                .await
                .unwrap();
        });
        (collector, addr)
    }

    fn tokio_stream_listener(
        listener: tokio::net::TcpListener,
    ) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
        futures_util::stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await.map(|(stream, _)| stream);
            Some((accepted, listener))
        })
    }
}

/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, request spans reach an OTLP collector under the
/// configured service name, carrying the request id and never a query string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_reach_the_otlp_collector() {
    let (collector, addr) = collector::start().await;
    let endpoint = format!("http://{addr}");
    let Some(app) = TestApp::spawn(
        Backend::Sqlite,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "softpos-it"),
            // The SDK reads this: export every 200 ms rather than every 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    )
    .await
    else {
        return;
    };
    let res = app
        .req(Method::GET, "/api/v1/auth/me?search=secret-text")
        .header("x-request-id", "otlp-test-request")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // The batch processor exports every few seconds; wait for our span.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let span = loop {
        let found = collector
            .spans
            .lock()
            .unwrap()
            .iter()
            .find(|span| {
                span.attributes
                    .iter()
                    .any(|(key, value)| key == "request_id" && value.contains("otlp-test-request"))
            })
            .cloned();
        if let Some(span) = found {
            break span;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no request span reached the collector: {:?}",
            collector.spans.lock().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(span.name, "HTTP GET");
    assert!(span.service.contains("softpos-it"), "{span:?}");
    let path = span
        .attributes
        .iter()
        .find(|(key, _)| key == "path")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    assert!(path.contains("/api/v1/auth/me"), "{span:?}");
    assert!(
        !span
            .attributes
            .iter()
            .any(|(_, value)| value.contains("secret-text")),
        "{span:?}"
    );
}

/// An OTLP endpoint that is not a URI stops the server at start with a clear message.
#[tokio::test]
async fn a_bad_otlp_endpoint_is_refused_at_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_softpos-server"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "not a uri")
        .env("DATA_DIR", tempfile::tempdir().unwrap().path())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("trace export"), "{stderr}");
}
