//! Looking inside: predictions for many texts, and what flows through one text as the network
//! reads it (the tables and pictures of `rnn explain`).
//!
//! **The prediction after each token** is the prediction for the text up to and including
//! that token, as if it stopped there. A network that reads forwards only computes it in one
//! pass: its top layer's output at step `t` depends on the first `t` tokens alone, so pooling
//! those outputs step by step gives every prefix's features (see the head's `running`).
//!
//! A bidirectional network's backward direction reads each prefix from its own end, so each
//! prefix is run again (in batches, on rayon's threads): every prefix of a text of `T` tokens
//! would cost about `T²/2` steps, 20 s for 4,000 tokens with the default network. So the
//! prefixes run hold at most [`PREFIX_BUDGET`] tokens together: every prefix of a text of up to
//! 361 tokens, and of a longer text as many prefixes as fit, their ends evenly spaced and the
//! last the whole text ([`prefix_ends`]). A [`Trace`] says which prefixes were run; the tokens
//! where none ends have no probabilities, rather than made-up ones. The cost of a trace is then
//! at most that of reading [`PREFIX_BUDGET`] tokens (and the whole text once, when it is
//! longer), whatever the length, and it can be given up between batches of prefixes
//! ([`Network::trace_until`]).

use rayon::prelude::*;

use super::{Batch, Gradients, Network, TokenGrams, Workspace, loss};

/// What flows through one sequence (see [`Network::flow`]); each list has one entry a token.
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    /// The top layer's output at each token, `D·H` floats: the forward direction's state after
    /// reading up to the token, then (bidirectional) the backward direction's state after
    /// reading back to it.
    pub states: Vec<Vec<f32>>,
    /// The class probabilities if the sequence stopped after each token; NaN after a token
    /// where no prefix of [`Flow::ends`] ends (a long text read both ways, see [`Trace`]).
    pub probs: Vec<Vec<f32>>,
    /// The lengths of the prefixes whose probabilities are in [`Flow::probs`] (see
    /// [`Trace::ends`]).
    pub ends: Vec<usize>,
    /// `‖∂L/∂y_t‖`: the size of the loss's gradient with respect to the top layer's output at
    /// each token (both directions' parts, each through everything that reads it).
    pub gradient_norms: Vec<f32>,
    /// `D`: 2 when each state holds a forward and a backward half.
    pub directions: usize,
}

/// Tokens the prefixes that a bidirectional network's trace runs may hold together, at most
/// (2^16): about the work of predicting 65,536 tokens, 0.25 s with the default network on two
/// cores (`cargo bench --bench explain`).
pub const PREFIX_BUDGET: usize = 1 << 16;

/// Tokens a batch of prefixes may hold, so that a long text's prefixes run in pieces: on
/// several threads, and with a chance to give up between them.
const PREFIX_TOKENS: usize = 1 << 14;

/// The class probabilities of some prefixes of a sequence, as if it stopped after each (see
/// the module's documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// The lengths of the prefixes evaluated, increasing; the last is the whole sequence's.
    /// Every length from 1 for a network that reads forwards only and for a short sequence
    /// (see [`prefix_ends`]).
    pub ends: Vec<usize>,
    /// `probs[i]`: the class probabilities of the first `ends[i]` tokens.
    pub probs: Vec<Vec<f32>>,
}

impl Trace {
    /// The probabilities after each of the sequence's `len` tokens, `None` after a token where
    /// no evaluated prefix ends.
    pub fn after_each_token(&self, len: usize) -> Vec<Option<&[f32]>> {
        Trace::after_each_token_of(&self.ends, &self.probs, len)
    }

    /// [`Trace::after_each_token`] of the `ends` and `probs` of a trace.
    pub fn after_each_token_of<'a>(
        ends: &[usize],
        probs: &'a [Vec<f32>],
        len: usize,
    ) -> Vec<Option<&'a [f32]>> {
        let mut after = vec![None; len];
        for (&end, probs) in ends.iter().zip(probs) {
            if let Some(slot) = end.checked_sub(1).and_then(|i| after.get_mut(i)) {
                *slot = Some(probs.as_slice());
            }
        }
        after
    }
}

