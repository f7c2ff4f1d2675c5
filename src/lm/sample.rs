//! Writing text with a language model: read a beginning (the prime), then draw the next token
//! from the model's distribution, feed it back, and again.
//!
//! ```text
//! p = softmax(y / τ)                          τ: the temperature (τ → 0: always the likeliest)
//! top-k: keep the k likeliest tokens; top-p: keep the fewest likeliest whose p sum to ≥ p
//! then renormalise, draw u ~ U[0, 1), take the first token whose cumulative p exceeds u
//! ```
//!
//! `τ = 0` is greedy decoding: the likeliest token every time, and no randomness. `<unk>` is
//! never drawn. The state is carried from token to token, so a step costs one forward step of
//! one row, whatever the length written so far.

use crate::error::{Error, Result};
use crate::model::{Kind, Model};
use crate::rng::Rng;
use crate::rnn::{Batch, Carry, Workspace, softmax_in_place};

/// How the next token is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// Divides the logits: below 1 sharper (safer, more repetitive), above 1 flatter (more
    /// surprising); 0 takes the likeliest token. Default 1: the model's own distribution.
    pub temperature: f32,
    /// Draw only among the `k` likeliest tokens.
    pub top_k: Option<usize>,
    /// Draw only among the fewest likeliest tokens whose probabilities sum to at least this
    /// (nucleus sampling), in (0, 1].
    pub top_p: Option<f32>,
    /// Seeds the draws: the same seed, model and prime give the same text.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 1.0,
            top_k: None,
            top_p: None,
            seed: 0,
        }
    }
}

impl Sampling {
    /// Checks every setting.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first setting out of range.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(Error::Config(format!(
                "the temperature must be 0 (always the likeliest token) or more, not {}",
                self.temperature
            )));
        }
        if self.top_k == Some(0) {
            return Err(Error::Config("top-k must be at least 1".into()));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(Error::Config(format!(
                "top-p must be more than 0 and at most 1, not {p}"
            )));
        }
        Ok(())
    }
}

/// The tokens a language model writes, one by one: an iterator of `(token id, p)`, `p`
/// being the model's probability of that token (at temperature 1) where it was drawn. It
/// never ends by itself; take as many as wanted.
#[derive(Debug)]
pub struct Generator<'a> {
    model: &'a Model,
    sampling: Sampling,
    rng: Rng,
    ws: Workspace,
    carry: Carry,
    batch: Batch,
    /// The logits of the next token.
    logits: Vec<f32>,
    /// Scratch: the distribution drawn from, and the candidates in order.
    probs: Vec<f32>,
    order: Vec<u32>,
}

/// The random stream of the draws.
const SAMPLE_STREAM: u64 = 3;

/// Tokens of the prime read in one pass.
const PRIME_WINDOW: usize = 256;

impl<'a> Generator<'a> {
    /// Reads `prime` and gets ready to draw the token after it. An empty prime starts the text
    /// after a line break, when the model knows one, or else after its first token.
    ///
    /// # Errors
    /// As [`Model::generate`].
    pub fn new(model: &'a Model, prime: &str, sampling: &Sampling) -> Result<Self> {
        model.check_kind(Kind::LanguageModel, "writing text")?;
        sampling.validate()?;
        let unk = model.vocab.unk();
        // the first token it knows besides <unk>: the tokens it can write
        let Some(first_known) = (0..model.vocab.len() as u32).find(|&t| Some(t) != unk) else {
            return Err(Error::Config(
                "the model's vocabulary holds no token but <unk>: it has nothing to write".into(),
            ));
        };
        let mut ids = model.encode(prime);
        if !ids.is_empty() && ids.iter().all(|&t| Some(t) == unk) {
            return Err(Error::Config(format!(
                "the prime {prime:?} has no token the model knows; its vocabulary has {} tokens",
                model.vocab.len()
            )));
        }
        if ids.is_empty() {
            ids.push(model.vocab.index("\n").unwrap_or(first_known));
        }
        let mut generator = Generator {
            model,
            sampling: *sampling,
            rng: Rng::with_stream(sampling.seed, SAMPLE_STREAM),
            ws: Workspace::default(),
            carry: Carry::default(),
            batch: Batch::default(),
            logits: Vec::new(),
            probs: Vec::new(),
            order: Vec::new(),
        };
        // the prime a window at a time, the state carried: memory stays that of one window
        for window in ids.chunks(PRIME_WINDOW) {
            generator.read(window);
        }
        Ok(generator)
    }

    /// Runs `ids` through the network from the carried state; keeps the logits after the last.
    fn read(&mut self, ids: &[u32]) {
        self.batch.refill(&[ids], &[]);
        let net = &self.model.network;
        net.forward_only_carried(&self.batch, &mut self.ws, &mut self.carry);
        let v = net.classes();
        self.logits.clear();
        self.logits
            .extend_from_slice(self.ws.logits(ids.len() - 1, v));
    }

    /// The probabilities of the next token under the model (temperature 1), by id.
    pub fn next_probabilities(&self) -> Vec<f32> {
        let mut p = self.logits.clone();
        softmax_in_place(&mut p);
        p
    }

    /// Draws the next token from the logits, as [`Sampling`] says.
    fn draw(&mut self) -> u32 {
        let unk = self.model.vocab.unk();
        let candidates = (0..self.logits.len() as u32).filter(|&t| Some(t) != unk);
        if self.sampling.temperature == 0.0 {
            // the likeliest; the first among equals
            return candidates
                .fold(None, |best: Option<u32>, t| match best {
                    Some(b) if self.logits[b as usize] >= self.logits[t as usize] => Some(b),
                    _ => Some(t),
                })
                .expect("a token besides <unk>");
        }
        // p = softmax(y / τ) over the candidates, likeliest first
        self.order.clear();
        self.order.extend(candidates);
        let logits = &self.logits;
        self.order.sort_by(|&a, &b| {
            logits[b as usize]
                .total_cmp(&logits[a as usize])
                .then(a.cmp(&b))
        });
        let tau = self.sampling.temperature;
        self.probs.clear();
        self.probs
            .extend(self.order.iter().map(|&t| logits[t as usize] / tau));
        if !self.probs.iter().all(|y| y.is_finite()) {
            // a temperature so small (1e-45) that y / τ overflows: measured from the likeliest
            // logit, the likeliest tokens are 0 and the others -∞, as τ → 0 has them
            let top = logits[self.order[0] as usize];
            self.probs.clear();
            self.probs
                .extend(self.order.iter().map(|&t| (logits[t as usize] - top) / tau));
        }
        softmax_in_place(&mut self.probs);
        let mut keep = self.probs.len();
        if let Some(k) = self.sampling.top_k {
            keep = keep.min(k);
        }
        if let Some(p) = self.sampling.top_p {
            let mut sum = 0.0;
            let nucleus = self
                .probs
                .iter()
                .position(|&q| {
                    sum += q;
                    sum >= p
                })
                .map_or(self.probs.len(), |i| i + 1);
            keep = keep.min(nucleus);
        }
        let total: f32 = self.probs[..keep].iter().sum();
        let u = self.rng.uniform() as f32 * total;
        let mut acc = 0.0;
        for (i, &q) in self.probs[..keep].iter().enumerate() {
            acc += q;
            if u < acc {
                return self.order[i];
            }
        }
        self.order[keep - 1]
    }
}

impl Iterator for Generator<'_> {
    type Item = (u32, f32);

    fn next(&mut self) -> Option<(u32, f32)> {
        let token = self.draw();
        let p = self.next_probabilities()[token as usize];
        self.read(&[token]);
        Some((token, p))
    }
}
