//! The HTTP routes: which handler answers which method and path, the limits every request
//! passes through, and the metrics every answer is counted in.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::model::Model;
use crate::serve::api::{self, ApiError};
use crate::serve::batcher::{Batcher, Refusal};
use crate::serve::body::{self, AnswerBody, BodyLimits};
use crate::serve::budget::Budget;
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
    /// How a request body may be read: its size and its time.
    pub body: BodyLimits,
    /// Texts in one request at most.
    pub max_instances: usize,
    /// Tokens × labels in one explain answer at most.
    pub max_explain_probs: usize,
    /// Permits for model requests whose body has been read, until they are answered: queued
    /// or in a forward pass. When none is left, a request is refused at once with 503 rather
    /// than queued without bound.
    pub in_progress: Semaphore,
    /// Bytes of request bodies held, from their first byte to their answer.
    pub bodies: Budget,
    /// Bytes of answers held, from before they are computed until the connection has taken
    /// them.
    pub answers: Budget,
}

/// The router: the protocol's routes, the page, health and metrics, a JSON error for every
/// unknown path and wrong method, and the metrics layer.
pub fn router(state: Arc<AppState>) -> Router {
    let metrics = Arc::clone(&state.metrics);
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{target}", get(model_status).post(model_call))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
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

fn busy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is busy; try again shortly",
    )
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `GET /healthz`: 200 `{"status": "ok"}` when a predict request would be admitted now, 503
/// `{"status": "busy"}` when it would be refused for want of room: every permit of the model
/// requests in progress taken, or no byte left for its body or its answer.
async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let small_answer = api::answer_size(&state.model, &["x".to_string()], false).bytes;
    let admits = state.in_progress.available_permits() > 0
        && state.bodies.free() > 0
        && state.answers.free() >= 2 * small_answer;
    if admits {
        axum::Json(json!({ "status": "ok" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "busy" })),
        )
            .into_response()
    }
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
///
/// Every limit is checked before the work it bounds: the declared body length before the
/// body is read; the body's size, time and bytes while it is read; the permits of the
/// requests in progress once it is read; the explanation's size and the answer's bytes before
/// the texts are queued. The answer's bytes stay counted until the connection has taken them.
async fn model_call(
    State(state): State<Arc<AppState>>,
    target: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
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
    // A body declared over the limit is refused before a byte of it is read.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.body.max_bytes as u64) {
        return Err(body::too_large().closing());
    }
    let (body, body_held) = body::read(body, &state.body, &state.bodies)
        .await
        .map_err(ApiError::closing)?;
    let _permit = state.in_progress.try_acquire().map_err(|_| busy())?;
    let texts = api::read_instances(&body, state.max_instances)?;
    drop(body);

    let size = api::answer_size(&state.model, &texts, explain);
    if size.probs > state.max_explain_probs {
        let labels = state.model.labels.len().max(1);
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "explaining these texts gives {} tokens × {labels} labels = {} probabilities; \
                 an explain request may ask for at most {} (--max-explain-probs)",
                size.probs / labels,
                size.probs,
                state.max_explain_probs
            ),
        ));
    }
    let mut answer_held = reserve_answer(&state.answers, size.bytes)?;

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
    drop(body_held); // the texts are gone with the job
    let json = api::Predictions::new(
        &state.model,
        &answer.predictions,
        answer.explanations.as_deref(),
    );
    // Written into room for the bound, so that the buffer is never grown and copied.
    let mut bytes = Vec::with_capacity(size.bytes);
    serde_json::to_writer(&mut bytes, &json).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the answer could not be written: {e}"),
        )
    })?;
    drop(answer);
    // The bound was taken before; now the answer holds what it is, no more.
    if !answer_held.resize(bytes.len()) {
        return Err(answers_full(bytes.len()));
    }
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::new(AnswerBody::new(bytes.into(), answer_held)),
    )
        .into_response())
}

/// Takes `bytes` from the answer budget for an answer about to be computed.
///
/// # Errors
/// 413 when the answer could never be admitted (more than half of the whole budget), 503 when
/// it cannot be now.
fn reserve_answer(
    answers: &Budget,
    bytes: usize,
) -> Result<crate::serve::budget::Reservation, ApiError> {
    if bytes > answers.total() / 2 {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the answer could take {bytes} bytes; an answer may take at most half of \
                 the server's {} bytes for answers (--max-answer-memory)",
                answers.total()
            ),
        ));
    }
    answers.take_share(bytes).ok_or_else(|| answers_full(bytes))
}

fn answers_full(bytes: usize) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "the server holds as many answers not yet sent as it may (--max-answer-memory), \
             and this one could take {bytes} bytes; try again shortly"
        ),
    )
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
