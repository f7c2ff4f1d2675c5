//! `--autotune SECONDS`: a search of the settings that matter, scored on the validation rows,
//! within a budget of time; the best run's model is kept.
//!
//! **The search.** Trial 0 is the recipe as given (the defaults, or the flags given). Every
//! later trial starts from the best recipe so far and moves one or two of its free
//! [`Knob`]s one step along the knob's ladder (a categorical knob, such as the cell, to another
//! value), drawn by the seed; a recipe already tried is drawn again. A knob the caller fixed
//! (a flag given on the command line) never moves. A trial replaces the best only when it is
//! right on significantly more of the validation rows where the two disagree ([`beats`]), not
//! merely more accurate by the luck of the rows, and each later trial needs a larger lead, so
//! that the whole search keeps a recipe no better than the given one with a chance of at most
//! [`FALSE_REPLACEMENT`], however many trials it runs. Every trial trains
//! from the same seed on the same split, so that the settings alone differ, and its best
//! epoch is kept as `rnn train` keeps it (with `--patience`).
//!
//! **The budget is counted, not timed.** A search that stopped when the clock said so would
//! pick another model on a busier or faster machine. Instead, every trial's cost is counted in
//! nominal seconds from the work it did (see [`nominal_seconds_per_epoch`]): the epochs it ran
//! times the floating-point operations of its tokens, at a rate measured once on the
//! reference machine. The same data, flags, seed and threads so give the same trials and the
//! same model anywhere; on a machine slower than the reference the search takes longer than
//! its budget. Trial 0 always runs whole, so a search never ends without the given recipe's
//! model, and it picks another only if that scored better on the validation rows. A later
//! trial runs only if the budget left affords at least as many epochs as the best trial needed
//! to reach its best, and is cut to the epochs it affords.
//!
//! The best trial's recipe, as flags that `rnn train` reads, makes the same model file byte for
//! byte ([`Tuned::flags`]).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::data::files::Columns;
use crate::data::split;
use crate::error::{Error, Result};
use crate::model::Evaluation;
use crate::recipe::{self, DataNotes, EmbeddingStart, Prepared, Recipe, Rows, Start};
use crate::rng::Rng;
use crate::rnn::{Architecture, CellKind, DEFAULT_BUCKETS, Ngrams, Pool};
use crate::train::{Event, TrainReport};

/// A setting that the search may change. Each is a flag of `rnn train` and an argument of
/// `rnn.Classifier` of the same name ([`Knob::name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Knob {
    /// `--ngrams`: the longest n-gram of the wide path, 0 for none.
    Ngrams,
    /// `--buckets`: rows of the wide path's table (only with n-grams).
    Buckets,
    /// `--wide-lr`: the wide path's learning rate (only with n-grams).
    WideLr,
    /// `--embed`: the embedding's width (only with an embedding).
    Embed,
    /// `--hidden`.
    Hidden,
    /// `--cell`: lstm or gru (the Elman cell is not tried: it trails both on every set).
    Cell,
    /// `--pool`.
    Pool,
    /// `--dropout`.
    Dropout,
    /// `--lr`.
    Lr,
    /// `--epochs`: the most epochs a trial may run (patience may stop it sooner).
    Epochs,
}

impl Knob {
    /// Every knob, in the order flags are printed.
    pub const ALL: [Knob; 10] = [
        Knob::Cell,
        Knob::Embed,
        Knob::Hidden,
        Knob::Pool,
        Knob::Dropout,
        Knob::Lr,
        Knob::Epochs,
        Knob::Ngrams,
        Knob::Buckets,
        Knob::WideLr,
    ];

