//! Model files: one `.safetensors` file that PyTorch reads as the state dict of
//!
//! ```python
//! rnn = torch.nn.RNN(V, H)          # rnn.weight_ih_l0 [H,V], rnn.weight_hh_l0 [H,H],
//!                                   # rnn.bias_ih_l0 [H], rnn.bias_hh_l0 [H]
//! fc = torch.nn.Linear(H, C)        # fc.weight [C,H], fc.bias [C]
//! ```
//!
//! All tensors are `f32`, row-major, with PyTorch's names and shapes. PyTorch's second bias
//! `rnn.bias_hh_l0` is written as zeros and, on loading, added to `rnn.bias_ih_l0` (see
//! [`crate::rnn::Cell::folded_tensors`]), so a model trained in PyTorch loads too.
//!
//! The safetensors metadata (a map of strings) holds what turns text into input and output
//! into labels: `vocab` (JSON array of tokens by index, `<unk>` included), `labels` (JSON
//! array), `tokens` (`word` or `char`), `cell` (`rnn`), `max_len` (when set) and
//! `format_version` ([`FORMAT_VERSION`]).
//!
//! Files are written atomically; loading checks every name, shape, dtype and metadata entry
//! and says exactly what is wrong.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

use rayon::prelude::*;
use safetensors::tensor::{Dtype, SafeTensors};

use crate::data::{Tokens, Vocab};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::model::Model;
use crate::rnn::{CellKind, Network, Tensor};

/// The version of the layout and metadata described above.
pub const FORMAT_VERSION: &str = "1";

/// The tensor whose second dimension is `H` in every cell.
const HIDDEN_FROM: &str = "rnn.weight_hh_l0";

/// Writes `model` to `path` (atomically: a temporary file in the same folder, then a rename).
///
/// The tensors are streamed to the file, so saving needs no second copy of the weights.
pub fn save(model: &Model, path: &Path) -> Result<()> {
    let Model {
        network,
        vocab,
        labels,
        tokens,
        max_len,
    } = model;
    save_parts(path, network, vocab, labels, *tokens, *max_len)
}

/// [`save`] for a model whose parts are not (yet) together in a [`Model`], such as a network
/// in training: no copy of the weights is made.
pub fn save_parts(
    path: &Path,
    net: &Network,
    vocab: &Vocab,
    labels: &[String],
    tokens: Tokens,
    max_len: Option<usize>,
) -> Result<()> {
    let mut tensors: Vec<(&str, Vec<usize>, Option<&Tensor>)> = Vec::new();
    for t in net.layout().tensors() {
        tensors.push((t.name, t.shape.clone(), Some(t)));
    }
    for (name, shape, _) in net.cell().folded_tensors() {
        tensors.push((name, shape, None)); // written as zeros
    }
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    let shapes: Vec<(&str, &[usize])> =
        tensors.iter().map(|(n, s, _)| (*n, s.as_slice())).collect();
    let header = header(&shapes, metadata(net, vocab, labels, tokens, max_len));
    write_atomic(path, |out| {
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(&header)?;
        for (_, shape, tensor) in &tensors {
            match tensor {
                Some(t) => write_tensor(out, t, net.params())?,
                None => out.write_all(&vec![0u8; 4 * shape.iter().product::<usize>()])?,
            }
        }
        Ok(())
    })
}

/// The safetensors header: JSON with every tensor's dtype, shape and byte offsets (in the
/// order given, back to back after the header) and `__metadata__`, padded with spaces to a
/// multiple of 8 bytes. The file is then the header's length (8 bytes, little-endian), the
/// header, and the tensors' bytes. JSON keys are sorted, so a model always gives the same bytes.
fn header(
    tensors: &[(&str, &[usize])],
    metadata: serde_json::Map<String, serde_json::Value>,
) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), metadata.into());
    let mut offset = 0;
    for (name, shape) in tensors {
        let bytes = 4 * shape.iter().product::<usize>();
        let info = serde_json::json!({
            "dtype": "F32",
            "shape": shape,
            "data_offsets": [offset, offset + bytes],
        });
        header.insert(name.to_string(), info);
        offset += bytes;
    }
    let mut json = serde_json::Value::Object(header).to_string().into_bytes();
    json.resize(json.len().next_multiple_of(8), b' ');
    json
}

/// Rows of a column-major tensor transposed at a time: a band of this many rows is a few
/// cache lines of every column, read in order, and small enough to buffer.
const BAND: usize = 16;

