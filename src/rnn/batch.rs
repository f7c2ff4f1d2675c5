//! A batch of token sequences of different lengths, laid out for the unroll over time.
//!
//! Sequences are sorted longest first (as PyTorch's packed sequences are), so that at every
//! step the sequences still running are the first rows: step `t` works on rows `0..active(t)`,
//! and no padded position is ever computed. A sequence that has ended simply stops being
//! updated, so its result is the same alone or in any batch.
//!
//! Tokens are stored *packed*: step 0's tokens (one a running row), then step 1's, and so on,
//! with no padding. A packed position is the row of a matrix with one row a token, the layout
//! in which per-token results of all steps (for the weight gradients) are kept.
//!
//! **Reading backwards.** A direction that reads each sequence from its end runs the same
//! steps over the same rows: at its step `t`, row `r` reads token `len_r - 1 - t`. Its packed
//! positions are therefore the forward ones reordered, and [`Batch::reversed_positions`] gives
//! the map; a sequence's reversal never mixes it with another's.
//!
//! **Unseen tokens.** A token given as an [`UNSEEN`] key (a word the vocabulary lacks, by its
//! hash: see [`crate::data::unseen_key`]) is read as token 0, `<unk>`, by the recurrent
//! network; the keys as given are kept for the wide path ([`Batch::keys`]).

use super::TokenGrams;
use crate::data::{UNSEEN, network_token};

/// Sequences (and, for training, their labels) sorted by length for the unroll.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Tokens by step, then row, packed: step `t`'s are `tokens[offsets[t]..offsets[t + 1]]`.
    tokens: Vec<u32>,
    /// Where each step starts in `tokens`; one more entry than steps.
    offsets: Vec<usize>,
    /// The length of every row, longest first.
    lengths: Vec<usize>,
    /// `active[t]`: how many rows are still running at step `t`.
    active: Vec<usize>,
    /// The label of every row (empty when the batch is only predicted).
    targets: Vec<u32>,
    /// The target of every token, packed as `tokens` are, for a head that predicts at every
    /// step (empty otherwise).
    step_targets: Vec<u32>,
    /// `order[r]`: the position in the caller's list of the sequence in row `r`.
    order: Vec<usize>,
    /// The tokens as given, packed as `tokens` are, when some were [`UNSEEN`] keys (which
    /// `tokens` holds as token 0, `<unk>`); empty otherwise.
    keys: Vec<u32>,
    /// Every token's subword n-grams (see [`super::Subwords`]), packed as `tokens` are: the
    /// token at packed position `p` has `grams[gram_starts[p]..gram_starts[p + 1]]`. Empty
    /// unless [`Batch::attach_grams`] gave them.
    gram_starts: Vec<u32>,
    grams: Vec<u32>,
}

impl Batch {
    /// A batch of `sequences`, with `targets[i]` the label of `sequences[i]` (or no targets,
    /// for prediction).
    ///
    /// # Panics
    /// If `targets` is neither empty nor as long as `sequences`.
    pub fn new(sequences: &[&[u32]], targets: &[u32]) -> Self {
        let mut batch = Batch::default();
        batch.refill(sequences, targets);
        batch
    }

