//! Training split across processes (data parallel): every process, a *rank*, holds the same
//! weights and a part of every batch. Per batch each rank computes its part's gradient (weighted
//! by one over the whole batch, so that the parts add up to the batch mean); the ranks add their
//! parts up (an all-reduce, which the caller does: the Python package with PyTorch's
//! `torch.distributed`); and every rank applies the same update to the same weights, so they
//! stay equal without ever being sent.
//!
//! A gradient is exchanged in one of two layouts:
//!
//! - **packed** ([`RankTrainer::pack`]): the token tables' entries of the batch's tokens only,
//!   then the other parameters. The ranks first agree on the union of their tokens (the
//!   caller's: an all-reduce of a mark a token); the buffer is then `|union| · column + rest`
//!   floats.
//! - **dense** ([`RankTrainer::pack_dense`]): every parameter's gradient, and one float a token
//!   that says whether a rank had it: one all-reduce, `V · column + rest + V` floats.
//!
//! Either way every rank ends with the same summed gradient over the same tokens (so Adam
//! moves the same columns as in one process), and the update is the one-process trainer's.

use std::time::Instant;

use super::run::{Run, thread_pool};
use super::{
    Monitor, RunState, SHUFFLE_STREAM, TrainConfig, TrainReport, Verdict, Worker, batch_gradient,
    tally_classes,
};
use crate::data::Example;
use crate::data::split;
use crate::error::{Error, Result};
use crate::metrics::{EpochMetrics, Score, Tally};
use crate::rng::Rng;
use crate::rnn::Network;

/// Which rows of a data set are held out for validation, and the batches of every epoch: the
/// same on every rank and for any number of ranks, so that a run on N ranks trains on the
/// batches a run on one would. Rows are numbered in the file's order from 0; rank `r` of `N`
/// holds rows `r, r + N, ...` (see [`crate::data::files::Shard`]). The held-out rows are the
/// ones `rnn train` holds out of the same file with the same seed ([`split::stratified`]: a
/// share of every label's rows), so one rank means what one process means.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Rows in the whole data set.
    pub rows: usize,
    /// The share of every label's rows held out.
    pub valid_fraction: f64,
    pub seed: u64,
    /// Whether each row is held out.
    held: Vec<bool>,
}

impl Plan {
    /// The plan of a data set whose rows have `labels` (every row's, in the file's order: one
    /// value a row, which every rank holds), holding out `valid_fraction` of every label's rows
    /// drawn by `seed`.
    pub fn new<L: Ord>(labels: &[L], valid_fraction: f64, seed: u64) -> Plan {
        let mut held = vec![false; labels.len()];
        if valid_fraction > 0.0 {
            for g in split::stratified(labels, valid_fraction, seed).1 {
                held[g] = true;
            }
        }
        Plan {
            rows: labels.len(),
            valid_fraction,
            seed,
            held,
        }
    }

    /// Whether row `g` is held out for validation.
    pub fn held(&self, g: usize) -> bool {
        self.held.get(g).copied().unwrap_or(false)
    }

    /// The rows trained on, in order.
    pub fn training_rows(&self) -> Vec<usize> {
        (0..self.rows).filter(|&g| !self.held(g)).collect()
    }

    /// The batches of epoch `epoch` (from 1) of `batch` rows: the training rows shuffled by the
    /// seed and the epoch (or in order), cut in turn.
    pub fn batches(&self, epoch: usize, batch: usize, shuffle: bool) -> Vec<Vec<usize>> {
        let mut rows = self.training_rows();
        if shuffle {
            Rng::with_substream(self.seed, SHUFFLE_STREAM, epoch as u64).shuffle(&mut rows);
        }
        rows.chunks(batch.max(1)).map(<[usize]>::to_vec).collect()
    }
}

/// One rank's side of a data-parallel run.
pub struct RankTrainer {
    net: Network,
    run: Run,
    workers: Vec<Worker>,
    pool: rayon::ThreadPool,
    /// Tells this rank's dropout masks from the other ranks'.
    rank: u64,
    /// This rank's part of the epoch's training loss so far.
    epoch_tally: Tally,
}

