//! The wide path: a linear model over a hashed bag of n-grams of the tokens, whose logits add
//! to the recurrent head's (fastText's hashing trick, without its hidden layer).
//!
//! ```text
//! G(x)  = { bucket(x_i .. x_{i+n-1}) : n = 1..N, every i }      (a multiset, |G| grams)
//! y     = y_head + (1/|G|) Σ_{g ∈ G} W[g]                        (W: B×C, `wide.weight`)
//! ```
//!
//! A gram's bucket is computed from its tokens' keys: a token's index in the vocabulary, or
//! for a token the vocabulary lacks, its [`UNSEEN`] key, made of its hash (so that a word seen
//! once in training, which the recurrent network reads as `<unk>`, still has grams of its
//! own). A single known token `w` is bucket `w mod B` (so that with `B ≥ V` no two words share
//! one); an unseen one, and a longer gram, is fastText's rolling hash of its keys, mixed,
//! modulo `B`:
//!
//! ```text
//! h = k_i;  h = h·116049371 + k_j  for j = i+1 .. i+n-1   (wrapping, 64 bits)
//! bucket = mix(h) mod B          mix: the finaliser of SplitMix64
//! ```
//!
//! It reads words (with `--tokens word`) or characters (`--tokens char`): word n-grams, or
//! character n-grams. A text's n-grams are averaged (fastText's mean), so a long text's wide
//! logits are no larger than a short one's. PyTorch's form is
//! `nn.EmbeddingBag(B, C, mode="mean")` over the buckets, added to `fc`'s output.
//!
//! Backward: `dW[g] += dy / |G|` for every gram `g` of the row (a repeated gram gets it as
//! often as it occurs). Only the batch's buckets get a gradient, kept as rows of the sparse
//! gradient (see [`super::Gradients`]), so a step costs in proportion to the batch, not to `B`.
//! The table starts at zero: the wide path adds nothing until it has learnt, and a network
//! draws the same recurrent weights from a seed with or without it.

use super::batch::Batch;
use super::params::Layout;
use crate::data::UNSEEN;

/// `B` when none is given: 2^18 rows (fastText's default is 2·10^6, of 100 floats each; a row
/// here is one float a class). On the accuracy suite 2^17 and 2^19 scored within half a point
/// of it, and 2^14 four points less (word bigrams of 6,000 package descriptions).
pub const DEFAULT_BUCKETS: usize = 1 << 18;

/// The name of the table, as in PyTorch's state dict.
pub(crate) const WEIGHT: &str = "wide.weight";

/// The multiplier of fastText's rolling hash of a word n-gram (`Dictionary::addWordNgrams`).
const ROLL: u64 = 116_049_371;

/// The shape of the wide path: n-grams of 1 to `n` tokens, hashed into `buckets` rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ngrams {
    /// `N`, the longest n-gram.
    pub n: usize,
    /// `B`, the number of rows of the hashed table.
    pub buckets: usize,
}

/// `wide.weight`, B×C at `offset` (row-major: bucket `g`'s row is `C` floats at `offset + g·C`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Wide {
    pub ngrams: Ngrams,
    pub offset: usize,
    pub classes: usize,
}

/// Each row's buckets, from the forward pass to the backward one.
#[derive(Clone, Debug, Default)]
pub(crate) struct WideWork {
    /// Every row's buckets back to back, row `r`'s at `grams[starts[r]..starts[r + 1]]`.
    pub grams: Vec<u32>,
    pub starts: Vec<usize>,
    /// One row's tokens, gathered from the packed batch.
    row: Vec<u32>,
}

impl WideWork {
    /// Row `r`'s buckets.
    pub fn of_row(&self, r: usize) -> &[u32] {
        &self.grams[self.starts[r]..self.starts[r + 1]]
    }
}

