//! Generations off the async runtime: each `:generate` request draws its tokens on a thread of
//! tokio's blocking pool, at most `--threads` at once, and sends what it writes over a channel
//! as each token is drawn.
//!
//! A generation is one row stepped token by token, with its own state: nothing to batch with
//! other requests, so each runs alone. Its answer is counted in the answer budget before it
//! starts, so it never waits for its client: the channel has no bound, the generation runs to
//! its end at full speed and gives its thread back, and a client that reads slowly holds only
//! bytes, counted. A client that goes away (its channel closed) stops its generation at the
//! next token.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::StatusCode;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::model::Model;
use crate::serve::api::ApiError;
use crate::serve::generate::{self, GenerateRequest, Written};
use crate::serve::metrics::Metrics;

/// Starts generations with a language model, at most a number at once.
pub struct Sampler {
    model: Arc<Model>,
    /// The model's name in answers.
    name: Arc<str>,
    /// One permit a generation running.
    running: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

/// What a generation sends: its answer's bytes, whole or a line at a time, in order. The
/// channel closes after the last.
pub type Output = mpsc::UnboundedReceiver<Bytes>;

impl Sampler {
    /// A sampler running at most `threads` generations at once with `model`, named `name` in
    /// the answers.
    pub fn new(model: Arc<Model>, name: &str, threads: usize, metrics: Arc<Metrics>) -> Self {
        Sampler {
            model,
            name: name.into(),
            running: Arc::new(Semaphore::new(threads.max(1))),
            metrics,
        }
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Waits for a turn (without blocking the async runtime), reads the request's prime on a
    /// blocking thread, and, once the model has read it, returns what the generation writes
    /// from there: the whole answer as one piece, or a line a token when `request.stream`
    /// (see [`generate`]). `hold` is kept until the generation ends.
    ///
    /// # Errors
    /// 400 with the library's sentence for sampling settings out of range or a prime of only
    /// unknown tokens; 500 when the generation failed before it read the prime; 503 when the
    /// server is stopping.
    pub async fn start(
        &self,
        request: GenerateRequest,
        hold: impl Send + 'static,
    ) -> Result<Output, ApiError> {
        let turn = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the model could not answer (the server is stopping)",
                )
            })?;
        let (started, ready) = oneshot::channel();
        let (out, output) = mpsc::unbounded_channel();
        let model = Arc::clone(&self.model);
        let name = Arc::clone(&self.name);
        let metrics = Arc::clone(&self.metrics);
        tokio::task::spawn_blocking(move || {
            let _held = (turn, hold);
            let stream = request.stream;
            // A panic drops this request's answer (its client gets an error) but keeps the
            // thread, and so the server, working.
            let finished = catch_unwind(AssertUnwindSafe(|| {
                write(&model, &name, &request, started, &out, &metrics)
            }));
            if finished.is_err() && stream {
                let line = generate::error_line("the generation failed before its end");
                let _ = out.send(line.into());
            }
        });
        match ready.await {
            Ok(Ok(())) => Ok(output),
            Ok(Err(message)) => Err(ApiError::bad_request(message)),
            Err(_) => Err(failed()),
        }
    }
}

/// The 500 of a generation that failed before its answer was written.
pub fn failed() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the generation failed before its answer was written",
    )
}

/// One generation, on a blocking thread: reads the prime, says on `started` whether it could,
/// then draws `request.length` tokens and sends them on `out` (stopping early when the
/// receiver is gone).
fn write(
    model: &Model,
    name: &str,
    request: &GenerateRequest,
    started: oneshot::Sender<Result<(), String>>,
    out: &mpsc::UnboundedSender<Bytes>,
    metrics: &Metrics,
) {
    let generator = match model.generate(&request.prime, &request.sampling) {
        Ok(generator) => generator,
        Err(e) => {
            let _ = started.send(Err(e.to_string()));
            return;
        }
    };
    if started.send(Ok(())).is_err() {
        return; // the request is gone
    }
    let mut written = Written::new(&request.prime, model.join(), request.length);
    for (id, p) in generator.take(request.length) {
        if out.is_closed() {
            metrics.observe_generated(written.tokens.len());
            return;
        }
        let token = model.token(id);
        if request.stream {
            let _ = out.send(generate::token_line(token, p).into());
        }
        written.push(token, p);
    }
    metrics.observe_generated(written.tokens.len());
    let last = if request.stream {
        generate::done_line(name, &request.prime, &written)
    } else {
        generate::answer(name, &request.prime, &written)
    };
    let _ = out.send(last.into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Tokens;
    use crate::lm::Sampling;
    use crate::model::ModelConfig;

    fn sampler() -> Sampler {
        let config = ModelConfig {
            hidden: 8,
            tokens: Tokens::Char,
            bidirectional: false,
            ..ModelConfig::seed()
        };
        let model = Model::for_text("abcabcabc", &config).unwrap();
        Sampler::new(Arc::new(model), "m", 1, Arc::new(Metrics::default()))
    }

    fn request(prime: &str, length: usize, stream: bool) -> GenerateRequest {
        GenerateRequest {
            prime: prime.into(),
            length,
            sampling: Sampling {
                seed: 7,
                ..Sampling::default()
            },
            stream,
        }
    }

    async fn collect(mut output: Output) -> Vec<String> {
        let mut pieces = Vec::new();
        while let Some(bytes) = output.recv().await {
            pieces.push(String::from_utf8(bytes.to_vec()).unwrap());
        }
        pieces
    }

    #[tokio::test]
    async fn a_generation_writes_what_the_library_draws_whole_or_a_line_a_token() {
        let sampler = sampler();
        let model = sampler.model();
        let expected: String = model
            .generate("ab", &request("ab", 5, false).sampling)
            .unwrap()
            .take(5)
            .map(|(t, _)| model.token(t).to_string())
            .collect();
        let whole = collect(sampler.start(request("ab", 5, false), ()).await.unwrap()).await;
        assert_eq!(whole.len(), 1);
        let answer: serde_json::Value = serde_json::from_str(&whole[0]).unwrap();
        assert_eq!(answer["text"], expected.as_str());
        assert_eq!(answer["tokens"].as_array().unwrap().len(), 5);

        let lines = collect(sampler.start(request("ab", 5, true), ()).await.unwrap()).await;
        assert_eq!(lines.len(), 6, "{lines:?}");
        let tokens: String = lines[..5]
            .iter()
            .map(|l| {
                let line: serde_json::Value = serde_json::from_str(l).unwrap();
                line["token"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(tokens, expected);
        assert!(lines[5].starts_with(r#"{"done":true,"model":"m","prime":"ab","text":"#));
    }

    #[tokio::test]
    async fn a_prime_the_model_cannot_read_is_a_400_with_the_library_sentence() {
        let e = sampler()
            .start(request("zzz", 5, true), ())
            .await
            .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message
                .starts_with("the prime \"zzz\" has no token the model knows"),
            "{}",
            e.message
        );
    }
}