    /// The name of its argument in Python (`wide_lr`); the flag is `--` and the name with `-`
    /// for `_` ([`Knob::flag`]).
    pub fn name(self) -> &'static str {
        match self {
            Knob::Ngrams => "ngrams",
            Knob::Buckets => "buckets",
            Knob::WideLr => "wide_lr",
            Knob::Embed => "embed",
            Knob::Hidden => "hidden",
            Knob::Cell => "cell",
            Knob::Pool => "pool",
            Knob::Dropout => "dropout",
            Knob::Lr => "lr",
            Knob::Epochs => "epochs",
        }
    }

    /// Its flag of `rnn train`, `--wide-lr`.
    pub fn flag(self) -> String {
        format!("--{}", self.name().replace('_', "-"))
    }

    /// Whether the knob means anything in `recipe`: the wide path's size and rate only with
    /// n-grams, the embedding's width only with an embedding.
    fn applies(self, recipe: &Recipe) -> bool {
        match self {
            Knob::Buckets | Knob::WideLr => recipe.model.ngrams.is_some(),
            Knob::Embed => recipe.model.embed.is_some(),
            _ => true,
        }
    }

    /// The knob's value in `recipe` as its flag's argument (`--lr` as the rate it trains at).
    pub fn value(self, recipe: &Recipe) -> String {
        let m = &recipe.model;
        match self {
            Knob::Ngrams => m.ngrams.map_or(0, |g| g.n).to_string(),
            Knob::Buckets => m.ngrams.map_or(0, |g| g.buckets).to_string(),
            Knob::WideLr => wide_lr(recipe).to_string(),
            Knob::Embed => m.embed.unwrap_or(0).to_string(),
            Knob::Hidden => m.hidden.to_string(),
            Knob::Cell => m.cell.to_string(),
            Knob::Pool => m.pool.to_string(),
            Knob::Dropout => m.dropout.to_string(),
            Knob::Lr => lr(recipe).to_string(),
            Knob::Epochs => recipe.epochs.to_string(),
        }
    }

    /// `recipe` with this knob moved one step, drawn by `rng`: a number to the next value
    /// up or down its ladder (from a value off the ladder, to the nearest on it), a kind to
    /// another kind.
    fn moved(self, recipe: &Recipe, rng: &mut Rng) -> Recipe {
        let mut r = recipe.clone();
        let m = &mut r.model;
        match self {
            Knob::Ngrams => {
                let ladder: &[usize] = if m.tokens == crate::data::Tokens::Char {
                    &[0, 2, 3, 4, 5, 6]
                } else {
                    &[0, 1, 2, 3, 4]
                };
                let n = step(ladder, m.ngrams.map_or(0, |g| g.n), rng);
                let buckets = m.ngrams.map_or(DEFAULT_BUCKETS, |g| g.buckets);
                m.ngrams = (n > 0).then_some(Ngrams { n, buckets });
            }
            Knob::Buckets => {
                if let Some(g) = &mut m.ngrams {
                    g.buckets = step(
                        &[1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 20],
                        g.buckets,
                        rng,
                    );
                }
            }
            Knob::WideLr => {
                let ladder = [0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0];
                r.wide_lr = Some(step(&ladder, wide_lr(recipe), rng));
            }
            Knob::Embed => m.embed = m.embed.map(|e| step(&[32, 64, 128, 256], e, rng)),
            Knob::Hidden => m.hidden = step(&[32, 64, 128, 256], m.hidden, rng),
            Knob::Cell => m.cell = other(&[CellKind::Lstm, CellKind::Gru], m.cell, rng),
            Knob::Pool => m.pool = other(&Pool::ALL, m.pool, rng),
            Knob::Dropout => m.dropout = step(&[0.0, 0.1, 0.2, 0.3, 0.4, 0.5], m.dropout, rng),
            Knob::Epochs => r.epochs = step(&[10, 20, 30, 40, 60], recipe.epochs, rng),
            Knob::Lr => {
                let base = recipe.optimizer.default_lr();
                let ladder = [0.25, 0.5, 1.0, 2.0, 4.0].map(|x| x * base);
                r.lr = Some(step(&ladder, lr(recipe), rng));
            }
        }
        r
    }
}

/// The learning rate that `recipe` trains at.
fn lr(recipe: &Recipe) -> f32 {
    recipe.lr.unwrap_or(recipe.optimizer.default_lr())
}

/// The wide path's learning rate in `recipe`.
fn wide_lr(recipe: &Recipe) -> f32 {
    recipe.wide_lr.unwrap_or(recipe::DEFAULT_WIDE_LR)
}

/// The next value of `ladder` (ascending) above or below `x`, drawn by `rng` (at an end, the
/// one neighbour); off the ladder, the nearest value on it.
fn step<T: Rung>(ladder: &[T], x: T, rng: &mut Rng) -> T {
    let distance = |v: T| (v.at() - x.at()).abs();
    let nearest = (0..ladder.len())
        .min_by(|&a, &b| distance(ladder[a]).total_cmp(&distance(ladder[b])))
        .expect("a ladder has values");
    if distance(ladder[nearest]) > 0.0 {
        return ladder[nearest];
    }
    let up = match nearest {
        0 => true,
        i if i + 1 == ladder.len() => false,
        _ => rng.below(2) == 0,
    };
    if up {
        ladder[nearest + 1]
    } else {
        ladder[nearest - 1]
    }
}

