//! One create-invitation is one trace across the three services, exported over OTLP to a
//! real collector endpoint on loopback. (Its own test binary: tracing is process-global.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use portal_runtime::telemetry::{self, LogFormat, TelemetryArgs};
use portal_suite_tests::{Backend, Suite, create_request, school, staff};

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            other => Some(format!("{other:?}")),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_create_invitation_is_one_trace_across_the_three_services() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let guard = telemetry::init(
        &TelemetryArgs {
            log_format: Some(LogFormat::Json),
            log: "info,portal_identity=debug,portal_subscription=debug,portal_invitation=debug"
                .into(),
            otlp_endpoint: Some(endpoint),
        },
        "portal-suite",
        LogFormat::Json,
    )
    .unwrap();

    let suite = Suite::start(Backend::Sqlite).await;
    let admin = suite.admin().await;
    let (staff_id, email, _) = staff(3);
    let invitation = suite
        .invitations(Some(&admin))
        .create_invitation(create_request(
            staff_id,
            ("portal", "full-edit"),
            Some((
                &["websites-cms", "comms-hub"],
                "writer",
                &[school(0), school(1), school(2)],
            )),
        ))
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap();
    assert!(!invitation.granted.is_empty());

    tokio::task::spawn_blocking(move || guard.flush())
        .await
        .unwrap();
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = collector.spans.lock().unwrap().clone();
        if spans
            .iter()
            .any(|s| s.name == "portal.invitation.v1.InvitationService/CreateInvitation")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let create = spans
        .iter()
        .find(|s| s.name == "portal.invitation.v1.InvitationService/CreateInvitation")
        .expect("the create span was exported");
    assert!(
        create.parent_span_id.is_empty(),
        "the create span is the root"
    );
    let trace: Vec<&Span> = spans
        .iter()
        .filter(|s| s.trace_id == create.trace_id)
        .collect();
    let by_id: HashMap<&[u8], &Span> = trace.iter().map(|s| (s.span_id.as_slice(), *s)).collect();
    let descends_from_create = |span: &Span| {
        let mut current = span;
        for _ in 0..32 {
            if current.span_id == create.span_id {
                return true;
            }
            match by_id.get(current.parent_span_id.as_slice()) {
                Some(parent) => current = parent,
                None => return false,
            }
        }
        false
    };

    for (service, rpc) in [
        (
            "identity",
            "portal.identity.v1.GrantService/CheckAdministrator",
        ),
        ("identity", "portal.identity.v1.StaffService/GetStaffMember"),
        ("identity", "portal.identity.v1.GrantService/BatchGrant"),
        (
            "subscription",
            "portal.subscription.v1.EligibilityService/CheckEligibility",
        ),
    ] {
        let _ = service;
        // The OpenTelemetry RPC conventions on both ends: the server's span is the child of
        // the caller's CLIENT span, and both carry the service's full name, the method and
        // the status code.
        const SERVER: i32 = 2;
        const CLIENT: i32 = 3;
        let server = trace
            .iter()
            .find(|s| s.name == rpc && s.kind == SERVER)
            .unwrap_or_else(|| panic!("{rpc}'s server span is in the create trace"));
        let client = trace
            .iter()
            .find(|s| s.name == rpc && s.kind == CLIENT)
            .unwrap_or_else(|| panic!("{rpc}'s client span is in the create trace"));
        let (full_service, method) = rpc.split_once('/').unwrap();
        for span in [server, client] {
            assert_eq!(attribute(span, "rpc.system").as_deref(), Some("grpc"));
            assert_eq!(
                attribute(span, "rpc.service").as_deref(),
                Some(full_service)
            );
            assert_eq!(attribute(span, "rpc.method").as_deref(), Some(method));
            assert_eq!(
                attribute(span, "rpc.grpc.status_code").as_deref(),
                Some("IntValue(0)"),
                "{rpc}"
            );
        }
        assert_eq!(server.parent_span_id, client.span_id, "{rpc}");
        assert!(
            descends_from_create(server),
            "{rpc} is a descendant of the create span"
        );
    }
    for service in ["identity", "subscription", "invitation"] {
        let prefix = format!("{service}.db.");
        let database_spans: Vec<&&Span> = trace
            .iter()
            .filter(|s| s.name.starts_with(&prefix))
            .collect();
        assert!(
            !database_spans.is_empty(),
            "{service}'s database calls are in the trace"
        );
        assert!(database_spans.iter().all(|s| descends_from_create(s)));
    }

    // No email addresses or tokens in any exported attribute.
    for span in &spans {
        for a in &span.attributes {
            let value = format!("{:?}", a.value);
            assert!(
                !value.contains('@'),
                "{} carries an email: {value}",
                span.name
            );
            assert!(!value.contains("Bearer"), "{} carries a token", span.name);
            assert!(
                !value.contains(email),
                "{} carries the invitee's email",
                span.name
            );
        }
    }
    suite.shutdown.trigger();
}
