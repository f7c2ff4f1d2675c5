//! A model server: the KServe V1 / TensorFlow Serving REST protocol over HTTP/1.1 for a
//! classifier, text generation for a language model, a page to try either in a browser,
//! health and Prometheus metrics, with dynamic batching.
//!
//! ```text
//! GET  /                          the page: type a sentence, see the label and every token's probabilities,
//!                                 or (a language model) type a beginning and watch the text written
//! GET  /healthz                   {"status": "ok"}, or 503 {"status": "busy", "queues"} while a request
//!                                 would be refused or would wait past its time
//! GET  /metrics                   requests and errors by route, latency, batch sizes, tokens generated
//! GET  /v1/models                 {"models": [NAME], "kinds": {NAME: "classifier" | "language_model"}}
//! GET  /v1/models/NAME            {"name": NAME, "ready": true, "kind", "cell", "hidden", "vocabulary", ...}
//! POST /v1/models/NAME:predict    {"instances": ["text", ...]} -> {"predictions": [{"label", "probs"}, ...]}
//! POST /v1/models/NAME:explain    the same, plus "explanations": one [{"token", "probs"}, ...] a text
//! POST /v1/models/NAME:generate   {"prime", "length", "temperature", "top_k", "top_p", "seed", "stream"}
//!                                 -> {"model", "prime", "text", "tokens": [{"token", "p"}, ...]}, or a line a token
//! ```
//!
//! The server calls [`Model::predict`](crate::model::Model::predict) and
//! [`Model::explain`](crate::model::Model::explain), the functions behind `rnn predict` and
//! `rnn explain`, and [`Model::generate`](crate::model::Model::generate), the one behind
//! `rnn generate`; it has no forward pass of its own.
//!
//! Whatever its clients do, the server's memory, file descriptors and compute stay bounded
//! ([`ServeConfig`] has every limit): request bodies and answers are counted in byte budgets,
//! explanations have a size limit and a bounded cost, every wait on a client has a timeout,
//! every request has a time budget, and connections have a limit, a share of it for each peer.
//! A request over a limit gets a status and a JSON error that names the flag; a 503 says when
//! to try again (`Retry-After`). Work whose client is gone is given up.
//!
//! - [`listener`]: the accept loop and the connection limits, in all and for each peer.
//! - [`connection`]: one connection: hyper's HTTP/1.1 under the router, the header and idle
//!   timeouts, the lingering close.
//! - [`routes`]: the HTTP handlers and the limits of a request. [`api`]: the protocol's JSON,
//!   and the size of an answer before it is computed; [`generate`]: the same for `:generate`.
//! - [`body`]: reading a request body within its size, time and budget; an answer's body,
//!   whole or streamed.
//! - [`budget`]: the byte budgets for request bodies and answers.
//! - [`served`]: the served model, a classifier or a language model, read from its file.
//! - [`batcher`]: the queues and the compute threads that batch texts into forward passes, and
//!   explain on threads of their own.
//! - [`sampler`]: generations, on threads of their own, a token at a time.
//! - [`metrics`]: the counters behind `/metrics`.

pub mod api;
pub mod batcher;
pub mod body;
pub mod budget;
pub mod connection;
pub mod generate;
pub mod listener;
pub mod metrics;
pub mod routes;
pub mod sampler;
pub mod served;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use batcher::{BatchConfig, Batcher};
use body::BodyLimits;
use budget::Budget;
use connection::Timeouts;
use metrics::Metrics;
use routes::{AppState, Served, Writer};
use sampler::Sampler;
pub use served::Kind;

use crate::model::Model;

/// Where and how to serve a model, and the limits that keep the server's memory, file
/// descriptors and permits bounded whatever its clients do.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The name in the URLs (`/v1/models/NAME`).
    pub name: String,
    /// The address to listen on (`127.0.0.1` keeps the server to this machine).
    pub host: String,
    /// The port; 0 lets the system pick a free one.
    pub port: u16,
    /// Compute threads (and threads of their rayon pool); for a language model, generations
    /// running at once.
    pub threads: usize,
    /// Texts in one forward pass at most.
    pub max_batch: usize,
    /// How long a batch waits for more texts.
    pub max_wait: Duration,
    /// Bytes in a request body at most.
    pub max_body: usize,
    /// Texts in one request at most.
    pub max_instances: usize,
    /// Model requests in progress at most, once their body is read (queued or computing);
    /// more are answered 503 at once. Request bodies held in memory are at most this many
    /// times `max_body` bytes.
    pub max_pending: usize,
    /// Tokens × labels in one explain answer at most; more is a 413.
    pub max_explain_probs: usize,
    /// Tokens in one generate answer at most; a longer `length` is a 413.
    pub max_generate_tokens: usize,
    /// Bytes a language model may hold to read one request's prime (it reads the whole prime
    /// in one pass, keeping every step's outputs and probabilities); a longer prime is a 413.
    pub max_prime_memory: usize,
    /// Bytes of answers held at once, from before they are computed until they are sent;
    /// an answer that does not fit is a 503.
    pub max_answer_memory: usize,
    /// Connections open at once at most.
    pub max_connections: usize,
    /// Connections open at once from one peer address at most.
    pub max_connections_per_peer: usize,
    /// From the first byte of a request's head to its end, at most.
    pub header_timeout: Duration,
    /// From the end of a request's head to the end of its body, at most; then a 408.
    pub body_timeout: Duration,
    /// How long a connection may stay without a byte read or written while no request of it
    /// is being handled.
    pub idle_timeout: Duration,
    /// From the end of a model request's body to its answer, at most (waiting in a queue
    /// included); then a 503, and the request's work is given up.
    pub max_request: Duration,
    /// How long, after SIGINT or SIGTERM, the server lets the requests in flight finish; then
    /// it gives up their work and exits.
    pub shutdown: Duration,
}

