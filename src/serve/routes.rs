//! The HTTP routes: which handler answers which method and path, the limits every request
//! passes through, and the metrics every answer is counted in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
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
use crate::serve::body::{self, AnswerBody, BodyLimits, StreamBody};
use crate::serve::budget::{Budget, Reservation};
use crate::serve::generate::{self, GenerateRequest};
use crate::serve::metrics::{Metrics, Route};
use crate::serve::sampler::{self, Sampler};
use crate::serve::served::{self, Kind};

/// The page at `/`: one HTML file with its script and style, no build step, no network.
const PAGE: &str = include_str!("page.html");

/// What every handler shares.
pub struct AppState {
    /// The name the model is served under (`/v1/models/NAME`).
    pub name: String,
    /// The model, and what runs it.
    pub served: Served,
    pub metrics: Arc<Metrics>,
    /// How a request body may be read: its size and its time.
    pub body: BodyLimits,
    /// Texts in one request at most.
    pub max_instances: usize,
    /// Tokens × labels in one explain answer at most.
    pub max_explain_probs: usize,
    /// Tokens in one generate answer at most.
    pub max_generate_tokens: usize,
    /// From the end of a model request's body to its answer, at most (`--max-request-seconds`).
    pub max_request: Duration,
    /// Permits for model requests whose body has been read, until they are answered: queued
    /// or in a forward pass, or generating. When none is left, a request is refused at once
    /// with 503 rather than queued without bound.
    pub in_progress: Arc<Semaphore>,
    /// Bytes of request bodies held, from their first byte to their answer.
    pub bodies: Budget,
    /// Bytes of answers held, from before they are computed until the connection has taken
    /// them.
    pub answers: Budget,
}

/// The served model and what runs it.
pub enum Served {
    /// A classifier, whose texts the batcher gathers into forward passes.
    Classifier { model: Arc<Model>, batcher: Batcher },
    /// A language model, whose generations the sampler runs.
    LanguageModel(Writer),
}

/// A language model's sampler, and the sizes its requests are checked against.
pub struct Writer {
    pub sampler: Sampler,
    /// The longest JSON string of a token of its vocabulary (for answer sizes).
    pub token_json: usize,
    /// Tokens of a prime it may read at most (`--max-prime-memory`).
    pub max_prime_tokens: usize,
}

impl Served {
    /// Which kind of model is served.
    pub fn kind(&self) -> Kind {
        match self {
            Served::Classifier { .. } => Kind::Classifier,
            Served::LanguageModel(_) => Kind::LanguageModel,
        }
    }
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

/// Counts every answer in the metrics: its route, status and latency (for a streamed answer,
/// until its head is ready: its first token has been drawn).
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

/// The 503 of a request not answered within `--max-request-seconds`, whose work is given up.
fn over_time(budget: Duration) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "the request was not answered within {} s (--max-request-seconds) and its work was \
             given up; the server is busy, try again shortly",
            budget.as_secs_f64()
        ),
    )
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `GET /healthz`: 200 `{"status": "ok"}` when a predict request (a generate request of the
/// default length, for a language model) would be admitted now and answered in time; 503
/// `{"status": "busy", "queues": ...}` when it would be refused for want of room (every permit
/// of the model requests in progress taken, or no byte left for its body or its answer), or
/// when a queue's oldest request has waited half of `--max-request-seconds` (requests queued
/// now would likely not be answered in time). `"queues"` tells, for the predict and the
/// explain queue, the requests waiting in it and how long the oldest has waited.
async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    let small_answer = match &state.served {
        Served::Classifier { model, .. } => {
            api::answer_size(model, &["x".to_string()], false).bytes
        }
        Served::LanguageModel(writer) => {
            let request = GenerateRequest {
                prime: String::new(),
                length: generate::DEFAULT_LENGTH.min(state.max_generate_tokens),
                sampling: Default::default(),
                stream: false,
            };
            let join = writer.sampler.model().join();
            generate::answer_bound(&state.name, &request, writer.token_json, join)
        }
    };
    let admits = state.in_progress.available_permits() > 0
        && state.bodies.free() > 0
        && state.answers.free() >= 2 * small_answer;
    let loads = match &state.served {
        Served::Classifier { batcher, .. } => vec![
            ("predict", batcher.load(false)),
            ("explain", batcher.load(true)),
        ],
        Served::LanguageModel(_) => Vec::new(),
    };
    let late = loads
        .iter()
        .any(|(_, load)| load.oldest * 2 >= state.max_request);
    if admits && !late {
        return axum::Json(json!({ "status": "ok" })).into_response();
    }
    let queues: serde_json::Map<String, serde_json::Value> = loads
        .iter()
        .map(|(name, load)| {
            let queue = json!({
                "queued": load.queued,
                "oldest_seconds": (load.oldest.as_secs_f64() * 1000.0).round() / 1000.0,
            });
            (name.to_string(), queue)
        })
        .collect();
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({ "status": "busy", "queues": queues })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, api::RETRY_AFTER.clone());
    response
}