/// The work was given up (the `cancelled` callback of [`Network::trace_until`] said so).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled;

/// `ends` in batches of consecutive ends, each holding at most [`PREFIX_TOKENS`] tokens (or
/// one prefix, when that one is longer).
fn batches(ends: &[usize]) -> Vec<&[usize]> {
    let mut batches = Vec::new();
    let (mut start, mut held) = (0, 0);
    for (i, &end) in ends.iter().enumerate() {
        if i > start && held + end > PREFIX_TOKENS {
            batches.push(&ends[start..i]);
            (start, held) = (i, 0);
        }
        held += end;
    }
    if start < ends.len() {
        batches.push(&ends[start..]);
    }
    batches
}

/// The lengths of the prefixes that a bidirectional network's trace of `len` tokens runs when
/// they may hold `budget` tokens together: every length when all of them fit (`len·(len+1)/2 ≤
/// budget`); otherwise as many as fit, `⌈i·len/k⌉` for `i = 1..=k`, evenly spaced and the last
/// `len` (that one even when it alone is over the budget). Empty for an empty sequence.
pub fn prefix_ends(len: usize, budget: usize) -> Vec<usize> {
    let all = (len as u128) * (len as u128 + 1) / 2;
    if all <= budget as u128 {
        return (1..=len).collect();
    }
    let spaced = |k: usize| -> Vec<usize> {
        (1..=k)
            .map(|i| ((i as u128 * len as u128).div_ceil(k as u128)) as usize)
            .collect()
    };
    // k ends hold about len·(k+1)/2 tokens, at most k more (the rounding up)
    let k = (2 * (budget as u128) / len as u128).saturating_sub(1);
    let mut k = usize::try_from(k.min(len as u128)).unwrap_or(len).max(1);
    loop {
        let ends = spaced(k);
        let held: u128 = ends.iter().map(|&e| e as u128).sum();
        if held <= budget as u128 || k == 1 {
            return ends;
        }
        k -= 1;
    }
}

/// A sequence's logits and the wide path's part of them: `logits[c] = head's + ngrams[c]`.
#[derive(Clone, Debug, PartialEq)]
pub struct WidePart {
    /// Every class's logit (before softmax), both paths together.
    pub logits: Vec<f32>,
    /// The wide path's part of every class's logit: the mean of the text's n-grams' rows.
    pub ngrams: Vec<f32>,
}

impl Network {
    /// The class probabilities of every sequence, in the order given. A network with subword
    /// vectors reads here every word's own row alone; [`Network::predict_with_grams`] gives it
    /// the n-grams too (as [`crate::model::Model::predict`] does).
    pub fn predict(&self, sequences: &[&[u32]], ws: &mut Workspace) -> Vec<Vec<f32>> {
        self.predict_with_grams(sequences, &[], ws)
    }

    /// [`Network::predict`], `grams[i]` holding the subword n-grams of the tokens of
    /// `sequences[i]` (at least as many tokens) for a network with subwords (see
    /// [`super::Subwords`]); none (empty) for one without.
    pub fn predict_with_grams(
        &self,
        sequences: &[&[u32]],
        grams: &[&TokenGrams],
        ws: &mut Workspace,
    ) -> Vec<Vec<f32>> {
        let batch = self.batch(sequences, grams, &[]);
        self.forward_only(&batch, ws);
        let mut out = vec![Vec::new(); sequences.len()];
        for (r, &i) in batch.order().iter().enumerate() {
            out[i] = ws.probabilities(r, self.classes()).to_vec();
        }
        out
    }