impl RankTrainer {
    /// A rank of a new run (`state` None) or of a run resumed from a checkpoint's state, with
    /// `net` holding the weights every rank starts from.
    ///
    /// # Errors
    /// [`Error::Config`] for settings out of range, a rank of 256 or more, or a state that does
    /// not fit the network.
    pub fn new(
        net: Network,
        config: TrainConfig,
        rank: usize,
        state: Option<RunState>,
    ) -> Result<Self> {
        config.validate()?;
        // the best epoch's weights are kept instead
        let config = TrainConfig {
            keep_last_good: false,
            ..config
        };
        if rank >= 256 {
            return Err(Error::Config(format!(
                "rank {rank}: a run may have at most 256 ranks"
            )));
        }
        // an entry id is a token's (or a subword row's), or V + b for an n-gram bucket b, in
        // a u32
        let buckets = net.arch().ngrams.map_or(0, |n| n.buckets);
        let rows = net.arch().token_rows();
        if (rows as u64) + (buckets as u64) > u64::from(u32::MAX) {
            return Err(Error::Config(format!(
                "{rows} tokens and subword rows and {buckets} n-gram buckets are more than \
                 2^32 - 1 ids to exchange"
            )));
        }
        let threads = config.threads();
        let pool = thread_pool(&net, threads)?;
        let state = state.unwrap_or_else(|| RunState::start(&net, &config, Monitor::new()));
        Ok(RankTrainer {
            workers: (0..threads).map(|_| Worker::new(&net)).collect(),
            run: Run::new(&net, config, state)?,
            net,
            pool,
            rank: rank as u64,
            epoch_tally: Tally::default(),
        })
    }

    pub fn network(&self) -> &Network {
        &self.net
    }

    /// The run's settings.
    pub fn config(&self) -> &TrainConfig {
        self.run.config()
    }

    /// The run's state at the end of the last epoch (for a checkpoint).
    pub fn state(&self) -> &RunState {
        self.run.state()
    }

    /// Epochs completed.
    pub fn epoch(&self) -> usize {
        self.run.state().epoch
    }

    /// Forward and backward over this rank's `examples` of a batch of `batch` examples in all
    /// (every rank's together); the gradient waits for [`RankTrainer::pack`]. Returns this
    /// part's loss and accuracy sums.
    pub fn backward(&mut self, examples: &[&Example], batch: usize) -> Tally {
        let start = Instant::now();
        let weight = 1.0 / batch.max(1) as f32;
        let (net, workers, pool, config) =
            (&self.net, &mut self.workers, &self.pool, self.run.config());
        let (step, rank) = (self.run.state.step, self.rank);
        let t = pool
            .install(|| batch_gradient(net, examples, weight, workers, pool, config, step, rank));
        self.epoch_tally.add(t.loss_sum, t.correct, t.count);
        self.run.state.train_tokens += examples.iter().map(|e| e.tokens.len()).sum::<usize>();
        self.run.state.train_seconds += start.elapsed().as_secs_f64();
        t
    }

    /// The ids of the entries the gradient has, sorted: its tokens, and `V + b` for its
    /// n-gram buckets `b` (see [`crate::rnn::Gradients::entry_ids`]).
    pub fn tokens(&self) -> Vec<u32> {
        let mut tokens = self.workers[0].grads.entry_ids();
        tokens.sort_unstable();
        tokens
    }

    /// Floats of the packed gradient for the ranks' `union` of entry ids.
    pub fn packed_len(&self, union: &[u32]) -> usize {
        self.workers[0].grads.packed_len(union)
    }

    /// Writes the gradient into `out` for the ranks' `union` of entry ids (see
    /// [`crate::rnn::Gradients::pack`]) and clears it.
    pub fn pack(&mut self, union: &[u32], out: &mut [f32]) {
        self.workers[0].grads.pack(union, out);
    }

    /// The number of entry ids: `V` tokens, and `B` n-gram buckets of a wide path.
    pub fn id_space(&self) -> usize {
        self.workers[0].grads.id_space()
    }

    /// Floats of the dense layout: the parameters, then one an entry id (every token, and
    /// every n-gram bucket of a wide path).
    pub fn dense_len(&self) -> usize {
        self.net.params().len() + self.workers[0].grads.id_space()
    }

    /// Writes the gradient into `out` in the dense layout: every parameter's gradient, then
    /// 1 for every entry id the gradient has and 0 for the others; clears it.
    pub fn pack_dense(&mut self, out: &mut [f32]) {
        assert_eq!(out.len(), self.dense_len(), "the dense length");
        let grads = &mut self.workers[0].grads;
        let (params, marks) = out.split_at_mut(self.net.params().len());
        params.copy_from_slice(&grads.to_dense());
        marks.fill(0.0);
        for id in grads.entry_ids() {
            marks[id as usize] = 1.0;
        }
        grads.zero();
    }

