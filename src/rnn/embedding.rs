//! The learnt embedding in front of the first layer, PyTorch's `nn.Embedding(V, E)`.
//!
//! ```text
//! x_t = E[w_t]          (row w_t of E: V×E, `embedding.weight`)
//! ```
//!
//! Backward: `dE[w_t] += dx_t`. Only the batch's tokens' rows get a gradient, so it goes to
//! their entries of the sparse gradient (see [`super::Gradients`]), not to a V×E matrix.

use super::grads::Table;
use super::params::Layout;
use super::unroll::fit;
use crate::error::{Error, Result};
use crate::kernels::{AlignedVec, add_into};
use crate::rng::Rng;

/// `embedding.weight`, a token table at `at`: `width` floats a token.
#[derive(Clone, Copy, Debug)]
pub(super) struct Embedding {
    table: Table,
    vocab: usize,
}

impl Embedding {
    /// Adds `embedding.weight` (V×E) to `layout`, and to the token tables.
    pub fn new(layout: &mut Layout, tables: &mut Vec<Table>, vocab: usize, width: usize) -> Self {
        let offset = layout.push("embedding.weight", &[vocab, width], false);
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

    /// The embedding of every token, packed (N × E): row `w` of the table for token `w`.
    pub fn forward(&self, params: &[f32], tokens: &[u32], out: &mut AlignedVec) {
        let (at, e) = (self.table.offset, self.table.width);
        fit(out, tokens.len() * e);
        for (row, &w) in out.chunks_exact_mut(e).zip(tokens) {
            row.copy_from_slice(&params[at + w as usize * e..][..e]);
        }
    }

    /// **Adds** `dx` (N × E, the gradient on every token's embedding) to the rows of the
    /// batch's tokens: token `i`'s row of the gradient is the first `E` floats of entry
    /// `local[i]` of `entries` (`entry` floats an entry).
    pub fn backward(&self, dx: &[f32], local: &[u32], entries: &mut [f32], entry: usize) {
        let e = self.table.width;
        // forward: x_t = E[w_t]  =>  row w_t of dE += dx_t, in the token's gradient entry
        for (dx, &local) in dx.chunks_exact(e).zip(local) {
            add_into(&mut entries[local as usize * entry..][..e], dx);
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