/// A value on a ladder of [`step`].
trait Rung: Copy {
    fn at(self) -> f64;
}

impl Rung for usize {
    fn at(self) -> f64 {
        self as f64
    }
}

impl Rung for f32 {
    fn at(self) -> f64 {
        self.into()
    }
}

/// A kind of `kinds` other than `x`, drawn by `rng`.
fn other<T: Copy + PartialEq>(kinds: &[T], x: T, rng: &mut Rng) -> T {
    let others: Vec<T> = kinds.iter().copied().filter(|&k| k != x).collect();
    others[rng.below(others.len())]
}

/// What a search may do.
#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    /// The budget, in nominal seconds (see the module's docs).
    pub seconds: f64,
    /// Knobs that keep the recipe's value (flags given).
    pub fixed: Vec<Knob>,
}

/// The floating-point operations of one token through a network of `arch`, forward only:
/// for every layer `l` and direction, `2·G·H·(I_l + H)` for the cell's `G` gates' products of
/// its input of width `I_l` and its state (the pooling, the head and the element-wise gate
/// arithmetic are small beside these). One-hot input reads one column: `I_0 = 1`.
pub fn forward_flops_per_token(arch: &Architecture) -> f64 {
    let gates = match arch.cell {
        CellKind::Rnn => 1.0,
        CellKind::Gru => 3.0,
        CellKind::Lstm => 4.0,
    };
    let h = arch.hidden as f64;
    (0..arch.layers)
        .map(|l| {
            let input = match (l, arch.embed) {
                (0, None) => 1.0,
                _ => arch.input_width(l) as f64,
            };
            arch.directions() as f64 * 2.0 * gates * h * (input + h)
        })
        .sum()
}

/// The reference machine's rate, in floating-point operations a second on one thread, and
/// its cost a token beyond them (reading, the gathers and the update), in seconds, and a
/// token's cost a unit of n-gram length. Measured on one core of an AMD EPYC (AVX2) with
/// `rnn train --threads 1` on the suite's tweets at hidden sizes from 32 to 256 (a line fit
/// of seconds a token against its operations, within 8% of every point).
const FLOPS_PER_SECOND: f64 = 5.2e10;
const SECONDS_PER_TOKEN: f64 = 3.4e-6;
const SECONDS_PER_TOKEN_GRAM: f64 = 0.2e-6;

/// How much faster `threads` threads train than one on the reference machine: each thread
/// after the first adds 80% of one.
fn speedup(threads: usize) -> f64 {
    1.0 + 0.8 * (threads.max(1) - 1) as f64
}

/// The nominal seconds of one epoch of a network of `arch` on `train` tokens, validated on
/// `valid` tokens, on `threads` threads: a training token costs three forward passes'
/// operations (forward, and backward's two products), a validation token one.
///
/// `t = (train·(3F/R + c + n·g) + valid·(F/R + c/3)) / s(threads)`
pub fn nominal_seconds_per_epoch(
    arch: &Architecture,
    train: usize,
    valid: usize,
    threads: usize,
) -> f64 {
    let flops = forward_flops_per_token(arch);
    let grams = arch.ngrams.map_or(0, |g| g.n) as f64;
    let train_token =
        3.0 * flops / FLOPS_PER_SECOND + SECONDS_PER_TOKEN + grams * SECONDS_PER_TOKEN_GRAM;
    let valid_token = flops / FLOPS_PER_SECOND + SECONDS_PER_TOKEN / 3.0;
    (train as f64 * train_token + valid as f64 * valid_token) / speedup(threads)
}

/// One run of the search.
#[derive(Clone, Debug)]
pub struct Trial {
    /// 0 for the recipe as given.
    pub number: usize,
    pub recipe: Recipe,
    /// The knobs whose values differ from the given recipe's.
    pub changed: Vec<Knob>,
    /// The most epochs it could run (the recipe's, or fewer that the budget afforded).
    pub epoch_limit: usize,
    /// The epochs it ran, and the one it kept.
    pub epochs: usize,
    pub best_epoch: Option<usize>,
    /// The kept model's score on the validation rows.
    pub valid_loss: f32,
    pub valid_accuracy: f32,
    /// Its cost in nominal seconds, and in seconds on this machine.
    pub nominal_seconds: f64,
    pub seconds: f64,
    /// Against the best trial before it, on the validation rows: how many this one got right
    /// and the best wrong, and how many the other way (none for trial 0).
    pub against_best: Option<(usize, usize)>,
    /// Whether it is the best so far (when it ended): trial 0, or a trial that beats the best
    /// before it (see [`beats`]).
    pub best: bool,
    /// Whether the stop flag ended it before its end.
    pub interrupted: bool,
}