    /// Updates the weights with the summed gradient in the packed layout for `union`.
    ///
    /// # Errors
    /// [`Error::Diverged`] if `loss`, the batch's mean loss over every rank, is not finite.
    pub fn step(&mut self, union: &[u32], summed: &[f32], loss: f32) -> Result<()> {
        self.check_loss(loss)?;
        let start = Instant::now();
        self.workers[0].grads.unpack(union, summed);
        self.update(start, loss)
    }

    /// Updates the weights with the summed gradient in the dense layout.
    ///
    /// # Errors
    /// As [`RankTrainer::step`].
    pub fn step_dense(&mut self, summed: &[f32], loss: f32) -> Result<()> {
        let (params, marks) = summed.split_at(self.net.params().len());
        let union: Vec<u32> = (0..marks.len() as u32)
            .filter(|&t| marks[t as usize] > 0.0)
            .collect();
        self.check_loss(loss)?;
        let start = Instant::now();
        let grads = &mut self.workers[0].grads;
        grads.unpack_dense(&union, params);
        self.update(start, loss)
    }

    /// Clips and applies the gradient that has been unpacked, and counts the step.
    fn update(&mut self, start: Instant, loss: f32) -> Result<()> {
        self.run
            .update(&mut self.net, &mut self.workers[0].grads, loss)?;
        self.run.state.train_seconds += start.elapsed().as_secs_f64();
        Ok(())
    }

    /// A loss that is not finite stops the rank before anything is unpacked, its own part
    /// of the gradient cleared (see [`Run::diverged`]).
    fn check_loss(&mut self, loss: f32) -> Result<()> {
        if loss.is_finite() {
            return Ok(());
        }
        for w in &mut self.workers {
            w.grads.zero();
        }
        Err(self.run.diverged(&mut self.net, loss))
    }

    /// This rank's loss and accuracy sums over the epoch so far (to be added over the ranks).
    pub fn epoch_tally(&self) -> Tally {
        self.epoch_tally
    }

    /// The loss and accuracy sums of the network on `examples` (to be added over the ranks).
    pub fn evaluate(&self, examples: &[Example]) -> Tally {
        let net = &self.net;
        self.pool.install(|| tally_classes(net, examples).0)
    }

    /// Ends the epoch with the scores of every rank together (`test` only reported): the
    /// monitor's verdict (the same on every rank, from the same numbers), the best weights
    /// kept, the learning rate of the next epoch set.
    pub fn end_epoch(
        &mut self,
        train: Score,
        valid: Option<Score>,
        test: Option<Score>,
    ) -> Verdict {
        let metrics = EpochMetrics {
            epoch: self.run.state.epoch + 1,
            train,
            valid,
            test,
            lr: self.run.lr(),
            valid_classes: Vec::new(),
        };
        self.epoch_tally = Tally::default();
        self.run.end_epoch(&self.net, metrics, &mut |_| {})
    }

