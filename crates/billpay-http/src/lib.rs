//! billpay-http: the HTTP channel. The REST API under `/api/v1` (biller API keys), health
//! checks, Prometheus metrics, and the OpenAPI document generated from the handlers.
//!
//! Handlers are thin: parse the request into domain types, call one service function, render.
//! This crate owns the wire format (`wire`) and nothing else; it must not hold SQL or business
//! rules.

pub mod api;
pub mod audit;
pub mod charts;
pub mod collections;
pub mod console;
pub mod desk;
pub mod error;
pub mod files;
pub mod portal;
pub mod render;
pub mod reports;
pub mod reviews;
pub mod schedules;
pub mod settings;
pub mod stripe;
pub mod twilio;
pub mod wire;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use billpay_services::Billpay;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use render::JsonRender;

use crate::error::ApiError;

/// Largest request body accepted.
pub const REQUEST_BODY_MAX_BYTES: usize = 64 * 1024;
/// The demo agent `serve --demo` creates (the desk's demo code page shows its code).
pub const DEMO_AGENT_EMAIL: &str = "agent@demo.billpay.example";
/// Longest a request may take before the client is told to retry (payments finish regardless).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "billpay API",
        description = "Self-hosted bill payment. Amounts are integers in minor units (cents). \
            Every request that moves money takes an Idempotency-Key header: a retry with the same \
            key returns the first response and never pays twice.",
        license(name = "Apache-2.0")
    ),
    modifiers(&SecurityAddon),
    tags((name = "accounts"), (name = "payments"), (name = "payment methods"), (name = "files"), (name = "autopay"), (name = "collections"), (name = "phone"), (name = "audit"), (name = "reports"), (name = "disputes"))
)]
struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A biller API key from `billpay apikey create`"))
                    .build(),
            ),
        );
    }
}

fn api_router() -> OpenApiRouter<Billpay> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest(
        "/api/v1",
        OpenApiRouter::new()
            .routes(routes!(api::create_account))
            .routes(routes!(api::get_account))
            .routes(routes!(api::create_statement, api::list_statements))
            .routes(routes!(api::list_payments))
            .routes(routes!(api::create_payment))
            .routes(routes!(api::get_payment))
            .routes(routes!(api::get_receipt))
            .routes(routes!(api::get_confirmation))
            .routes(routes!(api::create_refund))
            .routes(routes!(api::save_payment_method, api::list_payment_methods))
            .routes(routes!(
                api::get_payment_method,
                api::update_payment_method,
                api::delete_payment_method
            ))
            .routes(routes!(files::import_lockbox))
            .routes(routes!(files::list_lockbox_exceptions))
            .routes(routes!(files::resolve_lockbox_exception))
            .routes(routes!(files::import_ach_returns))
            .routes(routes!(files::list_ach_files))
            .routes(routes!(
                schedules::enroll_autopay,
                schedules::get_autopay,
                schedules::cancel_autopay
            ))
            .routes(routes!(
                schedules::create_scheduled,
                schedules::list_scheduled
            ))
            .routes(routes!(
                schedules::update_scheduled,
                schedules::cancel_scheduled
            ))
            .routes(routes!(collections::list_charges))
            .routes(routes!(collections::waive_charge))
            .routes(routes!(collections::place_hold))
            .routes(routes!(collections::create_arrangement))
            .routes(routes!(collections::list_events))
            .routes(routes!(collections::add_webhook_endpoint))
            .routes(routes!(collections::set_consent))
            .routes(routes!(collections::consents))
            .routes(routes!(audit::list_audit))
            .routes(routes!(reports::posting_file))
            .routes(routes!(reports::aging_report))
            .routes(routes!(schedules::set_billing_plan))
            .routes(routes!(collections::enroll_hardship))
            .routes(routes!(collections::post_pledge))
            .routes(routes!(twilio::get_call))
            .routes(routes!(stripe::list_disputes))
            .routes(routes!(stripe::payment_disputes)),
    )
}

/// The OpenAPI document, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

pub fn openapi_json() -> String {
    openapi().to_pretty_json().unwrap_or_else(|_| "{}".into())
}

/// The process-wide Prometheus recorder (installed once, shared by every router in a process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .map(|b| b.build_recorder())
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; metrics then go there.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// How the router is put together.
#[derive(Clone, Copy, Debug, Default)]
pub struct RouterOptions {
    /// Send Strict-Transport-Security (only when billpay itself serves HTTPS).
    pub hsts: bool,
}

/// The whole HTTP application, served over plain HTTP (tests, or behind a TLS proxy).
pub fn router(app: Billpay) -> Router {
    router_with(app, RouterOptions::default())
}

/// The whole HTTP application.
pub fn router_with(app: Billpay, options: RouterOptions) -> Router {
    let (api, doc) = api_router().split_for_parts();
    let doc_json = doc.to_pretty_json().unwrap_or_else(|_| "{}".into());
    let handle = metrics_handle();
    // Shown from the first scrape, before any chat page connects.
    metrics::gauge!("billpay_chat_streams_open").increment(0.0);
    let authed = api.layer(middleware::from_fn_with_state(app.clone(), require_api_key));
    Router::new()
        .merge(authed)
        .merge(twilio::signed_routes(app.clone()))
        .merge(portal::routes(app.clone(), options.hsts))
        .route("/webhooks/stripe", axum::routing::post(stripe::webhook))
        .merge(desk::routes(app.clone(), options.hsts))
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = doc_json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], doc) }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(move |State(app): State<Billpay>| {
            let h = handle.clone();
            async move {
                // The database's gauges are read fresh; a failure leaves their last values.
                if let Err(e) = app.refresh_gauges().await {
                    tracing::warn!(error = %e, "metrics gauges could not be read");
                }
                h.render()
            }
        }))
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(app)
        .layer(middleware::from_fn(record_metrics))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(REQUEST_BODY_MAX_BYTES))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::map_response(move |resp: Response| async move {
            security_headers(resp, options.hsts)
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                // Method and path only: bodies and query strings may hold personal data.
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Headers on every response: no sniffing, no framing, no referrer, no caching of account
/// data, a content security policy that allows nothing inline, and HSTS over HTTPS.
fn security_headers(mut resp: Response, hsts: bool) -> Response {
    let h = resp.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::CACHE_CONTROL, "no-store");
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    );
    if hsts {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        );
    }
    resp
}

async fn readyz(State(app): State<Billpay>) -> Response {
    match app.store.read_conn().await {
        Ok(_) => (
            StatusCode::OK,
            axum::Json(wire::Health {
                status: "ready",
                database: app.store.engine().as_str(),
            }),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(wire::Health {
                    status: "unavailable",
                    database: app.store.engine().as_str(),
                }),
            )
                .into_response()
        }
    }
}

async fn require_api_key(State(app): State<Billpay>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return ApiError::unauthorized("send a biller API key as Authorization: Bearer <key>")
            .into_response();
    };
    match app.authenticate(token).await {
        Ok(Some(key)) => {
            req.extensions_mut().insert(key);
            next.run(req).await
        }
        Ok(None) => {
            ApiError::unauthorized("the API key is not valid or has been revoked").into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("billpay_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("billpay_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}