    /// The logits of one sequence, and the wide path's part of them (see [`super::Ngrams`]), if
    /// the network has a wide path: how much of each class's score came from the n-grams.
    pub fn wide_part(
        &self,
        tokens: &[u32],
        grams: Option<&TokenGrams>,
        ws: &mut Workspace,
    ) -> Option<WidePart> {
        let wide = self.wide.as_ref()?;
        let batch = self.batch(&[tokens], grams.as_slice(), &[]);
        self.forward_only(&batch, ws);
        let c = self.classes();
        let logits = ws.logits(0, c).to_vec();
        let mut ngrams = vec![0.0; c];
        wide.forward(&self.params, &batch, &mut ws.wide, &mut ngrams);
        Some(WidePart { logits, ngrams })
    }

    /// Whether the output at every step depends on the tokens up to it alone (no backward
    /// direction), and the head alone makes the prediction (no wide path, whose mean over a
    /// prefix's n-grams one pass does not give), so that one pass gives the prediction after
    /// every token.
    pub fn reads_forwards_only(&self) -> bool {
        !self.arch.bidirectional && self.arch.ngrams.is_none()
    }

    /// The class probabilities after the tokens of `tokens` where an evaluated prefix ends, as
    /// if the sequence stopped there: after every token for a network that reads forwards only
    /// or a short sequence (see the module's documentation and [`prefix_ends`]). The last is
    /// the prediction for the whole. `grams` are the tokens' subword n-grams, for a network
    /// with subword vectors (see [`Network::predict_with_grams`]).
    pub fn trace(&self, tokens: &[u32], grams: Option<&TokenGrams>, ws: &mut Workspace) -> Trace {
        match self.trace_until(tokens, grams, ws, &|| false) {
            Ok(trace) => trace,
            Err(Cancelled) => unreachable!("a trace that is never cancelled ends"),
        }
    }