impl Trial {
    /// Trial `number` of `recipe`, which differs from `given` in its changed knobs, before it
    /// runs.
    fn new(number: usize, recipe: Recipe, given: &Recipe, epoch_limit: usize) -> Self {
        Trial {
            number,
            changed: Knob::ALL
                .into_iter()
                .filter(|k| k.value(&recipe) != k.value(given))
                .collect(),
            recipe,
            epoch_limit,
            epochs: 0,
            best_epoch: None,
            valid_loss: f32::INFINITY,
            valid_accuracy: 0.0,
            nominal_seconds: 0.0,
            seconds: 0.0,
            against_best: None,
            best: false,
            interrupted: false,
        }
    }
}

/// The chance, over the whole search, that it replaces the given recipe by one that is no
/// better: the sum of the levels of its comparisons (see [`level`]).
pub const FALSE_REPLACEMENT: f64 = 0.1;

/// The level of the comparison of trial `number` (1, 2, …) with the best before it:
/// `FALSE_REPLACEMENT / (number · (number + 1))`, 1/2, 1/6, 1/12, … of it, which sum to
/// [`FALSE_REPLACEMENT`] however many trials the budget affords (a union bound: the search
/// keeps a recipe no better than the given one only if some comparison erred).
pub fn level(number: usize) -> f64 {
    let k = number.max(1) as f64;
    FALSE_REPLACEMENT / (k * (k + 1.0))
}

/// The one-sided sign test's p-value for a trial that got `gained` validation rows right that
/// the best got wrong, and `lost` the other way: the chance of `gained` or more of the
/// `n = gained + lost` rows where the two disagree going its way if either were as likely
/// (McNemar's exact test),
///
/// `p = Σ_{i ≥ gained} C(n, i) / 2ⁿ`,
///
/// summed in logarithms, so that no term underflows for thousands of rows.
pub fn sign_test(gained: usize, lost: usize) -> f64 {
    let n = gained + lost;
    if gained == 0 {
        return 1.0;
    }
    // ln i! for i = 0..=n, summed once
    let ln_factorial: Vec<f64> = std::iter::once(0.0)
        .chain((1..=n).scan(0.0, |sum, i| {
            *sum += (i as f64).ln();
            Some(*sum)
        }))
        .collect();
    let ln_term = |i: usize| {
        ln_factorial[n] - ln_factorial[i] - ln_factorial[n - i] - n as f64 * std::f64::consts::LN_2
    };
    let top = ln_term(gained.max(n.div_ceil(2))); // the largest term of the tail
    let sum: f64 = (gained..=n).map(|i| (ln_term(i) - top).exp()).sum();
    (top + sum.ln()).exp().min(1.0)
}

/// Whether trial `number`, which got `gained` validation rows right that the best before it got
/// wrong and `lost` the other way, is better than that best: its [`sign_test`] is at most the
/// comparison's [`level`].
///
/// A validation set of 600 rows gives an accuracy to within about ±1 point, and of a few
/// trials the luckiest often looks a point better than it is; the more trials, the luckier the
/// luckiest, so each later comparison asks for more. On the suite's word-level language
/// identification (seed 0, `--autotune 60`), a test of 1.5 standard deviations at every
/// comparison kept trial 2, `--buckets 131072 --wide-lr 0.2`: 93.00% on the validation rows
/// against the defaults' 91.83% (rows +14 −7, p = 0.09), and 92.2% on the test set against
/// their 92.5%; on names trial 1, `--dropout 0.2` (rows +6 −1, p = 0.06): 89.8% on the test
/// set against 90.1%. This test, at levels 0.017 and 0.05, keeps the defaults on both.
pub fn beats(gained: usize, lost: usize, number: usize) -> bool {
    gained > lost && sign_test(gained, lost) <= level(number)
}

/// Which rows of `examples` `model` predicts right.
fn right(model: &crate::model::Model, examples: &[crate::data::Example]) -> Vec<bool> {
    use rayon::prelude::*;
    examples
        .par_chunks(64)
        .map_init(crate::rnn::Workspace::default, |ws, chunk| {
            let sequences: Vec<&[u32]> = chunk.iter().map(|e| e.tokens.as_slice()).collect();
            let grams: Vec<&crate::rnn::TokenGrams> = chunk.iter().map(|e| &e.grams).collect();
            let probs = model.network.predict_with_grams(&sequences, &grams, ws);
            chunk
                .iter()
                .zip(probs)
                .map(|(e, p)| crate::rnn::argmax(&p) == e.label as usize)
                .collect::<Vec<bool>>()
        })
        .flatten()
        .collect()
}