async fn metrics_text(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// `GET /v1/models`: `{"models": [NAME], "kinds": {NAME: "classifier" | "language_model"}}`.
async fn list_models(State(state): State<Arc<AppState>>) -> Response {
    let mut kinds = serde_json::Map::new();
    kinds.insert(state.name.clone(), state.served.kind().name().into());
    axum::Json(json!({ "models": [state.name], "kinds": kinds })).into_response()
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
    let status = match &state.served {
        Served::Classifier { model, .. } => {
            let arch = model.network.arch();
            json!({
                "name": state.name,
                "ready": true,
                "kind": Kind::Classifier.name(),
                "cell": arch.cell.name(),
                "hidden": arch.hidden,
                "layers": arch.layers,
                "bidirectional": arch.bidirectional,
                "embed": arch.embed,
                "pool": arch.pool.name(),
                "ngrams": arch.ngrams.map(|n| n.n),
                "buckets": arch.ngrams.map(|n| n.buckets),
                "vocabulary": model.vocab.len(),
                "labels": model.labels(),
                "tokens": model.tokens.name(),
                "max_len": model.max_len,
            })
        }
        Served::LanguageModel(writer) => {
            let model = writer.sampler.model();
            let arch = model.network.arch();
            json!({
                "name": state.name,
                "ready": true,
                "kind": Kind::LanguageModel.name(),
                "cell": arch.cell.name(),
                "hidden": arch.hidden,
                "layers": arch.layers,
                "embed": arch.embed,
                "vocabulary": model.vocab.len(),
                "tokens": model.tokens.name(),
                "join": model.join(),
                "max_generate_tokens": state.max_generate_tokens,
                "max_prime_tokens": writer.max_prime_tokens,
            })
        }
    };
    Ok(axum::Json(status).into_response())
}

/// `POST /v1/models/NAME:VERB`: `:predict` and `:explain` for a classifier, `:generate` for a
/// language model; 404 for a verb the served model does not answer.
async fn model_call(
    State(state): State<Arc<AppState>>,
    target: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Path(target) = target.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let Some((name, verb)) = target.rsplit_once(':') else {
        return Err(method_not_allowed().await);
    };
    check_name(&state, name)?;
    match (&state.served, verb) {
        (Served::Classifier { model, batcher }, "predict" | "explain") => {
            classify(&state, model, batcher, verb == "explain", &headers, body).await
        }
        (Served::LanguageModel(writer), "generate") => {
            write_text(&state, writer, &headers, body).await
        }
        (served, _) => Err(wrong_verb(name, served.kind(), verb)),
    }
}

/// The 404 of a verb the served model does not answer: one of the other kind's, or none.
fn wrong_verb(name: &str, kind: Kind, verb: &str) -> ApiError {
    let verbs = served::verbs(kind).iter().map(|v| format!(":{v}"));
    let verbs = verbs.collect::<Vec<_>>().join(" or ");
    let message = match kind {
        Kind::Classifier if verb == "generate" => format!(
            "{name:?} is a classifier: it has no :generate (a language model, trained by \
             `rnn lm`, has); use {verbs}"
        ),
        Kind::LanguageModel if served::verbs(Kind::Classifier).contains(&verb) => format!(
            "{name:?} is a language model: it writes text after a beginning and has no \
             :{verb} (a classifier, trained by `rnn train`, has); use :generate"
        ),
        _ => format!("unknown verb {verb:?}: use {verbs}"),
    };
    ApiError::new(StatusCode::NOT_FOUND, message)
}

/// Reads a model request's body within its limits: the declared length is checked before a
/// byte is read; the body's size, time and bytes while it is read.
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Bytes, Reservation), ApiError> {
    // A body declared over the limit is refused before a byte of it is read.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.body.max_bytes as u64) {
        return Err(body::too_large().closing());
    }
    body::read(body, &state.body, &state.bodies)
        .await
        .map_err(ApiError::closing)
}

