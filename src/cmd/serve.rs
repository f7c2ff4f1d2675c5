//! `rnn serve`: answer predictions (a classifier) or write text (a language model) over HTTP,
//! with a page to try the model in a browser.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use rnn::model::{Model, Task};
use rnn::serve::{ServeConfig, serve};

/// Serve a model over HTTP (the KServe V1 / TensorFlow Serving REST protocol).
///
/// Routes: GET / (a page to try the model), GET /healthz, GET /metrics, GET /v1/models,
/// GET /v1/models/NAME; for a classifier (`rnn train`), POST /v1/models/NAME:predict and
/// POST /v1/models/NAME:explain with {"instances": ["text", ...]}; for a language model
/// (`rnn lm`), POST /v1/models/NAME:generate with {"prime": "...", "length": N, "temperature":
/// T, "seed": S, "stream": true|false}. SIGINT or SIGTERM stops it after the requests in
/// flight, waiting --shutdown-seconds for them at most.
///
/// Limits keep the server's memory, file descriptors and compute bounded whatever clients do;
/// a request over one gets a JSON error: 413 for a body over --max-body, more texts than
/// --max-instances, an explanation over --max-explain-probs, a length over
/// --max-generate-tokens or a prime over --max-prime-memory; 503 when --max-pending requests
/// are in progress, or the memory for bodies (--max-pending × --max-body) or for answers
/// (--max-answer-memory) is taken, or a request is not answered within --max-request-seconds
/// (its work is then given up, as it is when its client hangs up); every 503 has Retry-After.
/// Explanations run on threads of their own, so they never hold up predictions. 408 for a body
/// slower than --body-timeout. A head slower than --header-timeout, or a connection idle for
/// --idle-timeout, is closed. Over --max-connections (or a peer's --max-connections-per-peer),
/// the connection idle longest (of that peer) is closed to make room, or the new one gets 503
/// when none is idle. GET /healthz answers 503 {"status": "busy", "queues": {...}} while a
/// predict request would be refused, or a queue's oldest request has waited half of
/// --max-request-seconds.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The model file: a classifier (`rnn train`) or a language model (`rnn lm`).
    #[arg(long)]
    model: PathBuf,
    /// The name in the URLs [default: the model file's name without its extension].
    #[arg(long)]
    name: Option<String>,
    /// The address to listen on; the default keeps the server to this machine.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// The port; 0 picks a free one (the start-up line says which).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Compute threads; for a language model, generations running at once [default: one per
    /// core; at most 4 per core, or 16].
    #[arg(long, value_parser = super::thread_count)]
    threads: Option<usize>,
    /// Texts in one forward pass at most.
    #[arg(long, default_value_t = 64, value_parser = super::at_least_one)]
    max_batch: usize,
    /// Milliseconds a batch waits for more texts after its first request arrived.
    #[arg(long, default_value_t = 2)]
    max_wait_ms: u64,
    /// Bytes in a request body at most.
    #[arg(long, default_value_t = 1 << 20, value_parser = super::at_least_one)]
    max_body: usize,
    /// Texts in one request at most.
    #[arg(long, default_value_t = 1024, value_parser = super::at_least_one)]
    max_instances: usize,
    /// Model requests read and not yet answered (queued or computing) at most; more get 503.
    /// Request bodies in memory are at most this × --max-body bytes (256 MiB by default).
    #[arg(long, default_value_t = 256, value_parser = super::at_least_one)]
    max_pending: usize,
    /// Probabilities (tokens × labels) in one explain answer at most; more get 413. 100,000
    /// is a 50,000-token text for two labels, an answer of about 4 MB.
    #[arg(long, default_value_t = 100_000, value_parser = super::at_least_one)]
    max_explain_probs: usize,
    /// Tokens one generate request may ask for at most ("length"); more get 413.
    #[arg(long, default_value_t = 2000, value_parser = super::at_least_one)]
    max_generate_tokens: usize,
    /// Bytes a language model may hold to read the prime of one generate request (4 bytes a
    /// token: it reads the prime a window at a time); a longer prime gets 413. The status (GET
    /// /v1/models/NAME) says how many tokens that is.
    #[arg(long, default_value_t = 64 << 20, value_parser = super::at_least_one)]
    max_prime_memory: usize,
    /// Bytes of answers in memory at once, from before they are computed until the client has
    /// taken them; an answer gets 503 when it needs more than half of what is left.
    #[arg(long, default_value_t = 128 << 20, value_parser = super::at_least_one)]
    max_answer_memory: usize,
    /// Connections open at once at most; keep it below the open-file limit (ulimit -n).
    #[arg(long, default_value_t = 1024, value_parser = super::at_least_one)]
    max_connections: usize,
    /// Connections open at once from one peer address at most, so that one peer keeping its
    /// connections busy (a body a byte at a time) cannot take them all [default: half of
    /// --max-connections]. Behind a proxy, whose connections all come from one address, give
    /// --max-connections.
    #[arg(long, value_parser = super::at_least_one)]
    max_connections_per_peer: Option<usize>,
    /// Seconds from the first byte of a request's head to its end; slower ones are closed.
    #[arg(long, default_value = "10", value_parser = seconds)]
    header_timeout: Duration,
    /// Seconds from the end of a request's head to the end of its body; slower ones get 408.
    #[arg(long, default_value = "30", value_parser = seconds)]
    body_timeout: Duration,
    /// Seconds a connection may stay without a byte read or written while no request of it
    /// is being handled: between requests, or with an answer its client does not read. Keep it
    /// above the idle timeout of a proxy in front.
    #[arg(long, default_value = "30", value_parser = seconds)]
    idle_timeout: Duration,
    /// Seconds from the end of a model request's body to its answer, waiting in a queue
    /// included; a request not answered by then gets 503 and its work is given up.
    #[arg(long, default_value = "30", value_parser = seconds)]
    max_request_seconds: Duration,
    /// Seconds the server lets the requests in flight finish after SIGINT or SIGTERM; then it
    /// gives up their work and exits (with status 0).
    #[arg(long, default_value = "10", value_parser = seconds)]
    shutdown_seconds: Duration,
}

