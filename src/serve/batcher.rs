//! Dynamic batching: the texts of predict requests that arrive together go through one
//! forward pass; explain requests, whose work is longer, have threads of their own.
//!
//! Requests put a job (their texts and a one-shot reply channel) on a bounded queue, one for
//! predict requests and one for explain requests. A fixed number of predict threads each take a
//! first job, then gather more until the batch holds `max_batch` texts (or 256 KiB of them) or
//! `max_wait` has passed since the first job arrived, run [`Model::predict`] once over all the
//! texts (inside one rayon pool of `threads` threads, built once), and send each job its share
//! of the answers. The
//! explain threads (`explain_threads`, with a rayon pool of as many threads) take one job at a
//! time and run [`Model::explain_until`] over its texts. The async runtime only waits on the
//! reply channels, so it is never blocked by a forward pass, and no thread is started per
//! request.
//!
//! **No starvation.** Explanations never share a queue, a thread or a pool with predictions:
//! however many long explanations are waiting, a predict request waits only for the forward
//! passes of other predict requests, and the operating system shares the cores between the two
//! pools.
//!
//! **No work for nobody.** A job whose request is gone (its client hung up, or the request ran
//! out of `--max-request-seconds` and was answered 503: either way its reply channel is closed)
//! is dropped before its batch runs, and an explanation gives up between batches of prefixes
//! (tens of ms apart). So does all work once the batcher is stopping ([`Batcher::stop`]).
//!
//! A batch waits for more texts only while another predict request is on its way to the queue
//! (an [`Arrival`] is alive: its body is being parsed). With none, it runs at once, so that a
//! lone client does not pay `max_wait` on every request; under load the queue itself fills
//! batches.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use rayon::prelude::*;
use tokio::sync::oneshot;

use crate::model::{Explanation, Kind, Model, Prediction};
use crate::serve::metrics::Metrics;

/// How the batcher groups texts and how much it may hold.
#[derive(Clone, Debug)]
pub struct BatchConfig {
    /// Predict threads, and threads of the rayon pool they share.
    pub threads: usize,
    /// Explain threads, and threads of the rayon pool they share.
    pub explain_threads: usize,
    /// Texts in one forward pass at most (a single larger request runs alone).
    pub max_batch: usize,
    /// How long a batch waits for more texts after its first job arrived.
    pub max_wait: Duration,
    /// Jobs waiting in each queue at most; more are refused.
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

/// How many jobs wait in a queue, and for how long the one waiting longest has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load {
    /// Jobs queued and not yet taken by a thread.
    pub queued: usize,
    /// How long the job queued longest has waited; zero when none is.
    pub oldest: Duration,
}

/// Bytes of text in one batch at most (a single larger request runs alone): a batch is one
/// forward pass, which cannot be given up half-way, so a few requests of long texts must not
/// make one pass of minutes (and of gigabytes) that every request queued behind waits for.
const BATCH_BYTES: usize = 256 * 1024;

/// How often a waiting batch checks whether any request is still on its way.
const RECHECK: Duration = Duration::from_micros(200);

/// One request's texts, waiting for a compute thread.
struct Job {
    texts: Vec<String>,
    /// Its number in [`Waiting`].
    id: u64,
    arrived: Instant,
    reply: oneshot::Sender<Answer>,
}

impl Job {
    /// The bytes of its texts: at least as many as their tokens.
    fn bytes(&self) -> usize {
        self.texts.iter().map(String::len).sum()
    }

    /// Whether nobody waits for the answer any more.
    fn is_abandoned(&self) -> bool {
        self.reply.is_closed()
    }
}

/// When each job still in a queue arrived, by its number (numbers grow, so the first entry is
/// the oldest).
#[derive(Default)]
struct Waiting {
    next: AtomicU64,
    jobs: Mutex<BTreeMap<u64, Instant>>,
}