/// Writes tensor `t` of `params` as PyTorch lays it out: row-major little-endian `f32`.
/// A column-major tensor is transposed a band of rows at a time.
fn write_tensor(out: &mut impl Write, t: &Tensor, params: &[f32]) -> std::io::Result<()> {
    let data = &params[t.range()];
    if !t.column_major {
        let mut bytes = Vec::with_capacity(4 * data.len().min(1 << 16));
        for chunk in data.chunks(1 << 16) {
            bytes.clear();
            bytes.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
            out.write_all(&bytes)?;
        }
        return Ok(());
    }
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let mut band = vec![0.0f32; BAND * cols];
    let mut bytes = Vec::with_capacity(4 * band.len());
    for r0 in (0..rows).step_by(BAND) {
        let height = BAND.min(rows - r0);
        for (c, column) in data.chunks_exact(rows).enumerate() {
            for (i, &x) in column[r0..r0 + height].iter().enumerate() {
                band[i * cols + c] = x;
            }
        }
        bytes.clear();
        bytes.extend(band[..height * cols].iter().flat_map(|x| x.to_le_bytes()));
        out.write_all(&bytes)?;
    }
    Ok(())
}

fn metadata(
    net: &Network,
    vocab: &Vocab,
    labels: &[String],
    tokens: Tokens,
    max_len: Option<usize>,
) -> serde_json::Map<String, serde_json::Value> {
    let json = |v: &[String]| serde_json::to_string(v).expect("strings serialise");
    let mut meta = serde_json::Map::new();
    let mut put = |key: &str, value: String| {
        meta.insert(key.to_string(), value.into());
    };
    put("format_version", FORMAT_VERSION.to_string());
    put("cell", net.cell().kind().name().to_string());
    put("tokens", tokens.name().to_string());
    put("vocab", json(vocab.tokens()));
    put("labels", json(labels));
    if let Some(n) = max_len {
        put("max_len", n.to_string());
    }
    meta
}