    /// Makes this batch hold `sequences` and `targets` (as [`Batch::new`] does), reusing its
    /// memory: a training loop refills one batch instead of allocating one per step.
    ///
    /// # Panics
    /// If `targets` is neither empty nor as long as `sequences`.
    pub fn refill(&mut self, sequences: &[&[u32]], targets: &[u32]) {
        assert!(
            targets.is_empty() || targets.len() == sequences.len(),
            "Batch::new: {} targets for {} sequences",
            targets.len(),
            sequences.len()
        );
        self.order.clear();
        self.order.extend(0..sequences.len());
        // stable: ties keep their order
        self.order
            .sort_by_key(|&i| std::cmp::Reverse(sequences[i].len()));
        self.lengths.clear();
        self.lengths
            .extend(self.order.iter().map(|&i| sequences[i].len()));
        let steps = self.lengths.first().copied().unwrap_or(0);
        // lengths fall, so the rows running at step t are those longer than t
        self.active.clear();
        let lengths = &self.lengths;
        self.active
            .extend((0..steps).map(|t| lengths.partition_point(|&len| len > t)));
        self.offsets.clear();
        self.tokens.clear();
        for (t, &n) in self.active.iter().enumerate() {
            self.offsets.push(self.tokens.len());
            self.tokens
                .extend(self.order[..n].iter().map(|&i| sequences[i][t]));
        }
        self.offsets.push(self.tokens.len());
        self.keys.clear();
        if self.tokens.iter().any(|&t| t & UNSEEN != 0) {
            self.keys.extend_from_slice(&self.tokens);
            for t in &mut self.tokens {
                *t = network_token(*t);
            }
        }
        self.gram_starts.clear();
        self.grams.clear();
        self.targets.clear();
        self.step_targets.clear();
        if !targets.is_empty() {
            self.targets.extend(self.order.iter().map(|&i| targets[i]));
        }
    }

    /// A batch of `sequences` in which token `t` of `sequences[i]` has the target
    /// `targets[i][t]`, for a head that predicts at every step (a language model's targets
    /// are the next tokens).
    ///
    /// # Panics
    /// If `targets` and `sequences` differ in number or in any length.
    pub fn with_step_targets(sequences: &[&[u32]], targets: &[&[u32]]) -> Self {
        let mut batch = Batch::default();
        batch.refill_with_step_targets(sequences, targets);
        batch
    }

    /// [`Batch::with_step_targets`], reusing this batch's memory.
    ///
    /// # Panics
    /// As [`Batch::with_step_targets`].
    pub fn refill_with_step_targets(&mut self, sequences: &[&[u32]], targets: &[&[u32]]) {
        assert!(
            targets.len() == sequences.len()
                && targets
                    .iter()
                    .zip(sequences)
                    .all(|(t, s)| t.len() == s.len()),
            "a target for every token"
        );
        self.refill(sequences, &[]);
        for (t, &n) in self.active.iter().enumerate() {
            self.step_targets
                .extend(self.order[..n].iter().map(|&i| targets[i][t]));
        }
    }

    /// Gives every token of the batch its subword n-grams: `grams[i]` are those of the tokens
    /// of the sequence `i` of [`Batch::refill`]'s list (at least as many tokens as it has).
    ///
    /// # Panics
    /// If `grams` is not one a sequence, or one has fewer tokens than its sequence.
    pub fn attach_grams(&mut self, grams: &[&TokenGrams]) {
        assert_eq!(grams.len(), self.rows(), "n-grams for every sequence");
        self.gram_starts.clear();
        self.grams.clear();
        self.gram_starts.push(0);
        for (t, &n) in self.active.iter().enumerate() {
            for &i in &self.order[..n] {
                self.grams.extend_from_slice(grams[i].of(t));
                self.gram_starts.push(self.grams.len() as u32);
            }
        }
    }

    /// Every token's subword n-grams, packed as the tokens are (see [`Batch::attach_grams`]):
    /// `(starts, grams)`, packed position `p`'s being `grams[starts[p]..starts[p + 1]]`; `None`
    /// when none were attached.
    pub fn grams(&self) -> Option<(&[u32], &[u32])> {
        if self.gram_starts.is_empty() {
            None
        } else {
            Some((&self.gram_starts, &self.grams))
        }
    }

    /// The tokens as given, packed, when some were [`UNSEEN`] keys of tokens the vocabulary
    /// lacks (the wide path reads these; `tokens` has `<unk>` there); empty when none were.
    pub fn keys(&self) -> &[u32] {
        &self.keys
    }

    /// The number of sequences.
    pub fn rows(&self) -> usize {
        self.lengths.len()
    }

    /// The length of the longest sequence.
    pub fn steps(&self) -> usize {
        self.active.len()
    }

