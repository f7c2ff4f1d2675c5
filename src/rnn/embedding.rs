//! The learnt embedding in front of the first layer, PyTorch's `nn.Embedding(V, E)`.
//!
//! ```text
//! x_t = E[w_t]          (row w_t of E: V×E, `embedding.weight`)
//! ```
//!
//! Backward: `dE[w_t] += dx_t`. Only the batch's tokens' rows get a gradient, so it goes to
//! their entries of the sparse gradient (see [`super::Gradients`]), not to a V×E matrix.
//!
//! With subword vectors a token's vector is its row plus the mean of its character n-grams'
//! rows (see [`super::Subwords`]).
//!
//! **Distinct tokens.** The first layer projects every position's vector, `W_ih x_t`, and that
//! depends on the token alone. A batch of characters holds some 80 distinct tokens in 800
//! positions (a batch of words, half as many as positions or fewer in longer texts). So when a
//! batch has at most [`DISTINCT_SHARE`] as many distinct tokens as positions (and no subwords,
//! which make a position's vector its own), the embedding hands over each distinct token's row
//! once, and for every position which row is its ([`Embedded::Distinct`]): the layer projects
//! the distinct rows and looks the projections up, as it does under one-hot input (see
//! [`super::layer`]), and backward sums the gradient of each token's positions before it
//! multiplies. The products shrink by the share; the sums are the same, added in another
//! order.

use super::batch::Batch;
use super::grads::Table;
use super::layer::LayerInput;
use super::params::Layout;
use super::unroll::fit;
use super::{Architecture, subwords};
use crate::error::{Error, Result};
use crate::kernels::{AlignedVec, add_into};
use crate::rng::Rng;

/// `embedding.weight`, a token table at `at`: `width` floats a token; with subwords, followed
/// by `subwords.weight`, as wide, whose row `g` is the table's row `V + g`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Embedding {
    table: Table,
    vocab: usize,
}

impl Embedding {
    /// Adds `embedding.weight` (V×E), and with subwords `subwords.weight` (B×E), to `layout`,
    /// and the one table of both to the token tables.
    pub fn new(
        layout: &mut Layout,
        tables: &mut Vec<Table>,
        arch: &Architecture,
        width: usize,
    ) -> Self {
        let vocab = arch.vocab;
        let offset = layout.push("embedding.weight", &[vocab, width], false);
        if let Some(subwords) = arch.subwords {
            // zeros until learnt: not drawn (see [`super::Subwords`])
            layout.push(subwords::WEIGHT, &[subwords.buckets, width], false);
        }
        let table = Table { offset, width };
        tables.push(table);
        Embedding { table, vocab }
    }

    /// PyTorch's `nn.Embedding` initialisation: every entry N(0, 1).
    pub fn init(&self, params: &mut [f32], rng: &mut Rng) {
        let len = self.vocab * self.table.width;
        for w in &mut params[self.table.offset..][..len] {
            *w = rng.normal() as f32;
        }
    }

    /// The embedding of the tokens of `batch`, into `work`: of every position (packed, N × E),
    /// row `w` of the table for token `w` and with subwords the mean of its n-grams' rows
    /// added; or, when few tokens are distinct, each distinct token's row once (see the
    /// module's documentation and [`EmbeddedWork::input`]).
    pub fn forward(&self, params: &[f32], batch: &Batch, work: &mut EmbeddedWork) {
        let (at, e) = (self.table.offset, self.table.width);
        let tokens = batch.tokens();
        work.of.clear();
        if batch.grams().is_none() && work.find_distinct(tokens, self.vocab) {
            let out = &mut work.rows;
            fit(out, work.distinct.len() * e);
            for (row, &w) in out.chunks_exact_mut(e).zip(&work.distinct) {
                row.copy_from_slice(&params[at + w as usize * e..][..e]);
            }
            return;
        }
        let out = &mut work.rows;
        fit(out, tokens.len() * e);
        for (row, &w) in out.chunks_exact_mut(e).zip(tokens) {
            row.copy_from_slice(&params[at + w as usize * e..][..e]);
        }
        let Some((starts, grams)) = batch.grams() else {
            return;
        };
        let subwords = at + self.vocab * e;
        // each token's n-grams summed by the vector kernel, then scaled once
        let mut sum = vec![0.0; e];
        for (p, row) in out.chunks_exact_mut(e).enumerate() {
            let mine = &grams[starts[p] as usize..starts[p + 1] as usize];
            if mine.is_empty() {
                continue;
            }
            sum.fill(0.0);
            for &g in mine {
                add_into(&mut sum, &params[subwords + g as usize * e..][..e]);
            }
            let scale = 1.0 / mine.len() as f32;
            for (x, &s) in row.iter_mut().zip(&sum) {
                *x += scale * s;
            }
        }
    }