fn model_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Model {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads a model written by [`save`] (or by PyTorch with the same names and metadata).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Model`] naming the first problem: not a
/// safetensors file, missing or malformed metadata, a missing, unexpected, mis-shaped or
/// non-`f32` tensor.
pub fn load(path: &Path) -> Result<Model> {
    let mapped = map(path)?;
    let bytes: &[u8] = &mapped;
    let err = |message: String| model_error(path, message);
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| err(format!("not a valid safetensors file ({e})")))?;
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| err(format!("not a valid safetensors file ({e})")))?;
    let empty = HashMap::new();
    let meta = header.metadata().as_ref().unwrap_or(&empty);
    let get = |key: &str| {
        meta.get(key).ok_or_else(|| {
            err(format!(
                "no {key:?} in the metadata: not a model written by `rnn train`"
            ))
        })
    };
    let version = get("format_version")?;
    if version != FORMAT_VERSION {
        return Err(err(format!(
            "format_version {version:?} is not supported (this build reads {FORMAT_VERSION:?})"
        )));
    }
    let cell: CellKind = get("cell")?
        .parse()
        .map_err(|e| err(format!("metadata: {e}")))?;
    let tokens: Tokens = get("tokens")?
        .parse()
        .map_err(|e| err(format!("metadata: {e}")))?;
    let list = |key: &str| -> Result<Vec<String>> {
        serde_json::from_str(get(key)?).map_err(|e| {
            err(format!(
                "metadata {key:?} is not a JSON array of strings ({e})"
            ))
        })
    };
    let vocab =
        Vocab::from_tokens(list("vocab")?).map_err(|e| err(format!("metadata vocab: {e}")))?;
    let labels = list("labels")?;
    if labels.is_empty() || vocab.is_empty() {
        return Err(err("the vocabulary and the labels must not be empty".into()));
    }
    if let Some(dup) = first_duplicate(&labels) {
        return Err(err(format!(
            "metadata labels: the label {dup:?} appears twice"
        )));
    }
    let max_len = match meta.get("max_len") {
        None => None,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return Err(err(format!(
                    "metadata max_len {s:?} is not a positive number"
                )));
            }
        },
    };

    let hidden_tensor = file
        .tensor(HIDDEN_FROM)
        .map_err(|_| err(format!("no tensor {HIDDEN_FROM}")))?;
    let hidden = match hidden_tensor.shape() {
        [_, h] if *h > 0 => *h,
        shape => return Err(err(format!("tensor {HIDDEN_FROM} has shape {shape:?}"))),
    };
    let mut network = Network::zeros(cell, vocab.len(), hidden, labels.len())?;
    let sizes = format!(
        "H = {hidden} from {HIDDEN_FROM}, V = {} tokens in the vocabulary, C = {} labels",
        vocab.len(),
        labels.len()
    );
    let mut expected: BTreeSet<&str> = BTreeSet::new();
    let layout = network.layout().clone();
    for t in layout.tensors() {
        expected.insert(t.name);
        let data = tensor_data(&file, t.name, &t.shape, &sizes).map_err(err)?;
        let params = &mut network.params_mut()[t.range()];
        if t.column_major {
            transpose_into(params, &data, t.shape[0], t.shape[1]);
        } else {
            for (p, x) in params.iter_mut().zip(data.iter()) {
                *p = x;
            }
        }
    }
    for (name, shape, into) in network.cell().folded_tensors() {
        expected.insert(name);
        if file.names().contains(&name) {
            let data = tensor_data(&file, name, &shape, &sizes).map_err(err)?;
            let target = layout
                .get(into)
                .expect("folded into a tensor of the cell")
                .range();
            for (p, x) in network.params_mut()[target].iter_mut().zip(data.iter()) {
                *p += x;
            }
        }
    }
    let mut unexpected: Vec<&str> = file
        .names()
        .into_iter()
        .filter(|n| !expected.contains(n))
        .collect();
    unexpected.sort_unstable();
    if let Some(name) = unexpected.first() {
        return Err(err(format!(
            "unexpected tensor {name} (a {cell} model has: {})",
            expected.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(Model {
        network,
        vocab,
        labels,
        tokens,
        max_len,
    })
}

/// The data of tensor `name`, checked to be `f32` of `shape`.
fn tensor_data<'a>(
    file: &SafeTensors<'a>,
    name: &str,
    shape: &[usize],
    sizes: &str,
) -> std::result::Result<F32s<'a>, String> {
    let view = file.tensor(name).map_err(|_| format!("no tensor {name}"))?;
    if view.dtype() != Dtype::F32 {
        return Err(format!(
            "tensor {name} is {:?}; only F32 is supported",
            view.dtype()
        ));
    }
    if view.shape() != shape {
        return Err(format!(
            "tensor {name} has shape {:?}, expected {shape:?} ({sizes})",
            view.shape()
        ));
    }
    Ok(F32s(view.data()))
}

/// The file's bytes, mapped into memory rather than read: a model of a large vocabulary is tens
/// of megabytes, which a read would copy once more into freshly zeroed pages. Model files are
/// replaced by renaming a new file over them ([`write_atomic`]), never rewritten in place, so
/// the mapped file does not change while it is read.
fn map(path: &Path) -> Result<memmap2::Mmap> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let metadata = file.metadata().map_err(|e| Error::io(path, e))?;
    if !metadata.is_file() {
        return Err(model_error(path, "not a file"));
    }
    // SAFETY: the mapping is read-only and the file is not modified in place (see above).
    unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))
}

/// Columns of a column-major tensor that one task transposes (see [`transpose_into`]).
const TASK_COLUMNS: usize = 2048;

/// Fills the column-major `params` (`rows×cols`) from `data`, the same tensor row-major.
///
/// Columns are split into tasks that run in parallel. Within a task, a band of [`BAND`] rows is
/// decoded into a buffer in one pass over the file's rows, then written column by column, so
/// that every column gets a whole cache line at once.
fn transpose_into(params: &mut [f32], data: &F32s<'_>, rows: usize, cols: usize) {
    params
        .par_chunks_mut(rows * TASK_COLUMNS)
        .enumerate()
        .for_each(|(task, block)| {
            let (c0, width) = (task * TASK_COLUMNS, block.len() / rows);
            let mut band = vec![0.0f32; BAND * width];
            for r0 in (0..rows).step_by(BAND) {
                let height = BAND.min(rows - r0);
                for (i, row) in band.chunks_exact_mut(width).take(height).enumerate() {
                    let bytes = &data.0[4 * ((r0 + i) * cols + c0)..][..4 * width];
                    for (x, b) in row.iter_mut().zip(bytes.chunks_exact(4)) {
                        *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    }
                }
                for (c, column) in block.chunks_exact_mut(rows).enumerate() {
                    for (i, x) in column[r0..r0 + height].iter_mut().enumerate() {
                        *x = band[i * width + c];
                    }
                }
            }
        });
}

/// Little-endian `f32`s in a byte slice, read in place.
struct F32s<'a>(&'a [u8]);

impl F32s<'_> {
    fn iter(&self) -> impl Iterator<Item = f32> + '_ {
        self.0
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

fn first_duplicate(items: &[String]) -> Option<&str> {
    let mut seen = BTreeSet::new();
    items
        .iter()
        .find(|s| !seen.insert(s.as_str()))
        .map(String::as_str)
}
