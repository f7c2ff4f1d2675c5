//! All parameters of a network live in one flat `Vec<f32>`; a [`Layout`] names the tensors in
//! it. Gradients and optimiser state use the same layout, so clipping and an optimiser step are
//! single loops over a slice, and a model file is the layout written out tensor by tensor.

/// One parameter tensor: its PyTorch name and shape, and where it sits in the flat buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tensor {
    /// PyTorch's name, e.g. `rnn.weight_hh_l0`.
    pub name: String,
    /// PyTorch's shape: `[rows, columns]` for a matrix, `[len]` for a vector.
    pub shape: Vec<usize>,
    /// Index of the first element in the flat buffer.
    pub offset: usize,
    /// `false`: stored row by row, as PyTorch stores it. `true`: stored column by column; used
    /// for the first layer's input weights under one-hot input, whose columns are what a
    /// token selects.
    pub column_major: bool,
}

impl Tensor {
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index range of this tensor in the flat buffer.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len()
    }
}

/// The tensors of a network, back to back in one buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    tensors: Vec<Tensor>,
    len: usize,
}

impl Layout {
    /// Appends a tensor after the last one and returns its offset.
    pub fn push(&mut self, name: impl Into<String>, shape: &[usize], column_major: bool) -> usize {
        let offset = self.len;
        let tensor = Tensor {
            name: name.into(),
            shape: shape.to_vec(),
            offset,
            column_major,
        };
        self.len += tensor.len();
        self.tensors.push(tensor);
        offset
    }

    /// Appends every tensor of `other`, shifted to start after the last one of `self`.
    pub fn extend(&mut self, other: &Layout) {
        for t in &other.tensors {
            self.push(t.name.clone(), &t.shape, t.column_major);
        }
    }

    /// The tensors in buffer order.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// The tensor called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The total number of parameters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the layout holds no parameters.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_are_placed_back_to_back() {
        let mut a = Layout::default();
        assert_eq!(a.push("w", &[2, 3], false), 0);
        assert_eq!(a.push("b", &[2], false), 6);
        let mut b = Layout::default();
        b.push("x", &[4], true);
        b.extend(&a);
        assert_eq!(b.len(), 12);
        assert_eq!(b.get("b").unwrap().range(), 10..12);
        assert!(b.get("x").unwrap().column_major);
        assert!(b.get("nope").is_none());
    }
}