    /// **Adds** `dx`, the gradient on the rows [`Embedding::forward`] left in `work` (every
    /// position's, N × E, or every distinct token's), to the rows of the batch's tokens (and
    /// their n-grams'): position `i`'s token's row of the gradient is the first `E` floats of
    /// entry `local.0[i]` of `entries` (`entry` floats an entry), and the batch's `k`-th
    /// n-gram's is entry `local.1[k]`.
    pub fn backward(
        &self,
        batch: &Batch,
        work: &EmbeddedWork,
        dx: &[f32],
        local: (&[u32], &[u32]),
        entries: &mut [f32],
        entry: usize,
    ) {
        let e = self.table.width;
        if !work.of.is_empty() {
            // a distinct token's row of dx is the sum over its positions: it goes to the entry
            // of the token at any of them, the first
            let mut done = vec![false; work.distinct.len()];
            for (&row, &local) in work.of.iter().zip(local.0) {
                let row = row as usize;
                if !std::mem::replace(&mut done[row], true) {
                    add_into(
                        &mut entries[local as usize * entry..][..e],
                        &dx[row * e..][..e],
                    );
                }
            }
            return;
        }
        let Some((starts, _)) = batch.grams() else {
            // forward: x_t = E[w_t]  =>  row w_t of dE += dx_t, in the token's gradient entry
            for (dx, &local) in dx.chunks_exact(e).zip(local.0) {
                add_into(&mut entries[local as usize * entry..][..e], dx);
            }
            return;
        };
        // forward: x_t = E[w_t] + (1/|G|) Σ S[g]  =>  row w_t += dx_t, each n-gram's += dx_t / |G|
        let mut scaled = vec![0.0; e];
        for (p, (dx, &token)) in dx.chunks_exact(e).zip(local.0).enumerate() {
            add_into(&mut entries[token as usize * entry..][..e], dx);
            let span = starts[p] as usize..starts[p + 1] as usize;
            let scale = 1.0 / span.len().max(1) as f32;
            for (s, &d) in scaled.iter_mut().zip(dx) {
                *s = d * scale;
            }
            for &row in &local.1[span] {
                add_into(&mut entries[row as usize * entry..][..e], &scaled);
            }
        }
    }
}

/// At most this share of a batch's positions may hold distinct tokens for the embedding to
/// hand over each distinct token's row once (see the module's documentation): below it, the
/// products saved outweigh gathering the projections and summing the gradients by token.
pub const DISTINCT_SHARE: f32 = 0.5;

/// The embedding's output for one batch, reused from batch to batch.
#[derive(Clone, Debug, Default)]
pub(super) struct EmbeddedWork {
    /// Every position's vector (N × E), or every distinct token's (when `of` is not empty).
    rows: AlignedVec,
    /// For every position, which row of `rows` is its token's; empty when `rows` has a row a
    /// position.
    of: Vec<u32>,
    /// The distinct tokens, in the order first met: `rows`' tokens.
    distinct: Vec<u32>,
    /// `slot[w]`: one more than token `w`'s place in `distinct`, or 0; zero between batches.
    slot: Vec<u32>,
    /// A row a position whatever the batch, to test one way against the other.
    #[cfg(test)]
    pub each_position: bool,
}

impl EmbeddedWork {
    /// The first layer's input: [`LayerInput::Dense`], or [`LayerInput::Distinct`].
    pub fn input(&self) -> LayerInput<'_> {
        if self.of.is_empty() {
            LayerInput::Dense(&self.rows)
        } else {
            LayerInput::Distinct {
                rows: &self.rows,
                of: &self.of,
            }
        }
    }

    /// Finds the distinct tokens of `tokens` (ids below `vocab`), and where each position's
    /// is among them, into `distinct` and `of`, if they are few enough ([`DISTINCT_SHARE`]);
    /// leaves both empty otherwise.
    fn find_distinct(&mut self, tokens: &[u32], vocab: usize) -> bool {
        self.distinct.clear();
        self.of.clear();
        #[cfg(test)]
        if self.each_position {
            return false;
        }
        if self.slot.len() < vocab {
            self.slot.resize(vocab, 0);
        }
        let most = (tokens.len() as f32 * DISTINCT_SHARE) as usize;
        for &w in tokens {
            let slot = &mut self.slot[w as usize];
            if *slot == 0 {
                if self.distinct.len() == most {
                    break;
                }
                self.distinct.push(w);
                *slot = self.distinct.len() as u32;
            }
            self.of.push(*slot - 1);
        }
        for &w in &self.distinct {
            self.slot[w as usize] = 0;
        }
        if self.of.len() < tokens.len() || tokens.is_empty() {
            self.distinct.clear();
            self.of.clear();
            return false;
        }
        true
    }
}

