//! How a network's parameters are drawn at first. Every module draws its own tensors
//! ([`super::Network::new`] calls them in order: the embedding, the recurrent stack layer by
//! layer and direction by direction, the head), so the random stream is used in PyTorch's
//! order of registration, and a module's scale is its own business.

use super::params::Layout;
use crate::rng::Rng;

/// How the weights are drawn at first: PyTorch's way, with a choice of scale for the one-hot
/// input weights (`Wxh`, the first layer's `weight_ih` without an embedding), or the seed's
/// numpy original's way.
///
/// A one-hot input makes `Wxh` a table of token vectors, an embedding. How large those vectors
/// start matters: small ones let a network read the order of a few words from a tiny dataset
/// (the demo); vectors as large as a learnt embedding's let it pick out words in long texts
/// (60 points of accuracy on the spam benchmark, see the README).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Uniform in `[-1/√H, 1/√H]`, as PyTorch initialises `nn.RNN(V, H)`: variance `1/(3H)`.
    LikeRnn,
    /// Uniform in `[-a, a]`: variance `a²/3`. `a = 1` gives the variance (1/3) of PyTorch's
    /// usual `nn.Embedding(V, H)` (N(0, 1)) followed by `nn.RNN(H, H)`'s input weights
    /// (U(±1/√H)).
    Uniform(f32),
    /// The numpy original of the seed: every weight, the embedding's too, N(0, 1)/1000, and
    /// every bias 0. Tiny weights start every unit in `tanh`'s linear part.
    Numpy,
}

/// Fills `params` uniformly in `[-a, a]`.
pub(super) fn uniform(params: &mut [f32], a: f64, rng: &mut Rng) {
    for w in params {
        *w = rng.symmetric(a) as f32;
    }
}

/// The numpy original's initialisation: every matrix of `layout` (a weight; the vectors are
/// biases), in the buffer's order, N(0, 1)/1000; the biases stay as they are (0), and so does
/// the wide path's table (see [`super::Ngrams`]), which is not the seed's.
pub(super) fn numpy(layout: &Layout, params: &mut [f32], rng: &mut Rng) {
    // the wide path's and the subwords' tables start at zero in every initialisation
    let zero = [super::wide::WEIGHT, super::subwords::WEIGHT];
    let drawn = |t: &&super::Tensor| t.shape.len() == 2 && !zero.contains(&t.name.as_str());
    for t in layout.tensors().iter().filter(drawn) {
        for w in &mut params[t.range()] {
            *w = (rng.normal() / 1000.0) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rnn::{Architecture, CellKind, Network};

    #[test]
    fn the_numpy_initialisation_is_tiny_weights_and_zero_biases() {
        let arch = Architecture {
            embed: Some(3),
            layers: 2,
            bidirectional: true,
            ..Architecture::new(CellKind::Gru, 7, 4, 3)
        };
        let net = Network::new(&arch, Init::Numpy, &mut Rng::new(1)).unwrap();
        for t in net.layout().tensors() {
            let w = &net.params()[t.range()];
            if t.name.contains("bias") {
                assert!(w.iter().all(|&x| x == 0.0), "{}", t.name);
            } else {
                let rms = (w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32).sqrt();
                assert!(rms > 0.0002 && rms < 0.003, "{}: rms {rms}", t.name);
            }
        }
    }

    /// Draws `name`'s floats again from `rng` and checks them: uniform in `[-a, a]`, or
    /// N(0, 1) for `a = None`.
    fn redraw(net: &Network, name: &str, a: Option<f64>, rng: &mut Rng) {
        let t = net.layout().get(name).unwrap();
        for &w in &net.params()[t.range()] {
            let want = match a {
                Some(a) => rng.symmetric(a) as f32,
                None => rng.normal() as f32,
            };
            assert_eq!(w, want, "{name}");
        }
    }

    #[test]
    fn every_module_draws_its_tensors_in_pytorchs_order() {
        // one-hot input: the input weights (at the input scale, 2) with their direction,
        // although the buffer holds both directions' first; then W_hh, b_ih, b_hh (1/√H = 1)
        let arch = Architecture {
            bidirectional: true,
            ..Architecture::new(CellKind::Gru, 2, 1, 2)
        };
        let net = Network::new(&arch, Init::Uniform(2.0), &mut Rng::new(9)).unwrap();
        let rng = &mut Rng::new(9);
        for suffix in ["l0", "l0_reverse"] {
            redraw(&net, &format!("rnn.weight_ih_{suffix}"), Some(2.0), rng);
            for base in ["weight_hh", "bias_ih", "bias_hh"] {
                redraw(&net, &format!("rnn.{base}_{suffix}"), Some(1.0), rng);
            }
        }
        let fc = Some(2f64.sqrt().recip()); // 1/√(D·H)
        redraw(&net, "fc.weight", fc, rng);
        redraw(&net, "fc.bias", fc, rng);
        // an embedding N(0, 1) first, then two layers of Elman cells (no bias_hh), H = 4
        let arch = Architecture {
            embed: Some(2),
            layers: 2,
            ..Architecture::new(CellKind::Rnn, 3, 4, 2)
        };
        let net = Network::new(&arch, Init::Uniform(2.0), &mut Rng::new(9)).unwrap();
        let rng = &mut Rng::new(9);
        redraw(&net, "embedding.weight", None, rng);
        for l in 0..2 {
            for base in ["weight_ih", "weight_hh", "bias_ih"] {
                redraw(&net, &format!("rnn.{base}_l{l}"), Some(0.5), rng);
            }
        }
        redraw(&net, "fc.weight", Some(0.5), rng);
        redraw(&net, "fc.bias", Some(0.5), rng);
    }

    #[test]
    fn pytorchs_initialisation_draws_every_tensor_at_its_scale() {
        let arch = Architecture::new(CellKind::Lstm, 50, 16, 3);
        let net = Network::new(&arch, Init::Uniform(1.0), &mut Rng::new(2)).unwrap();
        let max = |name: &str| {
            let t = net.layout().get(name).unwrap();
            net.params()[t.range()]
                .iter()
                .fold(0.0f32, |m, x| m.max(x.abs()))
        };
        // one-hot input weights in [-1, 1]; the rest in [-1/4, 1/4] (H = 16, D·H = 16)
        assert!(max("rnn.weight_ih_l0") > 0.9);
        for name in [
            "rnn.weight_hh_l0",
            "rnn.bias_ih_l0",
            "rnn.bias_hh_l0",
            "fc.weight",
        ] {
            let m = max(name);
            assert!(m > 0.2 && m <= 0.25, "{name}: {m}");
        }
    }
}
