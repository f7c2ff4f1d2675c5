//! Dynamic batching: the texts of requests that arrive together go through one forward pass.
//!
//! Requests put a [`Job`] (their texts and a one-shot reply channel) on a bounded queue. A fixed
//! number of compute threads each take a first job, then gather more until the batch holds
//! `max_batch` texts or `max_wait` has passed since the first job arrived, run
//! [`Model::predict`] once over all the texts (inside one rayon pool of `threads` threads, built
//! once), and send each job its share of the answers. The async runtime only waits on the reply
//! channels, so it is never blocked by a forward pass, and no thread is started per request.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use rayon::prelude::*;
use tokio::sync::oneshot;

use crate::model::{Explanation, Model, Prediction};
use crate::serve::metrics::Metrics;

/// How the batcher groups texts and how much it may hold.
#[derive(Clone, Debug)]
pub struct BatchConfig {
    /// Compute threads, and threads of the rayon pool they share.
    pub threads: usize,
    /// Texts in one forward pass at most (a single larger request runs alone).
    pub max_batch: usize,
    /// How long a batch waits for more texts after its first job arrived.
    pub max_wait: Duration,
    /// Jobs waiting in the queue at most; more are refused.
    pub queue: usize,
}

/// What a request gets back: a prediction for every text, in order, and, when it asked for
/// them, the per-token traces.
pub struct Answer {
    pub predictions: Vec<Prediction>,
    pub explanations: Option<Vec<Explanation>>,
}

/// Why a job got no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The queue is full.
    Busy,
    /// The batcher is stopping, or the forward pass failed.
    Unavailable,
}

/// One request's texts, waiting for a compute thread.
struct Job {
    texts: Vec<String>,
    explain: bool,
    arrived: Instant,
    reply: oneshot::Sender<Answer>,
}

/// The queue and the compute threads that empty it. Dropping it lets the threads finish the
/// jobs already queued, then waits for them.
pub struct Batcher {
    queue: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Batcher {
    /// Starts the compute threads and their rayon pool.
    ///
    /// # Errors
    /// When the operating system refuses a thread.
    pub fn start(
        model: Arc<Model>,
        config: BatchConfig,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let threads = config.threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("rnn-compute-pool-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        let pool = Arc::new(pool);
        let (sender, receiver) = crossbeam_channel::bounded(config.queue.max(1));
        let workers = (0..threads)
            .map(|i| {
                let worker = Worker {
                    queue: receiver.clone(),
                    model: Arc::clone(&model),
                    pool: Arc::clone(&pool),
                    config: config.clone(),
                    metrics: Arc::clone(&metrics),
                };
                std::thread::Builder::new()
                    .name(format!("rnn-batcher-{i}"))
                    .spawn(move || worker.run())
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Batcher {
            queue: Some(sender),
            workers,
        })
    }

    /// Queues `texts` and waits (without blocking the async runtime) for their predictions and,
    /// if `explain`, their traces.
    ///
    /// # Errors
    /// [`Refusal::Busy`] at once when the queue is full.
    pub async fn run(&self, texts: Vec<String>, explain: bool) -> Result<Answer, Refusal> {
        let queue = self.queue.as_ref().ok_or(Refusal::Unavailable)?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            texts,
            explain,
            arrived: Instant::now(),
            reply,
        };
        queue.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => Refusal::Busy,
            TrySendError::Disconnected(_) => Refusal::Unavailable,
        })?;
        answer.await.map_err(|_| Refusal::Unavailable)
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        // Closing the queue ends each worker once the queue is empty.
        self.queue = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// One compute thread.
struct Worker {
    queue: Receiver<Job>,
    model: Arc<Model>,
    pool: Arc<rayon::ThreadPool>,
    config: BatchConfig,
    metrics: Arc<Metrics>,
}

impl Worker {
    fn run(self) {
        // A job that did not fit into the last batch starts the next one.
        let mut carried: Option<Job> = None;
        loop {
            let first = match carried.take() {
                Some(job) => job,
                None => match self.queue.recv() {
                    Ok(job) => job,
                    Err(_) => return, // closed and empty
                },
            };
            let deadline = first.arrived + self.config.max_wait;
            let mut texts = first.texts.len();
            let mut jobs = vec![first];
            while texts < self.config.max_batch {
                let Ok(job) = self.queue.recv_deadline(deadline) else {
                    break; // the wait is over, or the queue closed
                };
                if texts + job.texts.len() > self.config.max_batch {
                    carried = Some(job);
                    break;
                }
                texts += job.texts.len();
                jobs.push(job);
            }
            // A client that went away needs no answer.
            jobs.retain(|job| !job.reply.is_closed());
            if jobs.is_empty() {
                continue;
            }
            let texts: usize = jobs.iter().map(|job| job.texts.len()).sum();
            // A panic in the forward pass drops this batch's replies (its requests get an
            // error) but keeps the thread, and so the server, working.
            let answers = catch_unwind(AssertUnwindSafe(|| {
                self.pool.install(|| answer(&self.model, &jobs))
            }));
            self.metrics.observe_batch(texts);
            if let Ok(answers) = answers {
                for (job, answer) in jobs.into_iter().zip(answers) {
                    let _ = job.reply.send(answer);
                }
            }
        }
    }
}

/// One forward pass over the texts of all `jobs`, split back into one answer a job.
fn answer(model: &Model, jobs: &[Job]) -> Vec<Answer> {
    let texts: Vec<&str> = jobs
        .iter()
        .flat_map(|job| job.texts.iter().map(String::as_str))
        .collect();
    let mut predictions = model.predict(&texts).into_iter();
    jobs.iter()
        .map(|job| Answer {
            predictions: predictions.by_ref().take(job.texts.len()).collect(),
            explanations: job
                .explain
                .then(|| job.texts.par_iter().map(|t| model.explain(t)).collect()),
        })
        .collect()
}