    /// The network as the run ends (the best epoch's weights, when a validation set picked
    /// one) and the run's report. `stopped_early` and `interrupted` are the caller's, who
    /// decides when the ranks stop.
    pub fn finish(mut self, stopped_early: bool, interrupted: bool) -> (Network, TrainReport) {
        let mut report = self.run.finish(&mut self.net);
        report.stopped_early = stopped_early;
        report.interrupted = interrupted;
        (self.net, report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;
    use crate::rnn::{Architecture, CellKind, Init};

    #[test]
    fn a_plan_holds_out_its_share_and_every_training_row_is_in_one_batch() {
        let labels: Vec<u32> = (0..1000).map(|g| u32::from(g % 3 == 0)).collect();
        let plan = Plan::new(&labels, 0.1, 4);
        // as rnn train holds them out: a tenth of every label's rows
        let (_, held) = split::stratified(&labels, 0.1, 4);
        assert_eq!(
            (0..1000).filter(|&g| plan.held(g)).collect::<Vec<_>>(),
            held
        );
        assert_eq!(held.iter().filter(|&&g| labels[g] == 1).count(), 33);
        assert_eq!(held.len(), 100);
        let mut seen: Vec<usize> = plan.batches(1, 32, true).concat();
        assert_ne!(seen, plan.training_rows(), "shuffled");
        seen.sort_unstable();
        assert_eq!(seen, plan.training_rows());
        assert_ne!(plan.batches(1, 32, true), plan.batches(2, 32, true));
        assert_eq!(plan.batches(2, 32, true), plan.batches(2, 32, true));
        assert_eq!(Plan::new(&labels, 0.0, 4).training_rows().len(), 1000);
    }

    fn rank(net: &Network, r: usize) -> RankTrainer {
        let config = TrainConfig {
            threads: 1,
            batch: 4,
            ..TrainConfig::default()
        };
        RankTrainer::new(net.clone(), config, r, None).unwrap()
    }

    /// Two epochs of batches of 4 in order, by `ranks` ranks (example `i` of a batch on rank
    /// `i % ranks`), exchanging `dense` or packed gradients; the weights after.
    fn train(net: &Network, examples: &[Example], ranks: usize, dense: bool) -> Vec<f32> {
        let mut trainers: Vec<RankTrainer> = (0..ranks).map(|r| rank(net, r)).collect();
        for _ in 0..2 {
            for batch in examples.chunks(4) {
                let mut loss = 0.0;
                for (r, t) in trainers.iter_mut().enumerate() {
                    let mine: Vec<&Example> = batch.iter().skip(r).step_by(ranks).collect();
                    loss += t.backward(&mine, batch.len()).loss_sum;
                }
                let loss = (loss / batch.len() as f64) as f32;
                // the all-reduce, by hand
                if dense {
                    let mut sum = vec![0.0; trainers[0].dense_len()];
                    for t in &mut trainers {
                        let mut part = vec![0.0; t.dense_len()];
                        t.pack_dense(&mut part);
                        sum.iter_mut().zip(&part).for_each(|(s, p)| *s += p);
                    }
                    trainers
                        .iter_mut()
                        .for_each(|t| t.step_dense(&sum, loss).unwrap());
                } else {
                    let mut union: Vec<u32> = trainers.iter().flat_map(|t| t.tokens()).collect();
                    union.sort_unstable();
                    union.dedup();
                    let mut sum = vec![0.0; trainers[0].packed_len(&union)];
                    for t in &mut trainers {
                        let mut part = vec![0.0; sum.len()];
                        t.pack(&union, &mut part);
                        sum.iter_mut().zip(&part).for_each(|(s, p)| *s += p);
                    }
                    trainers
                        .iter_mut()
                        .for_each(|t| t.step(&union, &sum, loss).unwrap());
                }
            }
            let train = Score::default();
            let verdicts: Vec<Verdict> = trainers
                .iter_mut()
                .map(|t| t.end_epoch(train, None, None))
                .collect();
            assert!(verdicts.windows(2).all(|v| v[0] == v[1]));
        }
        let weights: Vec<Vec<f32>> = trainers
            .iter()
            .map(|t| t.network().params().to_vec())
            .collect();
        assert!(
            weights.windows(2).all(|w| w[0] == w[1]),
            "every rank holds the same weights"
        );
        weights[0].clone()
    }

    #[test]
    fn ranks_that_add_their_parts_train_as_one_process_to_rounding() {
        let data = Dataset::sample();
        let plain = Architecture::new(CellKind::Lstm, data.vocab.len(), 8, 2);
        // and with the wide path, whose rows are exchanged as entries V + b
        let ngrams = Some(crate::rnn::Ngrams { n: 2, buckets: 50 });
        let wide = Architecture {
            ngrams,
            ..plain.clone()
        };
        for arch in [plain, wide] {
            let net = Network::new(&arch, Init::LikeRnn, &mut Rng::new(3)).unwrap();
            let one = train(&net, &data.train, 1, false);
            assert_ne!(one, net.params(), "it trained");
            if arch.ngrams.is_some() {
                let table = net.layout().get("wide.weight").unwrap().range();
                assert!(
                    one[table].iter().any(|&w| w != 0.0),
                    "the wide path trained"
                );
            }
            for (ranks, dense) in [(2, false), (2, true), (3, false)] {
                let many = train(&net, &data.train, ranks, dense);
                // the same sums, added in another order: f32 rounding, grown over 26 updates
                for (a, b) in one.iter().zip(&many) {
                    assert!(
                        (a - b).abs() <= 1e-4,
                        "{arch}: {ranks} ranks (dense {dense}): {a} against {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_loss_that_is_not_finite_stops_the_rank() {
        let data = Dataset::sample();
        let arch = Architecture::new(CellKind::Rnn, data.vocab.len(), 4, 2);
        let net = Network::new(&arch, Init::LikeRnn, &mut Rng::new(3)).unwrap();
        let mut t = rank(&net, 0);
        let batch: Vec<&Example> = data.train.iter().take(2).collect();
        t.backward(&batch, 2);
        let union = t.tokens();
        let mut packed = vec![0.0; t.packed_len(&union)];
        t.pack(&union, &mut packed);
        let err = t.step(&union, &packed, f32::NAN).unwrap_err();
        assert!(matches!(err, Error::Diverged { epoch: 1, .. }), "{err}");
        assert_eq!(t.network().params(), net.params(), "no update");
    }
}