/// Serves `model` (a classifier or a language model: see [`Model::kind`]) until SIGINT or
/// SIGTERM, then stops accepting connections, finishes the requests in flight (waiting at most
/// `config.shutdown`, then giving up their work) and returns. `on_ready` is called with the address once the server listens, after the
/// signal handlers are installed.
///
/// # Errors
/// When the address cannot be bound, or threads cannot be started.
pub fn serve(
    model: Model,
    config: ServeConfig,
    on_ready: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads.max(1))
        .thread_name("rnn-http")
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let stopping = stop_signals()?;
        let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port)).await?;
        let metrics = Arc::new(Metrics::default());
        let served = served_of(model, &config, &metrics)?;
        // kept to give up the compute threads' work when the shutdown can wait no longer
        let stop_work = match &served {
            Served::Classifier { batcher, .. } => Some(batcher.stopper()),
            Served::LanguageModel(_) => None,
        };
        let state = Arc::new(AppState {
            name: config.name.clone(),
            served,
            metrics,
            body: BodyLimits {
                max_bytes: config.max_body,
                timeout: config.body_timeout,
            },
            max_instances: config.max_instances,
            max_explain_probs: config.max_explain_probs,
            max_generate_tokens: config.max_generate_tokens,
            max_request: config.max_request,
            in_progress: Arc::new(Semaphore::new(config.max_pending)),
            bodies: Budget::new(config.max_pending.saturating_mul(config.max_body)),
            answers: Budget::new(config.max_answer_memory),
        });
        let app = routes::router(state);
        on_ready(listener.local_addr()?);

        let timeouts = Timeouts {
            header: config.header_timeout,
            idle: config.idle_timeout,
        };
        let server = listener::run(
            listener,
            app,
            listener::Limits {
                total: config.max_connections,
                per_peer: config.max_connections_per_peer,
            },
            timeouts,
            stopping.clone(),
        );
        let mut overdue = stopping;
        let grace = config.shutdown;
        let give_up = async move {
            stopped(&mut overdue).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            () = server => {}
            () = give_up => {
                if let Some(stop) = &stop_work {
                    stop.stop();
                }
                eprintln!(
                    "gave up the requests still in flight after {} s (--shutdown-seconds)",
                    grace.as_secs_f64()
                );
            }
        }
        Ok::<(), std::io::Error>(())
    })?;
    // Connections still open are dropped; a generation still running stops at its next token
    // (its channel is closed), and the process does not wait for it.
    runtime.shutdown_timeout(SHUTDOWN_LEFTOVERS);
    Ok(())
}

/// What `model` is served as: a classifier behind its batcher, or a language model behind its
/// sampler, with `config`'s threads and limits, counting into `metrics`.
fn served_of(
    model: Model,
    config: &ServeConfig,
    metrics: &Arc<Metrics>,
) -> std::io::Result<Served> {
    Ok(match model.kind() {
        Kind::Classifier => {
            let model = Arc::new(model);
            let batcher = Batcher::start(
                Arc::clone(&model),
                BatchConfig {
                    threads: config.threads,
                    // explanations get their own threads, half as many: they never hold up
                    // a prediction, nor take all the cores
                    explain_threads: (config.threads / 2).max(1),
                    max_batch: config.max_batch,
                    max_wait: config.max_wait,
                    queue: config.max_pending,
                },
                Arc::clone(metrics),
            )?;
            Served::Classifier { model, batcher }
        }
        Kind::LanguageModel => Served::LanguageModel(Writer {
            token_json: generate::longest_token_json(model.vocab.tokens()),
            max_prime_tokens: generate::max_prime_tokens(
                model.network.arch(),
                config.max_prime_memory,
            ),
            sampler: Sampler::new(
                Arc::new(model),
                &config.name,
                config.threads,
                Arc::clone(metrics),
            ),
        }),
    })
}

/// How long the runtime waits, after the server has stopped, for threads still running work
/// whose requests are gone.
const SHUTDOWN_LEFTOVERS: Duration = Duration::from_millis(500);

/// Waits until `stopping` turns true (never, if its sender is gone without turning it).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    if stopping.wait_for(|&s| s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A flag that turns true on the first SIGINT or SIGTERM. The handlers are installed before it
/// returns, so that a signal arriving right after start-up already stops the server cleanly.
fn stop_signals() -> std::io::Result<watch::Receiver<bool>> {
    let (flag, stopping) = watch::channel(false);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            eprintln!("{name}: no new connections; finishing the requests in flight");
            let _ = flag.send(true);
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("Ctrl-C: no new connections; finishing the requests in flight");
            let _ = flag.send(true);
        }
    });
    Ok(stopping)
}
