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

use super::batch::Batch;
use super::grads::Table;
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

    /// The embedding of every token of `batch`, packed (N × E): row `w` of the table for token
    /// `w`, and with subwords the mean of its n-grams' rows added.
    pub fn forward(&self, params: &[f32], batch: &Batch, out: &mut AlignedVec) {
        let (at, e) = (self.table.offset, self.table.width);
        let tokens = batch.tokens();
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

    /// **Adds** `dx` (N × E, the gradient on every token's embedding) to the rows of the
    /// batch's tokens (and their n-grams'): token `i`'s row of the gradient is the first `E`
    /// floats of entry `local.0[i]` of `entries` (`entry` floats an entry), and the batch's
    /// `k`-th n-gram's is entry `local.1[k]`.
    pub fn backward(
        &self,
        batch: &Batch,
        dx: &[f32],
        local: (&[u32], &[u32]),
        entries: &mut [f32],
        entry: usize,
    ) {
        let e = self.table.width;
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
