//! Dynamic batching: the texts of requests that arrive together go through one forward pass.
//!
//! Requests put a job (their texts and a one-shot reply channel) on a bounded queue. A fixed
//! number of compute threads each take a first job, then gather more until the batch holds
//! `max_batch` texts or `max_wait` has passed since the first job arrived, run
//! [`Model::predict`] once over all the texts (inside one rayon pool of `threads` threads, built
//! once), and send each job its share of the answers. The async runtime only waits on the reply
//! channels, so it is never blocked by a forward pass, and no thread is started per request.
//!
//! A batch waits for more texts only while another request is on its way to the queue (an
//! [`Arrival`] is alive: its body is being parsed). With none, it runs at once, so that a lone
//! client does not pay `max_wait` on every request; under load the queue itself fills batches.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
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

/// How often a waiting batch checks whether any request is still on its way.
const RECHECK: Duration = Duration::from_micros(200);

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
    /// Requests on their way to the queue.
    arriving: Arc<AtomicUsize>,
}

/// A request on its way to the queue: while one is alive, a batch being gathered waits for it
/// (up to `max_wait`). Made by [`Batcher::arrival`], ended by [`Batcher::run`] or by dropping it.
pub struct Arrival {
    arriving: Arc<AtomicUsize>,
}

impl Drop for Arrival {
    fn drop(&mut self) {
        self.arriving.fetch_sub(1, Ordering::SeqCst);
    }
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
        let arriving = Arc::new(AtomicUsize::new(0));
        let workers = (0..threads)
            .map(|i| {
                let worker = Worker {
                    queue: receiver.clone(),
                    model: Arc::clone(&model),
                    pool: Arc::clone(&pool),
                    config: config.clone(),
                    metrics: Arc::clone(&metrics),
                    arriving: Arc::clone(&arriving),
                };
                std::thread::Builder::new()
                    .name(format!("rnn-batcher-{i}"))
                    .spawn(move || worker.run())
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Batcher {
            queue: Some(sender),
            workers,
            arriving,
        })
    }

    /// Announces a request whose texts will be queued soon, so that batches wait for it.
    pub fn arrival(&self) -> Arrival {
        self.arriving.fetch_add(1, Ordering::SeqCst);
        Arrival {
            arriving: Arc::clone(&self.arriving),
        }
    }

    /// Queues `texts` (ending their `arrival`) and waits, without blocking the async runtime,
    /// for their predictions and, if `explain`, their traces.
    ///
    /// # Errors
    /// [`Refusal::Busy`] at once when the queue is full.
    pub async fn run(
        &self,
        texts: Vec<String>,
        explain: bool,
        arrival: Arrival,
    ) -> Result<Answer, Refusal> {
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
        drop(arrival); // after the job is queued, so that a gathering batch never misses it
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
    arriving: Arc<AtomicUsize>,
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
                let Some(job) = self.next_job(deadline) else {
                    break;
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

impl Worker {
    /// The next job for the batch being gathered: one already queued, or one that arrives
    /// before `deadline` while some request is on its way; `None` when the batch should run.
    fn next_job(&self, deadline: Instant) -> Option<Job> {
        loop {
            match self.queue.try_recv() {
                Ok(job) => return Some(job),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            let now = Instant::now();
            if now >= deadline || self.arriving.load(Ordering::SeqCst) == 0 {
                return None;
            }
            match self.queue.recv_deadline(deadline.min(now + RECHECK)) {
                Ok(job) => return Some(job),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    fn batcher(max_wait_ms: u64) -> (Batcher, Arc<Metrics>, Arc<Model>) {
        let data = [("good", "pos"), ("bad", "neg"), ("not good", "neg")];
        let config = ModelConfig {
            hidden: 4,
            ..ModelConfig::seed()
        };
        let model = Arc::new(Model::for_data(data, &config).unwrap());
        let metrics = Arc::new(Metrics::default());
        let config = BatchConfig {
            threads: 1,
            max_batch: 8,
            max_wait: Duration::from_millis(max_wait_ms),
            queue: 16,
        };
        let batcher = Batcher::start(Arc::clone(&model), config, Arc::clone(&metrics)).unwrap();
        (batcher, metrics, model)
    }

    fn passes(metrics: &Metrics) -> String {
        let text = metrics.render();
        let line = text
            .lines()
            .find(|l| l.starts_with("rnn_batch_texts_count"));
        line.unwrap().to_string()
    }

    #[tokio::test]
    async fn a_lone_request_does_not_wait_for_company() {
        let (batcher, _, model) = batcher(2_000);
        let start = Instant::now();
        let answer = batcher
            .run(vec!["good".into()], false, batcher.arrival())
            .await
            .unwrap();
        assert!(start.elapsed() < Duration::from_millis(1_000));
        assert_eq!(answer.predictions, model.predict(&["good"]));
        assert!(answer.explanations.is_none());
    }

    #[tokio::test]
    async fn a_request_on_its_way_joins_the_batch_and_answers_go_back_in_order() {
        let (batcher, metrics, model) = batcher(2_000);
        let batcher = Arc::new(batcher);
        let on_its_way = batcher.arrival();
        let first = {
            let batcher = Arc::clone(&batcher);
            tokio::spawn(async move {
                let arrival = batcher.arrival();
                batcher
                    .run(vec!["good".into(), "bad".into()], false, arrival)
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = batcher
            .run(vec!["not good".into()], true, on_its_way)
            .await
            .unwrap();
        let first = first.await.unwrap().unwrap();
        assert_eq!(
            passes(&metrics),
            "rnn_batch_texts_count 1",
            "one pass for both"
        );
        assert_eq!(first.predictions, model.predict(&["good", "bad"]));
        assert_eq!(second.predictions, model.predict(&["not good"]));
        let explanation = &second.explanations.unwrap()[0];
        assert_eq!(explanation.tokens, ["not", "good"]);
    }
}
