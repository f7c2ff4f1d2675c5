//! Model files: one `.safetensors` file that PyTorch reads as the state dict of
//!
//! ```python
//! embedding = torch.nn.Embedding(V, E)   # embedding.weight [V,E]; only with an embedding
//! rnn = torch.nn.RNN(E or V, H, num_layers=L, bidirectional=B)   # or nn.GRU, nn.LSTM:
//!     # rnn.weight_ih_l{k}[_reverse] [G·H, in], rnn.weight_hh_l{k}[_reverse] [G·H, H],
//!     # rnn.bias_ih_l{k}[_reverse] [G·H], rnn.bias_hh_l{k}[_reverse] [G·H]
//! fc = torch.nn.Linear(D·H, C)           # fc.weight [C, D·H], fc.bias [C]
//! ```
//!
//! All tensors are `f32`, row-major, with PyTorch's names and shapes. The plain cell's second
//! bias `rnn.bias_hh_l{k}` is written as zeros and, on loading, added to `rnn.bias_ih_l{k}`
//! (see [`crate::rnn::Cell::folded_tensors`]), so a model trained in PyTorch loads too.
//!
//! The safetensors metadata (a map of strings) holds what turns text into input and output
//! into labels, and what the network is: `vocab` (JSON array of tokens by index, `<unk>`
//! included), `labels` (JSON array), `tokens` (`word` or `char`), `max_len` (when set), `text_col` and `label_col` (the training file's columns, when not `text` and `label`), `cell`
//! (`rnn`, `gru` or `lstm`), `layers`, `bidirectional` (`true` or `false`), `embed` (E, when
//! there is an embedding), `pool` (`last`, `mean` or `max`), `dropout` (the training
//! setting; nothing is dropped outside training), and `format_version` ([`FORMAT_VERSION`]).
//! A language model (`head` is `step`: a prediction at every step; see [`Head`]) has no
//! `labels`: its classes are the vocabulary, and `fc` is `nn.Linear(H, V)`.
//! Files of format 1 (one layer, one direction, one-hot input, the last state, no
//! architecture keys) load as that network.
//!
//! Files are written atomically; loading checks every name, shape, dtype, value and metadata
//! entry, and every size against the data the file holds before anything is allocated, and
//! says exactly what is wrong.
//!
//! Reading gives a [`Model`] of either kind, which [`Model::from_parts`] tells apart from the
//! network's head and the file's labels; writing takes a model's parts borrowed
//! ([`ContentsRef`]), so that a run can write the network it trains, or another set of its
//! weights.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

use safetensors::tensor::Dtype;

use crate::data::files::Columns;
use crate::data::{Tokens, Vocab};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::model::{Model, Task};
use crate::rnn::{
    Architecture, CellKind, Head, MAX_NGRAMS, Network, Ngrams, Pool, Subwords, Tensor,
    parse_subwords,
};
use crate::tensor_file::{TensorFile, TensorInfo, read_consistently};

/// The version of the layout and metadata described above.
pub const FORMAT_VERSION: &str = "2";

/// The versions this build reads.
const READS: [&str; 2] = ["1", "2"];

/// The tensor whose second dimension is `H` in every network.
const HIDDEN_FROM: &str = "rnn.weight_hh_l0";

/// A model borrowed, to be written: a model's network, or a network in training, with the rest
/// of its model. `params` are the weights written, laid out as the network's (its own, or
/// another set of the same shape, such as a run's best epoch's).
#[derive(Clone, Copy, Debug)]
pub struct ContentsRef<'a> {
    pub network: &'a Network,
    pub params: &'a [f32],
    pub rest: Rest<'a>,
}

/// What a model file holds beside the network: a [`Model`]'s text codec and task, borrowed
/// apart from its network (which may be in training).
#[derive(Clone, Copy, Debug)]
pub struct Rest<'a> {
    pub vocab: &'a Vocab,
    pub tokens: Tokens,
    pub max_len: Option<usize>,
    pub task: &'a Task,
}

impl<'a> Rest<'a> {
    /// The model file's contents with `network` and its `params`.
    pub fn around(self, network: &'a Network, params: &'a [f32]) -> ContentsRef<'a> {
        ContentsRef {
            network,
            params,
            rest: self,
        }
    }
}