/// What a search tells as it goes.
pub enum TuneEvent<'a> {
    /// A trial starts.
    Start(&'a Trial),
    /// An event of the trial's run.
    Run(Event<'a>),
    /// A trial ended.
    End(&'a Trial),
}

/// The search's result: the best trial's run (its model trained, its training and validation
/// examples, and the test examples when test rows were given), its report, and every trial.
#[derive(Debug)]
pub struct Tuned {
    pub run: Prepared,
    pub report: TrainReport,
    pub trials: Vec<Trial>,
    /// Which of `trials` is the best.
    pub best: usize,
    /// The given recipe, with the validation share the search used.
    pub given: Recipe,
    /// The share of the training rows the search held out where `rnn train` would hold out
    /// none (a small set without validation rows).
    pub held_out: Option<f64>,
    /// Whether the stop flag ended the search (the best trial that ended is kept; if the stop
    /// came in trial 0, its best epoch so far).
    pub interrupted: bool,
    /// Nominal seconds spent.
    pub nominal_seconds: f64,
}

impl Tuned {
    /// The flags that, added to the given ones, make `rnn train` train the best trial's model,
    /// byte for byte: the changed knobs (in [`Knob::ALL`]'s order), the validation share
    /// when the search set one, and `--epochs` when the trial's limit was not the given one (the
    /// knob moved it, or the budget cut it short).
    pub fn flags(&self) -> Vec<String> {
        self.settings()
            .into_iter()
            .flat_map(|(name, value)| [format!("--{}", name.replace('_', "-")), value])
            .collect()
    }

    /// [`Tuned::flags`] as names of `rnn.Classifier`'s arguments and their values.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let trial = &self.trials[self.best];
        // the epochs are the trial's limit (the knob's, or fewer that the budget afforded)
        let mut out: Vec<(&'static str, String)> = Knob::ALL
            .iter()
            .filter(|&&k| k != Knob::Epochs)
            .filter(|k| trial.changed.contains(k) && k.applies(&trial.recipe))
            .map(|&k| (k.name(), k.value(&trial.recipe)))
            .collect();
        if let Some(share) = self.held_out {
            out.push(("valid_split", share.to_string()));
        }
        if trial.epoch_limit != self.given.epochs {
            out.push(("epochs", trial.epoch_limit.to_string()));
        }
        out
    }
}

/// Training rows, validation rows (or none: a share of the training rows is held out), and
/// test rows (scored with the best model only), each named by its file in errors.
pub struct TuneData<'a> {
    pub train: Rows<'a>,
    pub valid: Option<Rows<'a>>,
    pub test: Option<Rows<'a>>,
    /// The columns the rows were read from (kept in the model).
    pub columns: Columns,
    /// How every trial's embedding starts (`--pretrained`, `--freeze-embed`).
    pub embedding: EmbeddingStart<'a>,
}

/// Searches settings for `data` from `recipe` as `search` says (see the module's docs), and
/// returns the best trial's run. Without validation rows, `recipe.valid_split` of the training
/// rows is held out, or [`split::DEFAULT_FRACTION`] when none is given (also where `rnn train`
/// would hold out nothing). `stop` ends the search after the current batch.
///
/// # Errors
/// [`Error::Config`] for a budget that is not a positive number, a validation share of 0, or
/// no validation rows; as [`recipe::prepare_run`] and [`Prepared::run`].
pub fn tune(
    data: TuneData<'_>,
    recipe: &Recipe,
    search: &Search,
    stop: Option<&AtomicBool>,
    mut on_event: impl FnMut(TuneEvent<'_>) + Send,
) -> Result<Tuned> {
    if !(search.seconds.is_finite() && search.seconds > 0.0) {
        return Err(Error::Config(format!(
            "the search's budget must be a positive number of seconds, not {}",
            search.seconds
        )));
    }
    let held_out = held_out_share(&data, recipe)?;
    let given = Recipe {
        valid_split: recipe.valid_split.or(held_out),
        ..recipe.clone()
    };
    let mut rng = Rng::with_stream(recipe.model.seed, STREAM);
    let mut trials: Vec<Trial> = Vec::new();
    let mut best: Option<(usize, Prepared, TrainReport, Vec<bool>)> = None;
    let mut spent = 0.0;
    let mut interrupted = false;
    for number in 0.. {
        let candidate = match &best {
            None => Some((given.clone(), given.epochs)),
            Some((b, run, _, _)) => {
                let needed = trials[*b].best_epoch.unwrap_or(1).max(1);
                let sizes = (tokens(&run.train), tokens(&run.valid));
                let left = search.seconds - spent;
                draw(&trials, *b, search, sizes, (needed, left), &mut rng)
            }
        };
        let Some((candidate, epoch_limit)) = candidate else {
            break;
        };
        let mut trial = Trial::new(number, candidate, &given, epoch_limit);
        on_event(TuneEvent::Start(&trial));
        let (run, report) = run_trial(&data, &mut trial, stop, &mut on_event)?;
        spent += trial.nominal_seconds;
        interrupted = trial.interrupted;
        let correct = right(&run.model, &run.valid);
        if let Some((_, _, _, best_correct)) = &best {
            let pairs = correct.iter().zip(best_correct);
            let gained = pairs.clone().filter(|&(&a, &b)| a && !b).count();
            let lost = pairs.filter(|&(&a, &b)| !a && b).count();
            trial.against_best = Some((gained, lost));
        }
        // an interrupted trial is kept only when there is no other
        trial.best = match trial.against_best {
            None => true,
            Some((gained, lost)) => !interrupted && beats(gained, lost, number),
        };
        on_event(TuneEvent::End(&trial));
        if trial.best {
            best = Some((number, run, report, correct));
        }
        trials.push(trial);
        if interrupted {
            break;
        }
    }
    let (best, mut run, report, _) = best.expect("trial 0 ran");
    if let Some(test) = &data.test {
        let name = test.file.unwrap_or("<test data>".as_ref());
        run.test = run.model.examples(&test.rows, name)?;
    }
    Ok(Tuned {
        run,
        report,
        trials,
        best,
        given,
        held_out,
        interrupted,
        nominal_seconds: spent,
    })
}

/// The share of the training rows the search holds out itself: none with validation rows or
/// where `rnn train` would hold out some, [`split::DEFAULT_FRACTION`] where it would not.
///
/// # Errors
/// [`Error::Config`] for a validation share of 0 given without validation rows.
fn held_out_share(data: &TuneData<'_>, recipe: &Recipe) -> Result<Option<f64>> {
    if data.valid.is_some() {
        return Ok(None);
    }
    match recipe.valid_split {
        Some(share) if share <= 0.0 => Err(Error::Config(
            "the search scores settings on validation rows: give some, or hold out a share of \
             the training rows above 0"
                .into(),
        )),
        Some(_) => Ok(None),
        // `rnn train`'s own default holds out rows
        None if split::default_fraction(data.train.rows.len()) > 0.0 => Ok(None),
        None => Ok(Some(split::DEFAULT_FRACTION)),
    }
}

/// Trains `trial`'s recipe on `data` and scores it on the validation rows, filling in the
/// trial's results (all but whether it is the best). Returns its run and report.
///
/// # Errors
/// [`Error::Config`] when no validation rows were held out; as [`recipe::prepare_run`] and
/// [`Prepared::run`].
fn run_trial(
    data: &TuneData<'_>,
    trial: &mut Trial,
    stop: Option<&AtomicBool>,
    on_event: &mut (impl FnMut(TuneEvent<'_>) + Send),
) -> Result<(Prepared, TrainReport)> {
    let mut run = prepare(data, &trial.recipe, trial.epoch_limit)?;
    if run.valid.is_empty() {
        return Err(Error::Config(format!(
            "the search scores settings on validation rows, and {} training rows held out \
             none: give validation rows, or a larger share",
            data.train.rows.len()
        )));
    }
    let started = std::time::Instant::now();
    let report = run.run(None, stop, |e| on_event(TuneEvent::Run(e)))?;
    let scored: Evaluation = run.model.evaluate(&run.valid)?;
    trial.seconds = started.elapsed().as_secs_f64();
    trial.epochs = report.history.len();
    trial.best_epoch = report.best_epoch;
    trial.valid_loss = scored.loss;
    trial.valid_accuracy = scored.accuracy;
    let per_epoch = nominal_seconds_per_epoch(
        run.model.network.arch(),
        tokens(&run.train),
        tokens(&run.valid),
        run.config.threads(),
    );
    trial.nominal_seconds = per_epoch * trial.epochs as f64;
    trial.interrupted = report.interrupted || stop.is_some_and(|s| s.load(Ordering::Relaxed));
    Ok((run, report))
}

/// The random stream of the search's draws, apart from the training's own.
const STREAM: u64 = 0x6175_746f_7475_6e65; // "autotune"

/// The tokens of `examples`.
fn tokens(examples: &[crate::data::Example]) -> usize {
    examples.iter().map(|e| e.tokens.len()).sum()
}

/// The next trial's recipe and epoch limit: the best trial's recipe (`trials[best]`) with one
/// or two free knobs moved, untried, whose epochs of `sizes` (training and validation tokens)
/// the `left` budget affords `needed` of; `None` when 50 draws find none.
fn draw(
    trials: &[Trial],
    best: usize,
    search: &Search,
    sizes: (usize, usize),
    (needed, left): (usize, f64),
    rng: &mut Rng,
) -> Option<(Recipe, usize)> {
    let from = &trials[best].recipe;
    for _ in 0..50 {
        let mut candidate = from.clone();
        let moves = 1 + rng.below(2);
        for _ in 0..moves {
            let free: Vec<Knob> = Knob::ALL
                .into_iter()
                .filter(|k| !search.fixed.contains(k) && k.applies(&candidate))
                .collect();
            if free.is_empty() {
                return None;
            }
            candidate = free[rng.below(free.len())].moved(&candidate, rng);
        }
        if trials.iter().any(|t| same(&t.recipe, &candidate)) {
            continue;
        }
        // the vocabulary and the classes do not change the cost
        let arch = candidate.model.classifier(1, 2);
        let threads = crate::train::TrainConfig {
            threads: candidate.threads,
            ..Default::default()
        }
        .threads();
        let per_epoch = nominal_seconds_per_epoch(&arch, sizes.0, sizes.1, threads);
        let affordable = (left / per_epoch).floor().max(0.0) as usize;
        if affordable >= needed {
            let limit = affordable.min(candidate.epochs);
            return Some((candidate, limit));
        }
    }
    None
}

/// Whether two recipes train the same model: equal in every knob's value.
fn same(a: &Recipe, b: &Recipe) -> bool {
    Knob::ALL
        .iter()
        .all(|k| !k.applies(a) && !k.applies(b) || k.value(a) == k.value(b))
}

/// A run of `recipe` on `data`, at most `epochs` epochs.
fn prepare(data: &TuneData<'_>, recipe: &Recipe, epochs: usize) -> Result<Prepared> {
    let recipe = Recipe {
        epochs,
        ..recipe.clone()
    };
    let notes = DataNotes::new(&recipe, &data.columns, data.valid.is_some());
    let mut run = recipe::prepare_run(
        Start::New,
        &recipe,
        notes,
        data.train.clone(),
        data.valid.clone(),
        None,
    )?;
    let EmbeddingStart { vectors, freeze } = data.embedding;
    run.start_embedding(vectors, freeze)?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_costs_what_the_formula_says() {
        // one layer of LSTM both ways, E = H = 64: 2 directions · 2 · 4 gates · 64 · (64 + 64)
        let arch = Architecture {
            embed: Some(64),
            bidirectional: true,
            ..Architecture::new(CellKind::Lstm, 100, 64, 2)
        };
        assert_eq!(forward_flops_per_token(&arch), 131_072.0);
        // a million training tokens: 3 · 131072 / 5.2e10 + 3.4e-6 seconds each
        let one = nominal_seconds_per_epoch(&arch, 1_000_000, 0, 1);
        assert!((one - 10.962).abs() < 1e-3, "{one}");
        // two threads: 1.8 times as fast; validation tokens cost a third and a bit
        let two = nominal_seconds_per_epoch(&arch, 1_000_000, 0, 2);
        assert!((one / two - 1.8).abs() < 1e-9);
        let valid = nominal_seconds_per_epoch(&arch, 0, 1_000_000, 1);
        assert!((valid - (131_072.0 / 5.2e10 + 3.4e-6 / 3.0) * 1e6).abs() < 1e-9);
        // one-hot input reads one column of the first layer's weights
        let one_hot = Architecture::new(CellKind::Rnn, 1000, 10, 2);
        assert_eq!(forward_flops_per_token(&one_hot), 2.0 * 10.0 * 11.0);
    }

    #[test]
    fn a_step_moves_one_rung_or_to_the_ladder() {
        let mut rng = Rng::new(0);
        let ladder = [32usize, 64, 128];
        assert_eq!(step(&ladder, 32, &mut rng), 64);
        assert_eq!(step(&ladder, 128, &mut rng), 64);
        assert_eq!(step(&ladder, 100, &mut rng), 128);
        let moves: BTreeSet<usize> = (0..50).map(|_| step(&ladder, 64, &mut rng)).collect();
        assert_eq!(moves, BTreeSet::from([32, 128]));
        assert_eq!(
            other(&[CellKind::Lstm, CellKind::Gru], CellKind::Lstm, &mut rng),
            CellKind::Gru
        );
    }

    #[test]
    fn the_sign_test_is_the_binomial_tail() {
        // exact values, from Python's fractions: Σ_{i ≥ g} C(n, i) / 2ⁿ
        let cases = [
            ((6, 1), 0.0625),
            ((3, 0), 0.125),
            ((10, 0), 0.0009765625),
            ((14, 7), 0.09462356567382812),
            ((5, 5), 0.623046875),
            ((4, 9), 0.953857421875),
            ((1500, 1400), 0.032993674832591906),
            ((2000, 1000), 5.0450743139706706e-76),
        ];
        for ((gained, lost), p) in cases {
            let got = sign_test(gained, lost);
            assert!(
                (got - p).abs() <= 1e-9 * p,
                "{gained} {lost}: {got} against {p}"
            );
        }
        assert_eq!(sign_test(0, 0), 1.0);
        assert_eq!(sign_test(0, 7), 1.0);
    }

    #[test]
    fn a_later_trial_needs_a_larger_lead() {
        // the levels: 1/2, 1/6, 1/12 of the whole search's, summing to it
        assert!((level(1) - FALSE_REPLACEMENT / 2.0).abs() < 1e-15);
        assert!((level(3) - FALSE_REPLACEMENT / 12.0).abs() < 1e-15);
        let sum: f64 = (1..100_000).map(level).sum();
        assert!((sum - FALSE_REPLACEMENT).abs() < 1e-5, "{sum}");
        // the suite's trials of the doc comment: chance
        assert!(!beats(6, 1, 1) && !beats(14, 7, 2));
        // six of six is a lead at trial 1 (p = 1/64), not at trial 3 (level 1/120)
        assert!(beats(6, 0, 1) && !beats(6, 0, 3));
        assert!(beats(40, 10, 20));
        assert!(!beats(5, 5, 1) && !beats(0, 0, 1) && !beats(4, 9, 1));
    }

    #[test]
    fn a_clearly_better_trial_replaces_the_given_recipe() {
        // Two classes told apart by one word. At a learning rate of 1e-7 the network learns
        // nothing; the rate is the one knob left free, so trial 1 moves it onto its ladder,
        // and wins on most of the 40 validation rows.
        let rows: Vec<Row> = (0..400)
            .map(|i| Row {
                line: i + 1,
                text: format!("{} w{} x{}", ["good", "bad"][i % 2], i % 7, i % 11),
                label: ["pos", "neg"][i % 2].to_string(),
            })
            .collect();
        let mut recipe = Recipe::default();
        recipe.model.hidden = 8;
        recipe.model.embed = Some(8);
        recipe.model.ngrams = None;
        recipe.lr = Some(1e-7);
        recipe.epochs = 10;
        recipe.threads = 1;
        let data = TuneData {
            train: Rows::in_memory(rows),
            valid: None,
            test: None,
            columns: Columns::default(),
            embedding: EmbeddingStart::default(),
        };
        let fixed = Knob::ALL.into_iter().filter(|&k| k != Knob::Lr).collect();
        let search = Search {
            seconds: 1.0,
            fixed,
        };
        let tuned = tune(data, &recipe, &search, None, |_| {}).unwrap();
        let one = &tuned.trials[1];
        let (gained, lost) = one.against_best.unwrap();
        assert!(one.best && gained >= 10 && lost == 0, "{one:?}");
        assert_ne!(tuned.best, 0);
        assert!(
            tuned.trials[0].valid_accuracy < 0.7,
            "{:?}",
            tuned.trials[0]
        );
        assert!(tuned.trials[tuned.best].valid_accuracy > 0.95);
    }

    #[test]
    fn recipes_that_differ_only_where_nothing_reads_are_the_same() {
        let mut a = Recipe::default();
        a.model.ngrams = None;
        let mut b = a.clone();
        b.wide_lr = Some(0.5); // no table to learn
        assert!(same(&a, &b));
        b.model.hidden = 32;
        assert!(!same(&a, &b));
    }

    use crate::data::files::Row;
    use std::collections::BTreeSet;
}
