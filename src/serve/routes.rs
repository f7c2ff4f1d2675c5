//! The HTTP routes: which handler answers which method and path, the limits every request
//! passes through, and the metrics every answer is counted in.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::model::Model;
use crate::serve::api::{self, ApiError};
use crate::serve::batcher::{Batcher, Refusal};
use crate::serve::metrics::{Metrics, Route};

/// The page at `/`: one HTML file with its script and style, no build step, no network.
const PAGE: &str = include_str!("page.html");

/// What every handler shares.
pub struct AppState {
    pub model: Arc<Model>,
    /// The name the model is served under (`/v1/models/NAME`).
    pub name: String,
    pub batcher: Batcher,
    pub metrics: Arc<Metrics>,
    /// Bytes in a request body at most.
    pub max_body: usize,
    /// Texts in one request at most.
    pub max_instances: usize,
    /// Permits for model requests in progress, their bodies included; when none is left, a
    /// request is refused at once with 503 rather than queued without bound.
    pub in_progress: Semaphore,
}

/// The router: the protocol's routes, the page, health and metrics, a JSON error for every
/// unknown path and wrong method, the body limit, and the metrics layer.
pub fn router(state: Arc<AppState>) -> Router {
    let metrics = Arc::clone(&state.metrics);
    let max_body = state.max_body;
    let model_routes = Router::new()
        .route("/v1/models/{target}", get(model_status).post(model_call))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), admit));
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/v1/models", get(list_models))
        .merge(model_routes)
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(metrics, count))
        .with_state(state)
}

/// Counts every answer in the metrics: its route, status and latency.
async fn count(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = Route::of(request.uri().path());
    let start = Instant::now();
    let response = next.run(request).await;
    metrics.observe_request(route, response.status().as_u16(), start.elapsed());
    response
}

/// Lets a model request in only while fewer than the limit are in progress, before its body
/// is read, so that waiting requests cannot hold memory without bound; refuses a body whose
/// declared length is over the limit before reading any of it.
async fn admit(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_body as u64) {
        return too_large().into_response();
    }
    match state.in_progress.try_acquire() {
        Ok(_permit) => next.run(request).await,
        Err(_) => busy().into_response(),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "the body is larger than the server's limit (--max-body)",
    )
}

fn busy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is busy; try again shortly",
    )
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn healthz() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// `GET /v1/models`: `{"models": [NAME]}`.
async fn list_models(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(json!({ "models": [state.name] })).into_response()
}

/// `GET /v1/models/NAME`: whether it is ready, and what it is.
async fn model_status(
    State(state): State<Arc<AppState>>,
    target: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(name) = target.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if name.contains(':') {
        return Err(method_not_allowed().await);
    }
    check_name(&state, &name)?;
    let model = &state.model;
    let arch = model.network.arch();
    Ok(axum::Json(json!({
        "name": state.name,
        "ready": true,
        "cell": arch.cell.name(),
        "hidden": arch.hidden,
        "layers": arch.layers,
        "bidirectional": arch.bidirectional,
        "embed": arch.embed,
        "pool": arch.pool.name(),
        "vocabulary": model.vocab.len(),
        "labels": model.labels,
        "tokens": model.tokens.name(),
        "max_len": model.max_len,
    }))
    .into_response())
}

/// `POST /v1/models/NAME:predict` and `POST /v1/models/NAME:explain`.
async fn model_call(
    State(state): State<Arc<AppState>>,
    target: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let arrival = state.batcher.arrival();
    let Path(target) = target.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let Some((name, verb)) = target.rsplit_once(':') else {
        return Err(method_not_allowed().await);
    };
    check_name(&state, name)?;
    let explain = match verb {
        "predict" => false,
        "explain" => true,
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("unknown verb {verb:?}: use :predict or :explain"),
            ));
        }
    };
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        status => ApiError::new(status, e.body_text()),
    })?;
    let texts = api::read_instances(&body, state.max_instances)?;
    drop(body);
    let answer =
        state
            .batcher
            .run(texts, explain, arrival)
            .await
            .map_err(|refusal| match refusal {
                Refusal::Busy => busy(),
                Refusal::Unavailable => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the model could not answer (the server is stopping)",
                ),
            })?;
    let json = api::Predictions::new(
        &state.model,
        &answer.predictions,
        answer.explanations.as_deref(),
    );
    Ok(axum::Json(json).into_response())
}

/// A 404 unless `name` is the served model's.
fn check_name(state: &AppState, name: &str) -> Result<(), ApiError> {
    if name == state.name {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no model is named {name:?}; this server has {:?}",
                state.name
            ),
        ))
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: use GET /v1/models, GET /v1/models/NAME, \
         POST /v1/models/NAME:predict or POST /v1/models/NAME:explain",
    )
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such route: try GET /, /healthz, /metrics, /v1/models",
    )
}