/// `POST /v1/models/NAME:predict` and `POST /v1/models/NAME:explain`.
///
/// Every limit is checked before the work it bounds: the body's (see [`read_body`]); the
/// permits of the requests in progress once it is read; the explanation's size and the
/// answer's bytes before the texts are queued; the request's time (`--max-request-seconds`,
/// from the end of its body) while it waits and is computed. The answer's bytes stay counted
/// until the connection has taken them.
async fn classify(
    state: &AppState,
    model: &Model,
    batcher: &Batcher,
    explain: bool,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let arrival = batcher.arrival(explain);
    let (body, body_held) = read_body(state, headers, body).await?;
    let deadline = tokio::time::Instant::now() + state.max_request;
    let _permit = state.in_progress.try_acquire().map_err(|_| busy())?;
    let texts = api::read_instances(&body, state.max_instances)?;
    drop(body);

    let size = api::answer_size(model, &texts, explain);
    if size.probs > state.max_explain_probs {
        let labels = model.labels().len().max(1);
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

    // Over its time, the request is answered 503 and its job dropped with the reply channel:
    // the compute threads then give up its work.
    let answer = tokio::time::timeout_at(deadline, batcher.run(texts, explain, arrival))
        .await
        .map_err(|_| over_time(state.max_request))?
        .map_err(|refusal| match refusal {
            Refusal::Busy => busy(),
            Refusal::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the model could not answer (the server is stopping)",
            ),
        })?;
    drop(body_held); // the texts are gone with the job
    let json = api::Predictions::new(model, &answer.predictions, answer.explanations.as_deref());
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

/// `POST /v1/models/NAME:generate` (see [`generate`] for the JSON).
///
/// As for a predict request, every limit is checked before the work it bounds: the body's
/// (see [`read_body`]); the permits of the requests in progress once it is read (held until
/// the generation ends); the prime's tokens (`--max-prime-memory`), the length
/// (`--max-generate-tokens`) and the answer's bytes, whole or streamed, before the model reads
/// the prime. A streamed answer gives its bytes back as the connection takes them. The time
/// (`--max-request-seconds`) bounds the wait for a turn and the prime's reading, and a whole
/// answer's generation; a stream, whose client sees it progress, runs to its length.
async fn write_text(
    state: &AppState,
    writer: &Writer,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (body, body_held) = read_body(state, headers, body).await?;
    let permit = Arc::clone(&state.in_progress)
        .try_acquire_owned()
        .map_err(|_| busy())?;
    let request = generate::read_request(&body, state.max_generate_tokens)?;
    drop(body);
    let model = writer.sampler.model();
    let mut prime_tokens = 0usize;
    model.tokens.for_each(&request.prime, |_| prime_tokens += 1);
    generate::check_prime(prime_tokens, writer.max_prime_tokens, model.network.arch())?;
    let bound = generate::answer_bound(&state.name, &request, writer.token_json, model.join());
    let mut answer_held = reserve_answer(&state.answers, bound)?;
    let stream = request.stream;
    // The prime goes with the generation, so its body's bytes stay counted until it ends.
    let deadline = tokio::time::Instant::now() + state.max_request;
    let mut output =
        tokio::time::timeout_at(deadline, writer.sampler.start(request, (permit, body_held)))
            .await
            .map_err(|_| over_time(state.max_request))??;
    if stream {
        return Ok((
            [
                (header::CONTENT_TYPE, "application/x-ndjson"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            Body::new(StreamBody::new(output, answer_held)),
        )
            .into_response());
    }
    // Over its time, the generation stops at its next token (its channel is closed).
    let Some(bytes) = tokio::time::timeout_at(deadline, output.recv())
        .await
        .map_err(|_| over_time(state.max_request))?
    else {
        return Err(sampler::failed());
    };
    // The bound was taken before; now the answer holds what it is, no more.
    if !answer_held.resize(bytes.len()) {
        return Err(answers_full(bytes.len()));
    }
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::new(AnswerBody::new(bytes, answer_held)),
    )
        .into_response())
}

/// Takes `bytes` from the answer budget for an answer about to be computed.
///
/// # Errors
/// 413 when the answer could never be admitted (more than half of the whole budget), 503 when
/// it cannot be now.
fn reserve_answer(answers: &Budget, bytes: usize) -> Result<Reservation, ApiError> {
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
         POST /v1/models/NAME:predict, POST /v1/models/NAME:explain or \
         POST /v1/models/NAME:generate",
    )
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such route: try GET /, /healthz, /metrics, /v1/models",
    )
}