/// The start of the names of data kept beside a model in the same file (a checkpoint's
/// training state), tensors and metadata alike; a model's own names never start so.
pub const EXTRA_PREFIX: &str = "train.";

/// Data to keep beside a model's tensors in its file (see [`EXTRA_PREFIX`]): vectors of `f32`
/// or `u32` and metadata entries, by name.
#[derive(Clone, Debug, Default)]
pub struct ExtrasRef<'a> {
    pub f32s: Vec<(String, &'a [f32])>,
    pub u32s: Vec<(String, &'a [u32])>,
    pub meta: Vec<(String, String)>,
}

/// [`ExtrasRef`], read back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extras {
    pub f32s: HashMap<String, Vec<f32>>,
    pub u32s: HashMap<String, Vec<u32>>,
    pub meta: HashMap<String, String>,
}

/// Writes `contents` to `path` (atomically: a temporary file in the same folder, then a
/// rename).
///
/// The tensors are streamed to the file, so saving needs no second copy of the weights.
pub fn save(contents: ContentsRef<'_>, path: &Path) -> Result<()> {
    save_with(contents, &ExtrasRef::default(), path)
}

/// A tensor to write: a model's (from the parameters), zeros (a folded tensor), or an extra.
enum Source<'a> {
    Model(&'a Tensor),
    Zeros,
    F32(&'a [f32]),
    U32(&'a [u32]),
}

/// [`save`], with `extras` kept beside the model (names must start with [`EXTRA_PREFIX`]).
pub fn save_with(contents: ContentsRef<'_>, extras: &ExtrasRef<'_>, path: &Path) -> Result<()> {
    let net = contents.network;
    assert_eq!(
        contents.params.len(),
        net.params().len(),
        "the network's weights"
    );
    let mut tensors: Vec<(String, Vec<usize>, Source)> = Vec::new();
    for t in net.layout().tensors() {
        tensors.push((t.name.clone(), t.shape.clone(), Source::Model(t)));
    }
    for (name, shape, _) in net.folded_tensors() {
        tensors.push((name, shape, Source::Zeros));
    }
    for (name, data) in &extras.f32s {
        tensors.push((name.clone(), vec![data.len()], Source::F32(data)));
    }
    for (name, data) in &extras.u32s {
        tensors.push((name.clone(), vec![data.len()], Source::U32(data)));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let shapes: Vec<(&str, &[usize], &str)> = tensors
        .iter()
        .map(|(n, s, source)| {
            let dtype = if matches!(source, Source::U32(_)) {
                "U32"
            } else {
                "F32"
            };
            (n.as_str(), s.as_slice(), dtype)
        })
        .collect();
    let mut meta = metadata(&contents);
    for (key, value) in &extras.meta {
        assert!(key.starts_with(EXTRA_PREFIX), "an extra's name");
        meta.insert(key.clone(), value.clone().into());
    }
    let header = header(&shapes, meta);
    write_atomic(path, |out| {
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(&header)?;
        for (_, shape, source) in &tensors {
            match source {
                Source::Model(t) => write_tensor(out, t, contents.params)?,
                Source::Zeros => out.write_all(&vec![0u8; 4 * shape.iter().product::<usize>()])?,
                Source::F32(data) => write_le(out, data.iter().map(|x| x.to_le_bytes()))?,
                Source::U32(data) => write_le(out, data.iter().map(|x| x.to_le_bytes()))?,
            }
        }
        Ok(())
    })
}

/// Writes 4-byte values, in chunks.
fn write_le(out: &mut impl Write, values: impl Iterator<Item = [u8; 4]>) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(1 << 18);
    for v in values {
        bytes.extend_from_slice(&v);
        if bytes.len() >= 1 << 18 {
            out.write_all(&bytes)?;
            bytes.clear();
        }
    }
    out.write_all(&bytes)
}

/// The safetensors header: JSON with every tensor's dtype, shape and byte offsets (in the
/// order given, back to back after the header) and `__metadata__`, padded with spaces to a
/// multiple of 8 bytes. The file is then the header's length (8 bytes, little-endian), the
/// header, and the tensors' bytes. JSON keys are sorted, so a model always gives the same bytes.
fn header(
    tensors: &[(&str, &[usize], &str)],
    metadata: serde_json::Map<String, serde_json::Value>,
) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), metadata.into());
    let mut offset = 0;
    for (name, shape, dtype) in tensors {
        let bytes = 4 * shape.iter().product::<usize>();
        let info = serde_json::json!({
            "dtype": dtype,
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
    let mut band = vec![0.0f32; crate::tensor_file::BAND * cols];
    let mut bytes = Vec::with_capacity(4 * band.len());
    for r0 in (0..rows).step_by(crate::tensor_file::BAND) {
        let height = crate::tensor_file::BAND.min(rows - r0);
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

fn metadata(contents: &ContentsRef<'_>) -> serde_json::Map<String, serde_json::Value> {
    let json = |v: &[String]| serde_json::to_string(v).expect("strings serialise");
    let arch = contents.network.arch();
    let mut meta = serde_json::Map::new();
    let mut put = |key: &str, value: String| {
        meta.insert(key.to_string(), value.into());
    };
    put("format_version", FORMAT_VERSION.to_string());
    put("cell", arch.cell.name().to_string());
    put("layers", arch.layers.to_string());
    put("bidirectional", arch.bidirectional.to_string());
    if let Some(e) = arch.embed {
        put("embed", e.to_string());
    }
    put("pool", arch.pool.name().to_string());
    if arch.head != Head::Sequence {
        put("head", arch.head.name().to_string());
    }
    put("dropout", arch.dropout.to_string());
    if let Some(ngrams) = arch.ngrams {
        put("ngrams", ngrams.n.to_string());
        put("buckets", ngrams.buckets.to_string());
    }
    if let Some(subwords) = arch.subwords {
        put("subwords", format!("{}-{}", subwords.min, subwords.max));
        put("subword_buckets", subwords.buckets.to_string());
    }
    let rest = &contents.rest;
    put("tokens", rest.tokens.name().to_string());
    put("vocab", json(rest.vocab.tokens()));
    // a language model has no labels: its classes are its vocabulary
    if let Task::Classifier { labels, .. } = rest.task {
        put("labels", json(labels));
    }
    if let Some(n) = rest.max_len {
        put("max_len", n.to_string());
    }
    if let Task::Classifier { columns, .. } = rest.task
        && *columns != Columns::default()
    {
        put("text_col", columns.text.clone());
        put("label_col", columns.label.clone());
    }
    meta
}

/// Reads a model file written by [`save`] (or by PyTorch with the same names and metadata).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Model`] naming the first problem: not a
/// safetensors file, missing or malformed metadata, a missing, unexpected, mis-shaped or
/// non-`f32` tensor, a NaN or infinite weight, sizes larger than the data the file holds, or a
/// network of neither kind (see [`Model::from_parts`]).
pub fn load(path: &Path) -> Result<Model> {
    Ok(read(path, false)?.0)
}

/// [`load`], and the data kept beside the model (see [`save_with`]).
///
/// # Errors
/// As [`load`], and [`Error::Model`] for an extra tensor that is neither `f32` nor `u32`.
pub fn load_with(path: &Path) -> Result<(Model, Extras)> {
    read(path, true)
}

/// Reads a model file, and with `extras`, what is kept beside the model (otherwise it is
/// passed over: a checkpoint loads as the model it holds). A file that changes while it is
/// read is read again (see [`tensor_file`](crate::tensor_file)).
fn read(path: &Path, extras: bool) -> Result<(Model, Extras)> {
    read_consistently(path, READ_ATTEMPTS, |file| read_from(path, file, extras))
}

/// How many times a file that changes while it is read is read in all before that is an error.
const READ_ATTEMPTS: usize = 3;

/// [`read`] from the open file.
fn read_from(path: &Path, file: &TensorFile, extras: bool) -> Result<(Model, Extras)> {
    let meta = read_meta(path, file)?;
    let (network, expected) = read_network(path, file, &meta)?;
    let kept = read_extras(path, file, extras, expected, network.arch())?;
    let Meta {
        tokens,
        vocab,
        labels,
        max_len,
        columns,
        ..
    } = meta;
    let model = Model::from_parts(network, vocab, tokens, max_len, labels, columns)
        .map_err(|message| Error::model(path, message))?;
    Ok((model, kept))
}

/// What a model file's metadata says, but for the network's shape.
struct Meta<'f> {
    all: &'f HashMap<String, String>,
    version: String,
    tokens: Tokens,
    vocab: Vocab,
    head: Head,
    /// None in a language model's file, which has no labels: its classes are its vocabulary.
    labels: Option<Vec<String>>,
    max_len: Option<usize>,
    columns: Columns,
}

/// The metadata of a model file, checked (see [`load`]).
fn read_meta<'f>(path: &Path, file: &'f TensorFile) -> Result<Meta<'f>> {
    static EMPTY: std::sync::LazyLock<HashMap<String, String>> =
        std::sync::LazyLock::new(HashMap::new);
    let err = |message: String| Error::model(path, message);
    let meta = file.metadata().unwrap_or(&EMPTY);
    let get = |key: &str| {
        meta.get(key).ok_or_else(|| {
            err(format!(
                "no {key:?} in the metadata: not a model written by `rnn train`"
            ))
        })
    };
    let version = get("format_version")?;
    if !READS.contains(&version.as_str()) {
        return Err(err(format!(
            "format_version {version:?} is not supported (this build reads {})",
            READS.map(|v| format!("{v:?}")).join(" and ")
        )));
    }
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
    let head: Head = match meta.get("head") {
        Some(h) => h.parse().map_err(|e| err(format!("metadata: {e}")))?,
        None => Head::Sequence,
    };
    // a language model's classes are its vocabulary, and it has no labels
    let labels = if head == Head::Step && !meta.contains_key("labels") {
        None
    } else {
        Some(list("labels")?)
    };
    if labels.as_ref().is_some_and(Vec::is_empty) || vocab.is_empty() {
        return Err(err("the vocabulary and the labels must not be empty".into()));
    }
    if let Some(dup) = labels.as_deref().and_then(first_duplicate) {
        return Err(err(format!(
            "metadata labels: the label {dup:?} appears twice"
        )));
    }
    let max_len =
        optional_number::<usize>(meta, "max_len", |&n| n > 0, "a positive number").map_err(err)?;
    let defaults = Columns::default();
    let columns = Columns {
        text: meta.get("text_col").unwrap_or(&defaults.text).clone(),
        label: meta.get("label_col").unwrap_or(&defaults.label).clone(),
    };

    Ok(Meta {
        all: meta,
        version: version.clone(),
        tokens,
        vocab,
        head,
        labels,
        max_len,
        columns,
    })
}

/// The network a model file holds, its shape from `meta` and its tensors checked against the
/// file before anything is allocated; and the names of the tensors it read.
fn read_network(
    path: &Path,
    file: &TensorFile,
    meta: &Meta<'_>,
) -> Result<(Network, BTreeSet<String>)> {
    let err = |message: String| Error::model(path, message);
    let io = |e: std::io::Error| Error::io(path, e);
    let vocab = &meta.vocab;
    let hidden_tensor = file
        .tensor(HIDDEN_FROM)
        .ok_or_else(|| err(format!("no tensor {HIDDEN_FROM}")))?;
    let hidden = match hidden_tensor.shape.as_slice() {
        [_, h] if *h > 0 => *h,
        shape => return Err(err(format!("tensor {HIDDEN_FROM} has shape {shape:?}"))),
    };
    let classes = meta.labels.as_ref().map_or(vocab.len(), Vec::len);
    let mut arch =
        architecture(meta.all, meta.version == "1", vocab.len(), hidden, classes).map_err(err)?;
    arch.head = meta.head;
    // The number of layers is bounded by the tensors before anything is built for them: the
    // top layer's recurrent weights (and its reverse direction's) must be in the file.
    let top = format!("rnn.weight_hh_l{}", arch.layers - 1);
    for name in [
        Some(top.clone()),
        arch.bidirectional.then(|| format!("{top}_reverse")),
    ] {
        if let Some(name) = name
            && file.tensor(&name).is_none()
        {
            return Err(err(format!(
                "metadata layers is {} (bidirectional {}), but there is no tensor {name}",
                arch.layers, arch.bidirectional
            )));
        }
    }
    // Every size so far came from the file: the layout is checked against the tensors the
    // file holds (each of which holds its data) before the parameters are allocated.
    let mut network = Network::unallocated(&arch).map_err(|e| err(e.to_string()))?;
    let sizes = format!(
        "H = {hidden} from {HIDDEN_FROM}, V = {} tokens in the vocabulary, C = {classes} {}",
        vocab.len(),
        if meta.labels.is_none() {
            "tokens to predict"
        } else {
            "labels"
        }
    );
    let names = file.names();
    let layout = network.layout().clone();
    let mut data = Vec::with_capacity(layout.tensors().len());
    for t in layout.tensors() {
        data.push(tensor_info(file, &t.name, &t.shape, &sizes).map_err(err)?);
    }
    network.allocate();
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for (t, data) in layout.tensors().iter().zip(&data) {
        expected.insert(t.name.clone());
        let params = &mut network.params_mut()[t.range()];
        if t.column_major {
            file.transpose_into(params, data, t.shape[0], t.shape[1])
                .map_err(io)?;
        } else {
            file.read_f32s_into(params, data).map_err(io)?;
        }
        if let Some(x) = params.iter().find(|x| !is_weight(**x)) {
            return Err(err(format!(
                "tensor {} holds {x}; a model's weights must be finite numbers of at most \
                 {MAX_WEIGHT:e} in size",
                t.name
            )));
        }
    }
    for (name, shape, into) in network.folded_tensors() {
        if names.contains(&name) {
            let info = tensor_info(file, &name, &shape, &sizes).map_err(err)?;
            let mut data = vec![0.0; info.bytes / 4];
            file.read_f32s_into(&mut data, &info).map_err(io)?;
            if let Some(x) = data.iter().find(|x| !is_weight(**x)) {
                return Err(err(format!(
                    "tensor {name} holds {x}; a model's weights must be finite numbers of at \
                     most {MAX_WEIGHT:e} in size"
                )));
            }
            let target = layout.get(&into).expect("folded into a tensor").range();
            for (p, x) in network.params_mut()[target].iter_mut().zip(data) {
                *p += x;
            }
        }
        expected.insert(name);
    }
    Ok((network, expected))
}

/// The largest weight a model file may hold. Larger ones overflow `f32` on the way through
/// the network (and are then NaN answers, not errors): a product of two of them, an embedding
/// and an input weight, summed over a layer's inputs, stays below `f32::MAX` (3.4e38) for up
/// to 10^14 inputs at 1e12; every other layer reads outputs of at most 1 in size. Training
/// never comes near it: a diverging run stops long before.
pub const MAX_WEIGHT: f32 = 1e12;

/// Whether `x` may be a weight of a model file: finite, and at most [`MAX_WEIGHT`] in size.
fn is_weight(x: f32) -> bool {
    x.abs() <= MAX_WEIGHT
}

/// What a model file keeps beside the model (with `extras`; otherwise nothing), once every
/// tensor of the file is either `expected` (the network's) or an extra: another is an error
/// naming what an `arch` model has.
fn read_extras(
    path: &Path,
    file: &TensorFile,
    extras: bool,
    mut expected: BTreeSet<String>,
    arch: &Architecture,
) -> Result<Extras> {
    let err = |message: String| Error::model(path, message);
    let io = |e: std::io::Error| Error::io(path, e);
    let meta = file.metadata();
    let names = file.names();
    let mut kept = Extras::default();
    for name in &names {
        if name.starts_with(EXTRA_PREFIX) {
            expected.insert(name.to_string());
        }
    }
    if extras {
        for name in &names {
            if !name.starts_with(EXTRA_PREFIX) {
                continue;
            }
            let info = file.tensor(name).expect("a name of the file");
            let bytes = file.read(&info).map_err(io)?;
            let values = bytes.chunks_exact(4).map(|b| [b[0], b[1], b[2], b[3]]);
            match info.dtype {
                Dtype::F32 => {
                    kept.f32s
                        .insert(name.to_string(), values.map(f32::from_le_bytes).collect());
                }
                Dtype::U32 => {
                    kept.u32s
                        .insert(name.to_string(), values.map(u32::from_le_bytes).collect());
                }
                other => return Err(err(format!("tensor {name} is {other:?}, not F32 or U32"))),
            }
        }
        for (key, value) in meta.into_iter().flatten() {
            if key.starts_with(EXTRA_PREFIX) {
                kept.meta.insert(key.clone(), value.clone());
            }
        }
    }
    let mut unexpected: Vec<&String> = names.iter().filter(|n| !expected.contains(*n)).collect();
    unexpected.sort_unstable();
    if let Some(name) = unexpected.first() {
        return Err(err(format!(
            "unexpected tensor {name} (a {arch} model has: {})",
            expected.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(kept)
}

/// The architecture the metadata describes (format 1 files have one: the seed's), with the
/// sizes that come from elsewhere in the file.
fn architecture(
    meta: &HashMap<String, String>,
    format_1: bool,
    vocab: usize,
    hidden: usize,
    classes: usize,
) -> std::result::Result<Architecture, String> {
    let cell: CellKind = meta
        .get("cell")
        .ok_or("no \"cell\" in the metadata: not a model written by `rnn train`")?
        .parse()
        .map_err(|e| format!("metadata: {e}"))?;
    let mut arch = Architecture::new(cell, vocab, hidden, classes);
    if format_1 {
        return Ok(arch);
    }
    let required = |key: &str| {
        meta.get(key)
            .ok_or(format!("no {key:?} in the metadata of a format 2 model"))
    };
    arch.layers = required("layers")?
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or("metadata layers is not a positive number")?;
    arch.bidirectional = required("bidirectional")?
        .parse()
        .map_err(|_| "metadata bidirectional is neither \"true\" nor \"false\"")?;
    arch.pool = required("pool")?
        .parse::<Pool>()
        .map_err(|e| format!("metadata: {e}"))?;
    arch.embed = optional_number(meta, "embed", |&e| e > 0, "a positive number")?;
    arch.dropout =
        optional_number(meta, "dropout", |p| (0.0..1.0).contains(p), "in [0, 1)")?.unwrap_or(0.0);
    let within = format!("from 1 to {MAX_NGRAMS}");
    let n = optional_number(meta, "ngrams", |n| (1..=MAX_NGRAMS).contains(n), &within)?;
    if let Some(n) = n {
        let buckets = optional_number(meta, "buckets", |&b| b > 0, "a positive number")?
            .ok_or("metadata ngrams without buckets")?;
        arch.ngrams = Some(Ngrams { n, buckets });
    }
    if let Some(range) = meta.get("subwords") {
        let (min, max) = parse_subwords(range)
            .ok_or_else(|| format!("metadata subwords {range:?} is not MIN-MAX"))?;
        let buckets = optional_number(meta, "subword_buckets", |&b| b > 0, "a positive number")?
            .ok_or("metadata subwords without subword_buckets")?;
        let subwords = Subwords { min, max, buckets };
        subwords.check().map_err(|e| format!("metadata: {e}"))?;
        arch.subwords = Some(subwords);
    }
    Ok(arch)
}

/// The number under `key` in the metadata, if there is one, which `ok` must accept.
fn optional_number<T: std::str::FromStr>(
    meta: &HashMap<String, String>,
    key: &str,
    ok: impl Fn(&T) -> bool,
    what: &str,
) -> std::result::Result<Option<T>, String> {
    match meta.get(key) {
        None => Ok(None),
        Some(s) => match s.parse::<T>() {
            Ok(n) if ok(&n) => Ok(Some(n)),
            _ => Err(format!("metadata {key} {s:?} is not {what}")),
        },
    }
}

/// Where tensor `name` lies in the file, checked to be `f32` of `shape`.
fn tensor_info(
    file: &TensorFile,
    name: &str,
    shape: &[usize],
    sizes: &str,
) -> std::result::Result<TensorInfo, String> {
    let info = file
        .tensor(name)
        .ok_or_else(|| format!("no tensor {name}"))?;
    if info.dtype != Dtype::F32 {
        return Err(format!(
            "tensor {name} is {:?}; only F32 is supported",
            info.dtype
        ));
    }
    if info.shape != shape {
        return Err(format!(
            "tensor {name} has shape {:?}, expected {shape:?} ({sizes})",
            info.shape
        ));
    }
    Ok(info)
}

fn first_duplicate(items: &[String]) -> Option<&str> {
    let mut seen = BTreeSet::new();
    items
        .iter()
        .find(|s| !seen.insert(s.as_str()))
        .map(String::as_str)
}