/// Labels named in the start-up line at most.
const SHOWN_LABELS: usize = 8;

pub fn run(args: ServeArgs) -> Result<()> {
    let name = match args.name {
        Some(name) => name,
        None => args
            .model
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into()),
    };
    if name.is_empty()
        || name.contains(['/', ':', '?', '#', '%'])
        || name.contains(char::is_whitespace)
    {
        bail!("--name {name:?}: a model name must be non-empty, without / : ? # % or spaces");
    }
    let model = Model::load(&args.model)?;
    let summary = match &model.task {
        Task::Classifier { labels, .. } => format!(
            "{}, V = {}, labels {}",
            model.network.arch(),
            model.vocab.len(),
            label_list(labels)
        ),
        Task::NextToken => format!(
            "a language model: {}, V = {}, {} tokens",
            model.network.arch(),
            model.vocab.len(),
            model.tokens.name()
        ),
    };
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let config = ServeConfig {
        name: name.clone(),
        host: args.host.clone(),
        port: args.port,
        threads,
        max_batch: args.max_batch,
        max_wait: Duration::from_millis(args.max_wait_ms),
        max_body: args.max_body,
        max_instances: args.max_instances,
        max_pending: args.max_pending,
        max_explain_probs: args.max_explain_probs,
        max_generate_tokens: args.max_generate_tokens,
        max_prime_memory: args.max_prime_memory,
        max_answer_memory: args.max_answer_memory,
        max_connections: args.max_connections,
        max_connections_per_peer: args
            .max_connections_per_peer
            .unwrap_or(args.max_connections.div_ceil(2)),
        header_timeout: args.header_timeout,
        body_timeout: args.body_timeout,
        idle_timeout: args.idle_timeout,
        max_request: args.max_request_seconds,
        shutdown: args.shutdown_seconds,
    };
    let path = args.model.display().to_string();
    serve(model, config, |address| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "Serving {path} as {name:?} ({summary}) on http://{address}"
        );
        let _ = out.flush();
    })
    .with_context(|| format!("cannot serve on {}:{}", args.host, args.port))
}

/// Parses a positive number of seconds, fractions allowed (`--body-timeout 0.5`).
fn seconds(s: &str) -> Result<Duration, String> {
    let x = super::positive_number(s)?;
    Duration::try_from_secs_f32(x).map_err(|_| format!("{s} seconds is too long"))
}

/// The labels, comma-separated, the first few only when there are many.
fn label_list(labels: &[String]) -> String {
    if labels.len() <= SHOWN_LABELS {
        labels.join(", ")
    } else {
        format!(
            "{}, ... ({} labels)",
            labels[..SHOWN_LABELS].join(", "),
            labels.len()
        )
    }
}