impl super::Network {
    /// Sets rows of the embedding (`embedding.weight`): `(token, vector)`, every vector as wide
    /// as the embedding (pretrained word vectors, see [`crate::data::vectors`]).
    ///
    /// # Errors
    /// [`Error::Config`] when the network reads one-hot words, or a vector has another width
    /// than the embedding; nothing is set then.
    pub fn set_embedding_rows(&mut self, rows: &[(u32, Vec<f32>)]) -> Result<()> {
        let Some(width) = self.arch.embed else {
            return Err(Error::Config(
                "this network reads one-hot words: it has no embedding to set".into(),
            ));
        };
        if let Some((_, v)) = rows.iter().find(|(_, v)| v.len() != width) {
            return Err(Error::Config(format!(
                "a vector of {} numbers for an embedding of {width}",
                v.len()
            )));
        }
        let table = self
            .layout
            .get("embedding.weight")
            .expect("a network with an embedding has its table")
            .range();
        let vocab = table.len() / width;
        let params = &mut self.params[table];
        for (id, vector) in rows.iter().filter(|(id, _)| (*id as usize) < vocab) {
            params[*id as usize * width..][..width].copy_from_slice(vector);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Architecture, CellKind, Gradients, Init, Network, Workspace};
    use super::*;

    #[test]
    fn few_distinct_tokens_get_a_row_each_and_many_a_row_a_position() {
        let mut work = EmbeddedWork::default();
        assert!(work.find_distinct(&[4, 1, 4, 4, 1, 2], 5));
        assert_eq!(
            (work.distinct.as_slice(), work.of.as_slice()),
            (&[4, 1, 2][..], &[0, 1, 0, 0, 1, 2][..])
        );
        assert!(
            work.slot.iter().all(|&s| s == 0),
            "the slots are zero again"
        );
        // four distinct tokens in six positions: more than half
        assert!(!work.find_distinct(&[4, 1, 3, 4, 0, 2], 5));
        assert!(work.distinct.is_empty() && work.of.is_empty());
        assert!(work.slot.iter().all(|&s| s == 0));
        assert!(
            !work.find_distinct(&[], 5),
            "an empty batch has nothing to share"
        );
    }

    /// A row a distinct token or a row a position: the same probabilities, and the same
    /// gradient up to the order of its sums.
    #[test]
    fn both_ways_give_the_same_probabilities_and_gradient() {
        for cell in CellKind::ALL {
            for bidirectional in [false, true] {
                let arch = Architecture {
                    embed: Some(8),
                    bidirectional,
                    layers: 2,
                    ..Architecture::new(cell, 7, 6, 3)
                };
                let net = Network::new(&arch, Init::LikeRnn, &mut Rng::new(3)).unwrap();
                let seqs: [&[u32]; 3] = [&[1, 2, 1, 1, 3], &[2, 2, 4], &[1, 5, 1, 1, 2, 2, 6]];
                let batch = Batch::new(&seqs, &[0, 2, 1]);
                let run = |each_position: bool| {
                    let mut ws = Workspace::default();
                    ws.embedded.each_position = each_position;
                    let mut grads = Gradients::new(&net);
                    net.forward(&batch, &mut ws, None);
                    assert_eq!(ws.embedded.of.is_empty(), each_position);
                    let probs = ws.probs.clone();
                    net.backward(&batch, &mut ws, &mut grads);
                    (probs, grads.to_dense())
                };
                let ((p1, g1), (p2, g2)) = (run(false), run(true));
                for (a, b) in p1.iter().zip(&p2).chain(g1.iter().zip(&g2)) {
                    assert!(
                        (a - b).abs() <= 1e-6 * (1.0 + a.abs()),
                        "{a} against {b} ({cell})"
                    );
                }
                assert!(g1.iter().any(|&g| g != 0.0));
            }
        }
    }
}