impl Waiting {
    fn add(&self, arrived: Instant) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, arrived);
        id
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn load(&self) -> Load {
        let jobs = self.lock();
        Load {
            queued: jobs.len(),
            oldest: jobs
                .values()
                .next()
                .map_or(Duration::ZERO, |arrived| arrived.elapsed()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Instant>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A queue and what waits in it.
struct Queue {
    sender: Option<Sender<Job>>,
    waiting: Arc<Waiting>,
}

/// The queues and the compute threads that empty them. Dropping it stops it
/// ([`Batcher::stop`]) and waits for the threads.
pub struct Batcher {
    predict: Queue,
    explain: Queue,
    workers: Vec<JoinHandle<()>>,
    /// Predict requests on their way to the queue.
    arriving: Arc<AtomicUsize>,
    /// Set when no more work is to be done: queued jobs are dropped, explanations given up.
    stopping: Arc<AtomicBool>,
}

/// A predict request on its way to the queue: while one is alive, a batch being gathered waits
/// for it (up to `max_wait`). Made by [`Batcher::arrival`], ended by [`Batcher::run`] or by
/// dropping it.
pub struct Arrival {
    arriving: Option<Arc<AtomicUsize>>,
}

impl Drop for Arrival {
    fn drop(&mut self) {
        if let Some(arriving) = &self.arriving {
            arriving.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Stops a [`Batcher`] from elsewhere (see [`Batcher::stopper`]).
#[derive(Clone, Debug)]
pub struct Stopper(Arc<AtomicBool>);

impl Stopper {
    /// As [`Batcher::stop`].
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What every compute thread shares.
#[derive(Clone)]
struct Shared {
    model: Arc<Model>,
    metrics: Arc<Metrics>,
    stopping: Arc<AtomicBool>,
}

impl Batcher {
    /// Starts the compute threads and their rayon pools, for a classifier's requests.
    ///
    /// # Errors
    /// When the operating system refuses a thread; [`std::io::ErrorKind::InvalidInput`] for a
    /// language model, which predicts no label (the server writes text with one: see
    /// [`super::sampler`]).
    pub fn start(
        model: Arc<Model>,
        config: BatchConfig,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        model
            .check_kind(Kind::Classifier, "the batcher")
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let shared = Shared {
            model,
            metrics,
            stopping: Arc::new(AtomicBool::new(false)),
        };
        let arriving = Arc::new(AtomicUsize::new(0));
        let pool = |threads: usize, name: &'static str| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(move |i| format!("rnn-{name}-pool-{i}"))
                .build()
                .map(Arc::new)
                .map_err(std::io::Error::other)
        };
        let (threads, explain_threads) = (config.threads.max(1), config.explain_threads.max(1));
        let (predict_pool, explain_pool) =
            (pool(threads, "predict")?, pool(explain_threads, "explain")?);
        let (predict_sender, predict_receiver) = crossbeam_channel::bounded(config.queue.max(1));
        let (explain_sender, explain_receiver) = crossbeam_channel::bounded(config.queue.max(1));
        let (predict_waiting, explain_waiting) = (Arc::default(), Arc::default());
        let mut workers = Vec::new();
        for i in 0..threads {
            let worker = Worker {
                queue: predict_receiver.clone(),
                waiting: Arc::clone(&predict_waiting),
                shared: shared.clone(),
                pool: Arc::clone(&predict_pool),
                config: config.clone(),
                arriving: Arc::clone(&arriving),
            };
            workers.push(
                std::thread::Builder::new()
                    .name(format!("rnn-batcher-{i}"))
                    .spawn(move || worker.run())?,
            );
        }
        for i in 0..explain_threads {
            let worker = Explainer {
                queue: explain_receiver.clone(),
                waiting: Arc::clone(&explain_waiting),
                shared: shared.clone(),
                pool: Arc::clone(&explain_pool),
            };
            workers.push(
                std::thread::Builder::new()
                    .name(format!("rnn-explainer-{i}"))
                    .spawn(move || worker.run())?,
            );
        }
        Ok(Batcher {
            predict: Queue {
                sender: Some(predict_sender),
                waiting: predict_waiting,
            },
            explain: Queue {
                sender: Some(explain_sender),
                waiting: explain_waiting,
            },
            workers,
            arriving,
            stopping: shared.stopping,
        })
    }

    /// Announces a request whose texts will be queued soon: a predict request's makes the
    /// batches wait for it; an explain request's (`explain`) does nothing.
    pub fn arrival(&self, explain: bool) -> Arrival {
        if explain {
            return Arrival { arriving: None };
        }
        self.arriving.fetch_add(1, Ordering::SeqCst);
        Arrival {
            arriving: Some(Arc::clone(&self.arriving)),
        }
    }

    /// The jobs waiting in the predict queue, or the explain queue (`explain`).
    pub fn load(&self, explain: bool) -> Load {
        self.queue(explain).waiting.load()
    }

    fn queue(&self, explain: bool) -> &Queue {
        if explain {
            &self.explain
        } else {
            &self.predict
        }
    }

    /// A handle that stops the batcher ([`Batcher::stop`]) from elsewhere.
    pub fn stopper(&self) -> Stopper {
        Stopper(Arc::clone(&self.stopping))
    }

    /// Gives up all work: jobs still queued are dropped (their requests get
    /// [`Refusal::Unavailable`]), explanations stop at their next batch of prefixes, and
    /// forward passes already running end. For a shutdown that may wait no longer.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Queues `texts` (ending their `arrival`) and waits, without blocking the async runtime,
    /// for their predictions and, if `explain`, their traces. Dropping the future (the client
    /// is gone, or the request is over its time) tells the compute threads to drop the job, or
    /// to give up its explanation.
    ///
    /// # Errors
    /// [`Refusal::Busy`] at once when the queue is full.
    pub async fn run(
        &self,
        texts: Vec<String>,
        explain: bool,
        arrival: Arrival,
    ) -> Result<Answer, Refusal> {
        let queue = self.queue(explain);
        let sender = queue.sender.as_ref().ok_or(Refusal::Unavailable)?;
        let (reply, answer) = oneshot::channel();
        let arrived = Instant::now();
        let id = queue.waiting.add(arrived);
        let job = Job {
            texts,
            id,
            arrived,
            reply,
        };
        if let Err(e) = sender.try_send(job) {
            queue.waiting.remove(id);
            return Err(match e {
                TrySendError::Full(_) => Refusal::Busy,
                TrySendError::Disconnected(_) => Refusal::Unavailable,
            });
        }
        drop(arrival); // after the job is queued, so that a gathering batch never misses it
        answer.await.map_err(|_| Refusal::Unavailable)
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.stop();
        // Closing the queues ends each worker once its queue is empty.
        self.predict.sender = None;
        self.explain.sender = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Shared {
    /// Whether `job` is to be dropped rather than answered: nobody waits for it, or the
    /// batcher is stopping. Counts it in the metrics if so.
    fn drops(&self, job: &Job) -> bool {
        let drop = job.is_abandoned() || self.stopping.load(Ordering::SeqCst);
        if drop {
            self.metrics.observe_abandoned();
        }
        drop
    }
}

/// One predict thread.
struct Worker {
    queue: Receiver<Job>,
    waiting: Arc<Waiting>,
    shared: Shared,
    pool: Arc<rayon::ThreadPool>,
    config: BatchConfig,
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
                    Ok(job) => self.taken(job),
                    Err(_) => return, // closed and empty
                },
            };
            let deadline = first.arrived + self.config.max_wait;
            let mut texts = first.texts.len();
            let mut bytes = first.bytes();
            let mut jobs = vec![first];
            while texts < self.config.max_batch && bytes < BATCH_BYTES {
                let Some(job) = self.next_job(deadline) else {
                    break;
                };
                if texts + job.texts.len() > self.config.max_batch
                    || bytes + job.bytes() > BATCH_BYTES
                {
                    carried = Some(job);
                    break;
                }
                texts += job.texts.len();
                bytes += job.bytes();
                jobs.push(job);
            }
            // A client that went away needs no answer.
            jobs.retain(|job| !self.shared.drops(job));
            if jobs.is_empty() {
                continue;
            }
            let texts: usize = jobs.iter().map(|job| job.texts.len()).sum();
            // A panic in the forward pass drops this batch's replies (its requests get an
            // error) but keeps the thread, and so the server, working.
            let answers = catch_unwind(AssertUnwindSafe(|| {
                self.pool.install(|| predict(&self.shared.model, &jobs))
            }));
            self.shared.metrics.observe_batch(texts);
            if let Ok(answers) = answers {
                for (job, answer) in jobs.into_iter().zip(answers) {
                    let _ = job.reply.send(answer);
                }
            }
        }
    }

    /// `job`, taken off the queue.
    fn taken(&self, job: Job) -> Job {
        self.waiting.remove(job.id);
        job
    }

    /// The next job for the batch being gathered: one already queued, or one that arrives
    /// before `deadline` while some request is on its way; `None` when the batch should run.
    fn next_job(&self, deadline: Instant) -> Option<Job> {
        loop {
            match self.queue.try_recv() {
                Ok(job) => return Some(self.taken(job)),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            let now = Instant::now();
            if now >= deadline || self.arriving.load(Ordering::SeqCst) == 0 {
                return None;
            }
            match self.queue.recv_deadline(deadline.min(now + RECHECK)) {
                Ok(job) => return Some(self.taken(job)),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}

/// One forward pass over the texts of all `jobs`, split back into one answer a job. (The model
/// is a classifier, as [`Batcher::start`] checked: its predictions do not fail. Were it not,
/// no job would be answered, as after a panic.)
fn predict(model: &Model, jobs: &[Job]) -> Vec<Answer> {
    let texts: Vec<&str> = jobs
        .iter()
        .flat_map(|job| job.texts.iter().map(String::as_str))
        .collect();
    let Ok(predictions) = model.predict(&texts) else {
        return Vec::new();
    };
    let mut predictions = predictions.into_iter();
    jobs.iter()
        .map(|job| Answer {
            predictions: predictions.by_ref().take(job.texts.len()).collect(),
            explanations: None,
        })
        .collect()
}

/// One explain thread: a job at a time, given up as soon as nobody waits for it.
struct Explainer {
    queue: Receiver<Job>,
    waiting: Arc<Waiting>,
    shared: Shared,
    pool: Arc<rayon::ThreadPool>,
}

impl Explainer {
    fn run(self) {
        while let Ok(job) = self.queue.recv() {
            self.waiting.remove(job.id);
            if self.shared.drops(&job) {
                continue;
            }
            let given_up = || job.is_abandoned() || self.shared.stopping.load(Ordering::SeqCst);
            let texts: Vec<&str> = job.texts.iter().map(String::as_str).collect();
            let model = &*self.shared.model;
            // As for predictions, a panic drops this request's reply, not the thread.
            let answer = catch_unwind(AssertUnwindSafe(|| {
                self.pool.install(|| {
                    let explanations = texts
                        .par_iter()
                        .map(|t| model.explain_until(t, &given_up))
                        .collect::<Result<Vec<_>, _>>()
                        .ok()?;
                    Some(Answer {
                        // a classifier's, as for a batch of predictions: they do not fail
                        predictions: model.predict(&texts).ok()?,
                        explanations: Some(explanations),
                    })
                })
            }));
            match answer {
                Ok(Some(answer)) => {
                    self.shared.metrics.observe_batch(texts.len());
                    let _ = job.reply.send(answer);
                }
                Ok(None) => self.shared.metrics.observe_abandoned(),
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;

    fn batcher(max_wait_ms: u64) -> (Batcher, Arc<Metrics>, Arc<Model>) {
        let config = ModelConfig {
            hidden: 4,
            ..ModelConfig::seed()
        };
        batcher_of(&config, max_wait_ms)
    }

    /// A batcher of a model of `config` trained on nothing (three rows' vocabulary), with one
    /// predict and one explain thread, waiting `max_wait_ms` for company.
    fn batcher_of(config: &ModelConfig, max_wait_ms: u64) -> (Batcher, Arc<Metrics>, Arc<Model>) {
        let data = [("good", "pos"), ("bad", "neg"), ("not good", "neg")];
        let model = Arc::new(Model::for_data(data, config).unwrap());
        let metrics = Arc::new(Metrics::default());
        let config = BatchConfig {
            threads: 1,
            explain_threads: 1,
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
            .run(vec!["good".into()], false, batcher.arrival(false))
            .await
            .unwrap();
        assert!(start.elapsed() < Duration::from_millis(1_000));
        assert_eq!(answer.predictions, model.predict(&["good"]).unwrap());
        assert!(answer.explanations.is_none());
    }

    #[tokio::test]
    async fn a_request_on_its_way_joins_the_batch_and_answers_go_back_in_order() {
        let (batcher, metrics, model) = batcher(2_000);
        let batcher = Arc::new(batcher);
        let on_its_way = batcher.arrival(false);
        let first = {
            let batcher = Arc::clone(&batcher);
            tokio::spawn(async move {
                let arrival = batcher.arrival(false);
                batcher
                    .run(vec!["good".into(), "bad".into()], false, arrival)
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = batcher
            .run(vec!["not good".into()], false, on_its_way)
            .await
            .unwrap();
        let first = first.await.unwrap().unwrap();
        assert_eq!(
            passes(&metrics),
            "rnn_batch_texts_count 1",
            "one pass for both"
        );
        assert_eq!(first.predictions, model.predict(&["good", "bad"]).unwrap());
        assert_eq!(second.predictions, model.predict(&["not good"]).unwrap());
        let explained = batcher
            .run(vec!["not good".into()], true, batcher.arrival(true))
            .await
            .unwrap();
        assert_eq!(explained.predictions, model.predict(&["not good"]).unwrap());
        let explanation = &explained.explanations.unwrap()[0];
        assert_eq!(explanation.tokens, ["not", "good"]);
        assert_eq!(explanation, &model.explain("not good"));
    }

    /// A batcher serving the default network (a bidirectional LSTM, whose explanations read
    /// each prefix again) with one predict and one explain thread.
    fn bidirectional_batcher() -> (Arc<Batcher>, Arc<Metrics>, Arc<Model>) {
        let config = ModelConfig {
            min_count: 1,
            ..ModelConfig::default()
        };
        let (batcher, metrics, model) = batcher_of(&config, 2);
        (Arc::new(batcher), metrics, model)
    }

    fn abandoned(metrics: &Metrics) -> String {
        let text = metrics.render();
        let line = text
            .lines()
            .find(|l| l.starts_with("rnn_abandoned_requests_total "));
        line.unwrap().to_string()
    }

    #[tokio::test]
    async fn explanations_wait_in_their_own_queue_and_never_hold_up_a_prediction() {
        let (batcher, _, model) = bidirectional_batcher();
        let long = "good bad ".repeat(1_000);
        let explains: Vec<_> = (0..6)
            .map(|_| {
                let (batcher, text) = (Arc::clone(&batcher), long.clone());
                tokio::spawn(async move {
                    batcher
                        .run(vec![text], true, batcher.arrival(true))
                        .await
                        .map(|answer| answer.explanations.unwrap().len())
                })
            })
            .collect();
        while batcher.load(true).queued < 5 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let answer = batcher
            .run(vec!["not good".into()], false, batcher.arrival(false))
            .await
            .unwrap();
        assert_eq!(answer.predictions, model.predict(&["not good"]).unwrap());
        let left = batcher.load(true);
        assert!(
            left.queued >= 3,
            "the prediction waited for the explanations: {left:?} left"
        );
        assert!(left.oldest > Duration::ZERO);
        assert_eq!(batcher.load(false).queued, 0);
        for explain in explains {
            assert_eq!(explain.await.unwrap(), Ok(1));
        }
        assert_eq!(
            batcher.load(true),
            Load {
                queued: 0,
                oldest: Duration::ZERO
            }
        );
    }

    #[tokio::test]
    async fn the_work_of_a_request_nobody_waits_for_is_given_up() {
        let (batcher, metrics, model) = bidirectional_batcher();
        // 20,000 tokens: the explanation takes a few hundred ms, in batches of prefixes
        let long = "good bad ".repeat(10_000);
        let gone: Vec<_> = (0..3)
            .map(|_| {
                let (batcher, text) = (Arc::clone(&batcher), long.clone());
                tokio::spawn(async move {
                    let _ = batcher.run(vec![text], true, batcher.arrival(true)).await;
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(30)).await;
        // the clients hang up: the one being explained and the two queued
        for request in gone {
            request.abort();
        }
        let start = Instant::now();
        while abandoned(&metrics) != "rnn_abandoned_requests_total 3" {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{}",
                abandoned(&metrics)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // the explain thread is free again, and answers
        let answer = batcher
            .run(vec!["not good".into()], true, batcher.arrival(true))
            .await
            .unwrap();
        assert_eq!(answer.explanations.unwrap()[0], model.explain("not good"));
        assert_eq!(passes(&metrics), "rnn_batch_texts_count 1", "one finished");
    }

    #[tokio::test]
    async fn a_stopped_batcher_gives_up_its_work() {
        let (batcher, metrics, _) = bidirectional_batcher();
        let long = "good bad ".repeat(10_000);
        let waiting: Vec<_> = (0..3)
            .map(|_| {
                let (batcher, text) = (Arc::clone(&batcher), long.clone());
                tokio::spawn(async move {
                    batcher
                        .run(vec![text], true, batcher.arrival(true))
                        .await
                        .err()
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(30)).await;
        batcher.stopper().stop();
        for request in waiting {
            assert_eq!(request.await.unwrap(), Some(Refusal::Unavailable));
        }
        assert_eq!(abandoned(&metrics), "rnn_abandoned_requests_total 3");
    }
}
