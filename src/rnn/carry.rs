//! What a network carries from one window of a text to the next (a language model reads a
//! long text in windows of `--bptt` tokens).

/// The state a network carries from one window of a text to the next: every layer's state
/// after the window's last step (`S` floats a row, rows × S a layer), the initial state of the
/// next window. Empty, it is the zero state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Carry {
    pub(super) layers: Vec<Vec<f32>>,
    pub(super) rows: usize,
}

impl Carry {
    /// Back to the zero state (the start of a text).
    pub fn clear(&mut self) {
        self.layers.clear();
        self.rows = 0;
    }

    /// Whether this is the zero state.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Layer `l`'s states (rows × S), if any were carried.
    pub fn layer(&self, l: usize) -> Option<&[f32]> {
        self.layers.get(l).map(Vec::as_slice)
    }
}