    /// [`Network::trace`], asking `cancelled` before each batch of prefixes (a batch holds at
    /// most 16,384 tokens: a few tens of ms) and giving up when it says so. The batches run on
    /// rayon's threads (the pool the caller is in); `ws` serves a network that reads forwards
    /// only, whose trace is one pass.
    ///
    /// # Errors
    /// [`Cancelled`] when `cancelled` returned true.
    pub fn trace_until(
        &self,
        tokens: &[u32],
        grams: Option<&TokenGrams>,
        ws: &mut Workspace,
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<Trace, Cancelled> {
        if self.reads_forwards_only() {
            if cancelled() {
                return Err(Cancelled);
            }
            let batch = self.batch(&[tokens], grams.as_slice(), &[]);
            self.forward(&batch, ws, None);
            let outputs = self.top_outputs(tokens.len(), ws);
            return Ok(Trace {
                ends: (1..=tokens.len()).collect(),
                probs: self.head.running(&self.params, &outputs),
            });
        }
        let ends = prefix_ends(tokens.len(), PREFIX_BUDGET);
        let probs: Vec<Vec<Vec<f32>>> = batches(&ends)
            .par_iter()
            .map_init(Workspace::default, |ws, chunk| {
                if cancelled() {
                    return Err(Cancelled);
                }
                let prefixes: Vec<&[u32]> = chunk.iter().map(|&end| &tokens[..end]).collect();
                // a prefix's tokens are the first of the text's: so are their n-grams
                let grams: Vec<&TokenGrams> = grams.map_or(Vec::new(), |g| vec![g; chunk.len()]);
                Ok(self.predict_with_grams(&prefixes, &grams, ws))
            })
            .collect::<Result<_, _>>()?;
        Ok(Trace {
            ends,
            probs: probs.into_iter().flatten().collect(),
        })
    }

    /// A batch of `sequences` with `targets`, and with `grams` their tokens' subword n-grams
    /// when the network reads them (`grams` empty or one a sequence).
    fn batch(&self, sequences: &[&[u32]], grams: &[&TokenGrams], targets: &[u32]) -> Batch {
        let mut batch = Batch::new(sequences, targets);
        if self.arch.subwords.is_some() && !grams.is_empty() {
            batch.attach_grams(grams);
        }
        batch
    }

    /// The top layer's output at each of the `steps` tokens of the one sequence that
    /// [`Network::forward`] last ran with `ws`, in the sequence's order (see [`Flow::states`]).
    fn top_outputs(&self, steps: usize, ws: &Workspace) -> Vec<Vec<f32>> {
        let top_layer = self.stack.layers.len() - 1;
        let top = &ws.stack.layers[top_layer];
        let h = self.hidden();
        (0..steps)
            .map(|t| {
                let mut y = Vec::with_capacity(self.arch.features());
                for (d, track) in top.tracks.iter().enumerate() {
                    // a backward direction reached token t at its own step steps - 1 - t
                    let step = if d == 0 { t } else { steps - 1 - t };
                    let s_size = self.cell(top_layer, d).state_size();
                    y.extend_from_slice(&track.states[(step + 1) * s_size..][..h]);
                }
                y
            })
            .collect()
    }

    /// What flows through one sequence, for pictures of it: the top layer's output after each
    /// token, the class probabilities after each token where [`Network::trace`] evaluates a
    /// prefix (NaN after the others), and the
    /// size of the gradient of the loss against `target` that reaches each output, `‖∂L/∂y_t‖`.
    /// Nothing is dropped.
    pub fn flow(
        &self,
        tokens: &[u32],
        grams: Option<&TokenGrams>,
        target: u32,
        ws: &mut Workspace,
    ) -> Flow {
        let trace = self.trace(tokens, grams, ws);
        let steps = tokens.len();
        let probs = trace
            .after_each_token(steps)
            .into_iter()
            .map(|p| p.map_or_else(|| vec![f32::NAN; self.classes()], <[f32]>::to_vec))
            .collect();
        let batch = self.batch(&[tokens], grams.as_slice(), &[target]);
        self.forward(&batch, ws, None);
        let states = self.top_outputs(steps, ws);
        let h = self.hidden();
        let mut squares = vec![0.0f32; steps];
        let mut grads = Gradients::new(self);
        let mut norms = |d: usize, t: usize, ds: &[f32]| {
            let at = if d == 0 { t } else { steps - 1 - t };
            squares[at] += ds[..h].iter().map(|g| g * g).sum::<f32>();
        };
        loss::backward(ws, self.targets(&batch), 1.0, None);
        self.backward_with(&batch, ws, &mut grads, Some(&mut norms));
        Flow {
            states,
            probs,
            ends: trace.ends,
            gradient_norms: squares.iter().map(|s| s.sqrt()).collect(),
            directions: self.arch.directions(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::rnn::{Architecture, CellKind, Init, Pool};

    #[test]
    fn every_prefix_of_a_short_text_and_a_budget_of_the_others_evenly_spaced() {
        assert_eq!(prefix_ends(0, 100), Vec::<usize>::new());
        assert_eq!(
            prefix_ends(13, 91),
            (1..=13).collect::<Vec<_>>(),
            "91 = 13·14/2"
        );
        // one more token and all 14 would hold 105: 11 fit, ending every 14/11 tokens
        let ends = prefix_ends(14, 91);
        assert_eq!(ends, [2, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14]);
        assert_eq!(ends.iter().sum::<usize>(), 89);
        // the default budget: every prefix up to 361 tokens, then as many as fit
        assert_eq!(prefix_ends(361, PREFIX_BUDGET).len(), 361);
        assert_eq!(prefix_ends(362, PREFIX_BUDGET).len(), 360);
        for len in [512, 1000, 4000, 10_000, 50_000] {
            let ends = prefix_ends(len, PREFIX_BUDGET);
            let held: usize = ends.iter().sum();
            assert!(held <= PREFIX_BUDGET, "{len}: {held}");
            assert_eq!(*ends.last().unwrap(), len);
            assert!(ends.windows(2).all(|w| w[0] < w[1]), "{len}: increasing");
            let gaps: Vec<usize> = ends.windows(2).map(|w| w[1] - w[0]).collect();
            if let (Some(least), Some(most)) = (gaps.iter().min(), gaps.iter().max()) {
                assert!(
                    most - least <= 1,
                    "{len}: evenly spaced, gaps {least} to {most}"
                );
            }
            // and not far fewer than fit: one more would be over the budget
            assert!(
                held + len / 2 + 2 * ends.len() > PREFIX_BUDGET,
                "{len}: {held}"
            );
        }
        assert_eq!(prefix_ends(4000, PREFIX_BUDGET).len(), 31);
        assert_eq!(prefix_ends(50_000, PREFIX_BUDGET), [50_000]);
        // a text longer than the budget is still predicted whole
        assert_eq!(prefix_ends(300, 100), [300]);
    }

    fn bidirectional() -> Network {
        let arch = Architecture {
            bidirectional: true,
            pool: Pool::Max,
            ..Architecture::new(CellKind::Lstm, 7, 6, 3)
        };
        Network::new(&arch, Init::LikeRnn, &mut Rng::new(5)).unwrap()
    }

    #[test]
    fn each_prefix_evaluated_is_the_prediction_for_that_prefix() {
        let net = bidirectional();
        let mut rng = Rng::new(9);
        let mut ws = Workspace::default();
        for len in [1, 40, 361, 362, 3000] {
            let tokens: Vec<u32> = (0..len).map(|_| rng.below(7) as u32).collect();
            let trace = net.trace(&tokens, None, &mut ws);
            assert_eq!(trace.ends, prefix_ends(len, PREFIX_BUDGET));
            assert_eq!(trace.probs.len(), trace.ends.len());
            // every one for a short text, a sample of them for the long ones
            let step = if len <= 40 { 1 } else { 17 };
            let mut checked: Vec<usize> = (0..trace.ends.len()).step_by(step).collect();
            checked.push(trace.ends.len() - 1);
            for i in checked {
                let end = trace.ends[i];
                let alone = &net.predict(&[&tokens[..end]], &mut ws)[0];
                let worst = alone
                    .iter()
                    .zip(&trace.probs[i])
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(worst <= 1e-6, "{len} tokens, prefix {end}: off by {worst}");
            }
            let after = trace.after_each_token(len);
            assert_eq!(
                after.iter().filter(|p| p.is_some()).count(),
                trace.ends.len()
            );
            assert_eq!(after[len - 1], trace.probs.last().map(Vec::as_slice));
        }
    }

    #[test]
    fn a_network_that_reads_forwards_only_gives_every_prefix_of_any_text() {
        let net = Network::new(
            &Architecture::new(CellKind::Gru, 7, 6, 3),
            Init::LikeRnn,
            &mut Rng::new(5),
        )
        .unwrap();
        let tokens: Vec<u32> = (0..2000).map(|i| (i % 7) as u32).collect();
        let trace = net.trace(&tokens, None, &mut Workspace::default());
        assert_eq!(trace.ends, (1..=2000).collect::<Vec<_>>());
    }

    #[test]
    fn a_trace_is_given_up_between_batches_when_asked() {
        let net = bidirectional();
        let tokens: Vec<u32> = (0..3000).map(|i| (i % 7) as u32).collect();
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let cancelled = || asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1;
        let result = net.trace_until(&tokens, None, &mut Workspace::default(), &cancelled);
        assert_eq!(result, Err(Cancelled));
        let batches = batches(&prefix_ends(3000, PREFIX_BUDGET)).len();
        assert!(batches >= 3, "{batches} batches: enough to give up between");
        let asked = asked.into_inner();
        assert!(
            asked <= batches,
            "asked {asked} times for {batches} batches"
        );
    }
}