/// SplitMix64's finaliser: every bit of `h` reaches every bit of the result.
fn mix(mut h: u64) -> u64 {
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Appends the buckets of every n-gram of `tokens` (n = 1..=N, shortest first, then by
/// position) to `out`.
pub fn buckets_of(tokens: &[u32], ngrams: Ngrams, out: &mut Vec<u32>) {
    let b = ngrams.buckets as u64;
    for n in 1..=ngrams.n.min(tokens.len()) {
        for gram in tokens.windows(n) {
            let bucket = if n == 1 && gram[0] & UNSEEN == 0 {
                u64::from(gram[0]) % b
            } else if n == 1 {
                mix(u64::from(gram[0])) % b
            } else {
                let h = gram[1..].iter().fold(u64::from(gram[0]), |h, &x| {
                    h.wrapping_mul(ROLL).wrapping_add(u64::from(x))
                });
                mix(h) % b
            };
            out.push(bucket as u32);
        }
    }
}

impl Wide {
    /// Adds `wide.weight` (B×C) to `layout`.
    pub fn new(layout: &mut Layout, ngrams: Ngrams, classes: usize) -> Self {
        let offset = layout.push(WEIGHT, &[ngrams.buckets, classes], false);
        Wide {
            ngrams,
            offset,
            classes,
        }
    }

    /// The number of parameters: `B·C`.
    pub fn len(&self) -> usize {
        self.ngrams.buckets * self.classes
    }

    /// **Adds** every row's mean of its grams' rows of `W` to its logits (C a row, in the
    /// batch's sorted order), keeping the buckets in `work` for the backward pass.
    pub fn forward(&self, params: &[f32], batch: &Batch, work: &mut WideWork, logits: &mut [f32]) {
        let c = self.classes;
        work.grams.clear();
        work.starts.clear();
        work.starts.push(0);
        let keys = match batch.keys() {
            [] => batch.tokens(),
            keys => keys,
        };
        for (r, &len) in batch.lengths().iter().enumerate() {
            work.row.clear();
            let row = &mut work.row;
            row.extend((0..len).map(|t| keys[batch.step_offset(t) + r]));
            buckets_of(row, self.ngrams, &mut work.grams);
            work.starts.push(work.grams.len());
            let grams = work.of_row(r);
            if grams.is_empty() {
                continue;
            }
            let scale = 1.0 / grams.len() as f32;
            let y = &mut logits[r * c..][..c];
            for &g in grams {
                let w = &params[self.offset + g as usize * c..][..c];
                for (y, &w) in y.iter_mut().zip(w) {
                    *y += scale * w;
                }
            }
        }
    }

    /// **Adds** `dW[g] += dy_r / |G_r|` for every gram of every row to the rows of the
    /// sparse gradient: gram `i` of `work.grams` (in its order) goes to row `local[i]` of
    /// `rows` (`C` floats a row; see [`super::Gradients::localize_rows`]).
    pub fn backward(&self, work: &WideWork, dlogits: &[f32], local: &[u32], rows: &mut [f32]) {
        let c = self.classes;
        for r in 0..work.starts.len() - 1 {
            let span = work.starts[r]..work.starts[r + 1];
            if span.is_empty() {
                continue;
            }
            let scale = 1.0 / span.len() as f32;
            let dy = &dlogits[r * c..][..c];
            for &row in &local[span] {
                let g = &mut rows[row as usize * c..][..c];
                for (g, &d) in g.iter_mut().zip(dy) {
                    *g += scale * d;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_tokens_keep_their_bucket_and_longer_grams_are_hashed() {
        let ngrams = Ngrams { n: 2, buckets: 100 };
        let mut out = Vec::new();
        buckets_of(&[3, 7, 3], ngrams, &mut out);
        assert_eq!(out.len(), 5, "3 words and 2 bigrams");
        assert_eq!(&out[..3], &[3, 7, 3]);
        // "3 7" and "7 3" are different bigrams
        assert_ne!(out[3], out[4]);
        // the same gram anywhere, in any text, has one bucket
        let mut again = Vec::new();
        buckets_of(&[1, 3, 7], ngrams, &mut again);
        assert_eq!(again[3 + 1], out[3]);
        // fewer tokens than N: only the grams there are
        out.clear();
        buckets_of(&[4], Ngrams { n: 3, buckets: 2 }, &mut out);
        assert_eq!(out, [0]);
        out.clear();
        buckets_of(&[], ngrams, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_bigrams_bucket_is_the_documented_hash() {
        // the Python export computes the same numbers (python/rnn/_torch.py)
        let h = 5u64.wrapping_mul(ROLL).wrapping_add(9);
        let mut out = Vec::new();
        buckets_of(
            &[5, 9],
            Ngrams {
                n: 2,
                buckets: 1 << 20,
            },
            &mut out,
        );
        assert_eq!(out[2] as u64, mix(h) % (1 << 20));
        assert_eq!(out[2], 837_401, "pinned for the export's test");
    }
}
