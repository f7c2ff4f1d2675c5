//! Looking inside: predictions for many texts, and what flows through one text as the network
//! reads it (the tables and pictures of `rnn explain`).
//!
//! **The prediction after each token** is the prediction for the text up to and including
//! that token, as if it stopped there. A network that reads forwards only computes it in one
//! pass: its top layer's output at step `t` depends on the first `t` tokens alone, so pooling
//! those outputs step by step gives every prefix's features (see the head's `running`). A
//! bidirectional network's backward direction reads each prefix from its own end, so every
//! prefix is run again (in batches); that costs about `T²/2` steps for a text of `T` tokens.

use super::{Batch, Gradients, Network, Workspace, loss};

/// What flows through one sequence (see [`Network::flow`]); each list has one entry a token.
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    /// The top layer's output at each token, `D·H` floats: the forward direction's state after
    /// reading up to the token, then (bidirectional) the backward direction's state after
    /// reading back to it.
    pub states: Vec<Vec<f32>>,
    /// The class probabilities if the sequence stopped after each token.
    pub probs: Vec<Vec<f32>>,
    /// `‖∂L/∂y_t‖`: the size of the loss's gradient with respect to the top layer's output at
    /// each token (both directions' parts, each through everything that reads it).
    pub gradient_norms: Vec<f32>,
    /// `D`: 2 when each state holds a forward and a backward half.
    pub directions: usize,
}

/// Tokens a batch of prefixes may hold, so that a long text's prefixes run in pieces.
const PREFIX_TOKENS: usize = 1 << 16;

impl Network {
    /// The class probabilities of every sequence, in the order given.
    pub fn predict(&self, sequences: &[&[u32]], ws: &mut Workspace) -> Vec<Vec<f32>> {
        let batch = Batch::new(sequences, &[]);
        self.forward_only(&batch, ws);
        let mut out = vec![Vec::new(); sequences.len()];
        for (r, &i) in batch.order().iter().enumerate() {
            out[i] = ws.probabilities(r, self.classes()).to_vec();
        }
        out
    }

    /// Whether the output at every step depends on the tokens up to it alone (no backward
    /// direction), so that one pass gives the prediction after every token.
    pub fn reads_forwards_only(&self) -> bool {
        !self.arch.bidirectional
    }

    /// The class probabilities after each token of `tokens`, as if the sequence stopped there
    /// (see the module's documentation). The last entry is the prediction for the whole.
    pub fn trace(&self, tokens: &[u32], ws: &mut Workspace) -> Vec<Vec<f32>> {
        if self.reads_forwards_only() {
            let batch = Batch::new(&[tokens], &[]);
            self.forward(&batch, ws, None);
            let outputs = self.top_outputs(tokens.len(), ws);
            return self.head.running(&self.params, &outputs);
        }
        let mut probs = Vec::with_capacity(tokens.len());
        let per_batch = (PREFIX_TOKENS / tokens.len().max(1)).max(1);
        let ends: Vec<usize> = (1..=tokens.len()).collect();
        for chunk in ends.chunks(per_batch) {
            let prefixes: Vec<&[u32]> = chunk.iter().map(|&end| &tokens[..end]).collect();
            probs.extend(self.predict(&prefixes, ws));
        }
        probs
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
    /// token, the class probabilities after each token (as in [`Network::trace`]), and the
    /// size of the gradient of the loss against `target` that reaches each output, `‖∂L/∂y_t‖`.
    /// Nothing is dropped.
    pub fn flow(&self, tokens: &[u32], target: u32, ws: &mut Workspace) -> Flow {
        let probs = self.trace(tokens, ws);
        let steps = tokens.len();
        let batch = Batch::new(&[tokens], &[target]);
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
            gradient_norms: squares.iter().map(|s| s.sqrt()).collect(),
            directions: self.arch.directions(),
        }
    }
}