    /// The number of tokens in the batch (padding not counted).
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// The tokens of the rows still running at step `t` (0-based).
    pub fn step_tokens(&self, t: usize) -> &[u32] {
        &self.tokens[self.offsets[t]..self.offsets[t + 1]]
    }

    /// How many rows are still running at step `t`: those longer than `t`.
    pub fn active(&self, t: usize) -> usize {
        self.active[t]
    }

    /// For a direction that reads every sequence from its end: `out[i]` is the forward packed
    /// position of the token that such a direction reads at its packed position `i` (step `t`,
    /// row `r` at `i = offset(t) + r` reads the token at step `len_r - 1 - t`, row `r`).
    pub fn reversed_positions(&self, out: &mut Vec<u32>) {
        out.clear();
        for (t, &n) in self.active.iter().enumerate() {
            out.extend(
                self.lengths[..n]
                    .iter()
                    .enumerate()
                    .map(|(r, &len)| (self.offsets[len - 1 - t] + r) as u32),
            );
        }
    }

    /// Where step `t`'s tokens start among all tokens, packed (see [`Batch::tokens`]).
    pub fn step_offset(&self, t: usize) -> usize {
        self.offsets[t]
    }

    /// All tokens, packed: step 0's (one a running row), then step 1's, and so on.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// The length of every row, longest first.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// The label of every row; empty for a batch without labels.
    pub fn targets(&self) -> &[u32] {
        &self.targets
    }

    /// The target of every token, packed as [`Batch::tokens`] are; empty unless the batch was
    /// made [`Batch::with_step_targets`].
    pub fn step_targets(&self) -> &[u32] {
        &self.step_targets
    }

    /// `order()[r]`: the caller's index of the sequence in row `r`.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_sorted_longest_first_and_steps_shrink() {
        let batch = Batch::new(&[&[1, 2], &[3, 4, 5], &[], &[6, 7]], &[0, 1, 0, 1]);
        assert_eq!(batch.rows(), 4);
        assert_eq!(batch.steps(), 3);
        assert_eq!(batch.order(), [1, 0, 3, 2]);
        assert_eq!(batch.lengths(), [3, 2, 2, 0]);
        assert_eq!(batch.targets(), [1, 0, 1, 0]);
        assert_eq!(batch.step_tokens(0), [3, 1, 6]);
        assert_eq!(batch.step_tokens(1), [4, 2, 7]);
        assert_eq!(batch.step_tokens(2), [5]);
        assert_eq!(batch.token_count(), 7);
        assert_eq!(batch.tokens(), [3, 1, 6, 4, 2, 7, 5]);
        assert_eq!((batch.step_offset(1), batch.step_offset(2)), (3, 6));
        assert_eq!((batch.active(0), batch.active(2)), (3, 1));
    }

    #[test]
    fn reading_backwards_visits_each_sequence_from_its_end() {
        let batch = Batch::new(&[&[1, 2], &[3, 4, 5], &[], &[6, 7]], &[]);
        let mut positions = Vec::new();
        batch.reversed_positions(&mut positions);
        let read: Vec<u32> = positions
            .iter()
            .map(|&i| batch.tokens()[i as usize])
            .collect();
        // step 0: the last token of every row; step 1: the first of the two-token rows and the
        // middle of the long one; step 2: the long one's first
        assert_eq!(read, [5, 2, 7, 4, 1, 6, 3]);
        let mut sorted = positions.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..7).collect::<Vec<u32>>(), "a permutation");
    }

    #[test]
    fn step_targets_are_packed_as_the_tokens_are() {
        let batch = Batch::with_step_targets(&[&[1, 2], &[3, 4, 5]], &[&[10, 20], &[30, 40, 50]]);
        assert_eq!(batch.tokens(), [3, 1, 4, 2, 5]);
        assert_eq!(batch.step_targets(), [30, 10, 40, 20, 50]);
        assert!(batch.targets().is_empty());
    }

    #[test]
    fn an_empty_batch_has_no_steps() {
        let batch = Batch::new(&[], &[]);
        assert_eq!((batch.rows(), batch.steps()), (0, 0));
    }
}
