//! The gradient of a batch, kept in proportion to the batch rather than to the vocabulary.
//!
//! A token reaches only its own vector of a token table: its column of the first layer's
//! input weights under one-hot input (one table a direction), or its row of the embedding. So
//! a batch's gradient of a table is zero except at its own tokens. These are kept as a short
//! list, one entry for each distinct token of the batch holding its vector of every table;
//! every other parameter gets its gradient in full ([`Gradients::rest`]). With a vocabulary of
//! 60,000 words and a batch that holds a few thousand of them, this saves the memory of a
//! second copy of the tables, and the time of clearing, clipping and updating it at every step.
//! The wide path's table (see [`super::Ngrams`]) is kept the same way, a row for each n-gram
//! bucket the batch reached ([`Sparse`] serves both).
//!
//! **Products kept as factors.** The recurrent weights' gradient is a sum over tokens,
//! `dWhh = Σ_t da_t · h_{t-1}ᵀ = Aᵀ·B`. For one short sentence (the seed's per-example SGD)
//! forming it costs more than using it: the 64×64 matrix is written, read back by the update,
//! and zeroed again, for a sum of five or six terms. So a cell hands such a gradient over as
//! its two factors ([`CellGradient::add_product`]), and while they have at most
//! [`DEFER_ROWS`] rows they are kept as they are; the update forms the sum tile by tile in
//! registers and applies it at once ([`crate::kernels::sgd_product_step`]). Beyond that many
//! rows, or when another gradient is added in, the product is formed into the dense part.
//!
//! Invariant: outside a backward pass and an optimiser step, every float here is zero. The
//! optimiser's step resets what it reads ([`crate::optim::Optimizer::step`]), and
//! [`Gradients::clear`] then forgets which tokens had columns and every kept product.

use std::ops::Range;

use super::Network;
use crate::kernels::{AlignedVec, matmul_tn};

/// Rows a product's factors may gather before the product is formed: up to here, forming it
/// inside the update is cheaper than storing it; from here on, one product over all rows (by
/// the `gemm` crate, see [`crate::kernels::matmul_tn`]) is the faster way.
pub const DEFER_ROWS: usize = 32;

/// How many rows ahead [`Gradients::for_each_part_ahead`] names the row to fetch: enough for a
/// fetch from memory to arrive before its row's turn, few enough that it is still in cache.
pub const LOOK_AHEAD: usize = 8;

/// A weight gradient `Aᵀ·B` (k×m), kept as its factors `A` (n×k) and `B` (n×m) (see the
/// module's documentation).
#[derive(Clone, Debug, Default)]
pub struct Product {
    /// Where the weights start among the parameters after the input weights.
    at: usize,
    k: usize,
    m: usize,
    /// The rows of `A` and `B` added since the last step.
    a: AlignedVec,
    b: AlignedVec,
    /// Whether the product has been formed into the dense part (then it is added there as it
    /// comes, until the next step).
    formed: bool,
}

impl Product {
    /// `(n, k, m)`: the number of rows of the factors, and the shape of the product.
    pub fn shape(&self) -> (usize, usize, usize) {
        (self.a.len() / self.k.max(1), self.k, self.m)
    }

    /// `A` (n×k) and `B` (n×m), row-major.
    pub fn factors(&self) -> (&[f32], &[f32]) {
        (&self.a, &self.b)
    }

    /// Whether this product waits, unformed, for the update.
    fn is_kept(&self) -> bool {
        !self.formed && !self.a.is_empty()
    }

    /// Adds the kept factors' product into `rest` and keeps nothing more from now on.
    fn form(&mut self, rest: &mut [f32]) {
        let (n, k, m) = self.shape();
        matmul_tn(&mut rest[self.at..][..k * m], &self.a, &self.b, n, k, m);
        self.a.clear();
        self.b.clear();
        self.formed = true;
    }
}

/// One part of a gradient, as an update reads it (see [`Gradients::for_each_part`]).
#[derive(Debug)]
pub enum Part<'a> {
    /// The gradient itself, to be reset to zero by the update.
    Dense(&'a mut [f32]),
    /// A product kept as its factors: the gradient is `Aᵀ·B`.
    Product(&'a Product),
}

/// A part of a step's gradient, cut apart from the others so that it can go to another
/// thread ([`Gradients::pieces_apart`]): the range of the parameters it belongs to, and
/// whether it is a table's row (whose memory an update asks for ahead).
pub struct Piece<'a> {
    pub range: Range<usize>,
    pub part: Part<'a>,
    pub row: bool,
}

/// What updating a float of a table's row costs, in floats of the dense part: measured on the
/// suite's packages, Adam updated the wide path's rows at 4.6 ns a float and the other
/// parameters at 1.3 (the embedding's rows, in a smaller table, among them).
pub const ROW_COST: f64 = 3.5;

/// What updating a table's row costs besides its floats, in floats of the dense part: the
/// call, the look-up of its place and the fetch ahead (a row of the wide path is as wide as
/// the classes, 2 or 3 floats on some sets).
pub const PIECE_COST: f64 = 32.0;

/// A table of token vectors at the start of the parameters (see the module's documentation):
/// token `v`'s vector is `width` floats at `offset + v·width`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    pub offset: usize,
    pub width: usize,
}

/// Where a backward pass writes the gradients of a run of tensors of the dense part (a cell's,
/// see [`super::Cell::backward_weights`], or a layer's input weights).
#[derive(Debug)]
pub struct CellGradient<'a> {
    /// Every dense gradient; this one's tensors are `rest[base..base + len]`.
    rest: &'a mut [f32],
    base: usize,
    len: usize,
    products: &'a mut Vec<Product>,
}

impl<'a> CellGradient<'a> {
    pub(crate) fn new(
        rest: &'a mut [f32],
        base: usize,
        len: usize,
        products: &'a mut Vec<Product>,
    ) -> Self {
        assert!(base + len <= rest.len(), "tensors outside the gradient");
        CellGradient {
            rest,
            base,
            len,
            products,
        }
    }

    /// The gradients of the tensors, laid out as they are (but for products, which go through
    /// [`CellGradient::add_product`]).
    pub fn tensors(&mut self) -> &mut [f32] {
        &mut self.rest[self.base..][..self.len]
    }

    /// Adds `aᵀ · b` (`a` n×k, `b` n×m) to the k×m gradient at `at` among the tensors: formed
    /// now, or kept as its factors for the update to form (see the module's documentation).
    /// All of a tensor's products must go through here, none straight into the tensors.
    pub fn add_product(&mut self, at: usize, a: &[f32], b: &[f32], k: usize, m: usize) {
        let n = a.len() / k.max(1);
        assert_eq!((a.len(), b.len()), (n * k, n * m), "factors of {k}×{m}");
        assert!(at + k * m <= self.len, "a product outside the tensors");
        let at = self.base + at;
        if n == 0 {
            return;
        }
        // the products stay sorted by place, so that an update visits them in order
        let i = self.products.partition_point(|p| p.at < at);
        if self.products.get(i).is_none_or(|p| p.at != at) {
            let product = Product {
                at,
                k,
                m,
                ..Product::default()
            };
            self.products.insert(i, product);
        }
        let product = &mut self.products[i];
        assert_eq!((product.k, product.m), (k, m), "one shape at one place");
        if !product.formed && product.shape().0 + n <= DEFER_ROWS {
            product.a.extend_from_slice(a);
            product.b.extend_from_slice(b);
            return;
        }
        if !product.formed {
            product.form(self.rest);
        }
        matmul_tn(&mut self.rest[at..][..k * m], a, b, n, k, m);
    }
}

/// Sparse rows of the gradient: the vectors of the ids a batch reached, of one or more tables
/// indexed alike (every token's vector of every token table; or every n-gram bucket's row of
/// the wide path's table). An id's entry holds its vector of every table, in the tables'
/// order; ids get entries in the order they are first met.
#[derive(Clone, Debug, Default)]
struct Sparse {
    tables: Vec<Table>,
    /// Floats an entry: the sum of the tables' widths.
    column: usize,
    /// The ids that have an entry, in the order they were first met.
    ids: Vec<u32>,
    /// `slot[id]`: one more than the id's position in `ids`, or 0 for none.
    slot: Vec<u32>,
    /// One entry per id of `ids`, back to back.
    entries: AlignedVec,
}

impl Sparse {
    /// No entries yet, for tables of `keys` ids.
    fn new(tables: Vec<Table>, keys: usize) -> Self {
        Sparse {
            column: tables.iter().map(|t| t.width).sum(),
            tables,
            slot: vec![0; keys],
            ..Sparse::default()
        }
    }

    /// The entries, one `column` wide, as a slice of chunks (never of width 0).
    fn chunks(&self) -> std::slice::ChunksExact<'_, f32> {
        self.entries.chunks_exact(self.column.max(1))
    }

    /// Replaces every id of `x` by the index of its entry (adding zero entries for ids met
    /// for the first time), into `local`.
    fn localize(&mut self, x: &[u32], local: &mut Vec<u32>) {
        local.clear();
        for &id in x {
            let slot = &mut self.slot[id as usize];
            if *slot == 0 {
                self.ids.push(id);
                *slot = self.ids.len() as u32;
            }
            local.push(*slot - 1);
        }
        let len = self.ids.len() * self.column;
        self.entries.resize(len, 0.0);
    }

    /// Calls `f` with every id's vector of every table, its range of the parameters, and the
    /// range of the id [`LOOK_AHEAD`] places on, if there is one (see
    /// [`Gradients::for_each_part_ahead`]).
    fn for_each_part<'a>(
        &'a mut self,
        f: &mut impl FnMut(Range<usize>, Part<'a>, Option<Range<usize>>),
    ) {
        let column = self.column.max(1);
        let tables = &self.tables;
        let range = |id: u32, table: &Table| {
            let start = table.offset + id as usize * table.width;
            start..start + table.width
        };
        for (i, (&id, entry)) in self
            .ids
            .iter()
            .zip(self.entries.chunks_exact_mut(column))
            .enumerate()
        {
            let ahead = self.ids.get(i + LOOK_AHEAD).copied();
            let mut entry = entry;
            for table in tables {
                let (g, after) = entry.split_at_mut(table.width);
                let soon = ahead.map(|id| range(id, table));
                f(range(id, table), Part::Dense(g), soon);
                entry = after;
            }
        }
    }

    /// Forgets which ids have entries (which must be zero).
    fn clear(&mut self) {
        debug_assert!(self.entries.iter().all(|&g| g == 0.0));
        for &id in &self.ids {
            self.slot[id as usize] = 0;
        }
        self.ids.clear();
    }

    /// Sets every entry to zero and forgets the ids.
    fn zero(&mut self) {
        self.entries.fill(0.0);
        self.clear();
    }

    /// Adds `other`'s entries to this one's, matched by id, and zeroes `other`.
    fn absorb(&mut self, other: &mut Sparse) {
        let column = self.column;
        let mut local = Vec::with_capacity(other.ids.len());
        self.localize(&other.ids, &mut local);
        for (&i, g) in local.iter().zip(other.chunks()) {
            let dst = &mut self.entries[i as usize * column..][..column];
            crate::kernels::add_into(dst, g);
        }
        other.zero();
    }

    /// Writes the entry of every id of `union` into `out`, in that order (zeros for an id
    /// without one).
    ///
    /// # Panics
    /// If an id that has an entry is not in `union`.
    fn pack(&self, union: &[u32], out: &mut [f32]) {
        let column = self.column;
        out.fill(0.0);
        let mut position = vec![u32::MAX; self.slot.len()];
        for (i, &id) in union.iter().enumerate() {
            position[id as usize] = i as u32;
        }
        for (&id, entry) in self.ids.iter().zip(self.chunks()) {
            let i = position[id as usize];
            assert!(i != u32::MAX, "id {id} is not in the union");
            out[i as usize * column..][..column].copy_from_slice(entry);
        }
    }

    /// Gives this (empty) set a zero entry for every id of `union`, in that order, to be filled.
    fn enter(&mut self, union: &[u32]) {
        assert!(
            self.ids.is_empty(),
            "unpacking into a gradient that has ids"
        );
        let mut local = Vec::with_capacity(union.len());
        self.localize(union, &mut local);
    }

    /// Makes this (empty) set the entries of the ids `union`, as [`Sparse::pack`] wrote them.
    fn unpack(&mut self, union: &[u32], packed: &[f32]) {
        self.enter(union);
        self.entries.copy_from_slice(packed);
    }

    /// Makes this (empty) set the entries of the ids `union`, read from `dense`, laid out like
    /// the parameters.
    fn read_dense(&mut self, union: &[u32], dense: &[f32]) {
        self.enter(union);
        let column = self.column.max(1);
        for (&id, entry) in union.iter().zip(self.entries.chunks_exact_mut(column)) {
            let mut entry = entry;
            for table in &self.tables {
                let (g, after) = entry.split_at_mut(table.width);
                g.copy_from_slice(
                    &dense[table.offset + id as usize * table.width..][..table.width],
                );
                entry = after;
            }
        }
    }

    /// Writes every entry into `dense`, laid out like the parameters.
    fn write_dense(&self, dense: &mut [f32]) {
        for (&id, entry) in self.ids.iter().zip(self.chunks()) {
            let mut entry = entry;
            for table in &self.tables {
                let (g, after) = entry.split_at(table.width);
                dense[table.offset + id as usize * table.width..][..table.width].copy_from_slice(g);
                entry = after;
            }
        }
    }
}

/// The gradient of a batch's loss with respect to every parameter of a [`Network`].
#[derive(Clone, Debug)]
pub struct Gradients {
    /// The token tables' entries of the batch's tokens.
    tokens: Sparse,
    /// The wide path's rows of the batch's n-gram buckets (no table without a wide path).
    rows: Sparse,
    /// Where the other parameters start in the parameter buffer: after the wide table and the
    /// token tables.
    input_len: usize,
    /// The gradient of every parameter after the input weights, in the same layout, but for
    /// the kept products, which are zero here.
    rest: AlignedVec,
    /// Weight gradients kept as factors (or, once formed, the record that they were), sorted
    /// by place.
    products: Vec<Product>,
    /// The share of a step's estimated cost that the first of two threads takes when an update
    /// is split in two ([`Gradients::split_point`]), moved after every split step toward
    /// the times the two took ([`Gradients::rebalance`]). It decides who does what, never what
    /// is done.
    balance: f64,
}

/// Puts the part `part` of the parameters at `range` into the first of `halves` if it lies
/// before `at`, into the second if it lies from `at` on, and cut in two if it is dense and
/// spans `at` (see [`Gradients::pieces_apart`]).
fn put_apart<'a>(
    halves: &mut [Vec<Piece<'a>>; 2],
    at: usize,
    range: Range<usize>,
    part: Part<'a>,
    row: bool,
) {
    if range.start < at && at < range.end {
        let Part::Dense(g) = part else {
            unreachable!("a split inside a kept product")
        };
        let (before, after) = g.split_at_mut(at - range.start);
        halves[0].push(Piece {
            range: range.start..at,
            part: Part::Dense(before),
            row,
        });
        halves[1].push(Piece {
            range: at..range.end,
            part: Part::Dense(after),
            row,
        });
    } else {
        halves[usize::from(range.start >= at)].push(Piece { range, part, row });
    }
}

/// Calls `f` with `rest`, the dense part that starts at `base` in the parameters, in order,
/// cut around the kept `products`.
fn for_each_dense_part<'a>(
    base: usize,
    rest: &'a mut [f32],
    products: &'a [Product],
    f: &mut impl FnMut(Range<usize>, Part<'a>, Option<Range<usize>>),
) {
    let mut rest = rest;
    let mut done = 0; // floats of `rest` passed so far
    for product in products.iter().filter(|p| p.is_kept()) {
        let (_, k, m) = product.shape();
        let (before, after) = rest.split_at_mut(product.at - done);
        if !before.is_empty() {
            f(base + done..base + product.at, Part::Dense(before), None);
        }
        let start = base + product.at;
        f(start..start + k * m, Part::Product(product), None);
        rest = &mut after[k * m..];
        done = product.at + k * m;
    }
    if !rest.is_empty() {
        f(
            base + done..base + done + rest.len(),
            Part::Dense(rest),
            None,
        );
    }
}

impl Gradients {
    /// An all-zero gradient for `net`.
    pub fn new(net: &Network) -> Self {
        let input_len = net.dense_start();
        let tables = net.tables().to_vec();
        debug_assert!(
            tables
                .iter()
                .all(|t| t.offset + t.width * net.arch().token_rows() <= input_len),
            "the tables come first"
        );
        let rows = match net.wide_table() {
            Some((table, buckets)) => Sparse::new(vec![table], buckets),
            None => Sparse::default(),
        };
        Gradients {
            tokens: Sparse::new(tables, net.arch().token_rows()),
            rows,
            input_len,
            rest: AlignedVec::zeros(net.params().len() - input_len),
            products: Vec::new(),
            balance: 0.5,
        }
    }

    /// Replaces every token of `x` by the index of its column here (adding zero columns for
    /// tokens met for the first time), into `local`.
    pub(crate) fn localize(&mut self, x: &[u32], local: &mut Vec<u32>) {
        self.tokens.localize(x, local);
    }

    /// Replaces every n-gram bucket of `x` by the index of its row here (adding zero rows for
    /// buckets met for the first time), into `local`.
    pub(crate) fn localize_rows(&mut self, x: &[u32], local: &mut Vec<u32>) {
        self.rows.localize(x, local);
    }

    /// The wide path's rows, to be written by a backward pass (row `i` of [`localize_rows`]'s
    /// indices is `C` floats at `i·C`).
    ///
    /// [`localize_rows`]: Gradients::localize_rows
    pub(crate) fn row_entries(&mut self) -> &mut [f32] {
        &mut self.rows.entries
    }

    /// The tokens' entries (see [`Gradients::column_width`]), the rest, and the kept products,
    /// to be written by a backward pass.
    pub(crate) fn parts(&mut self) -> (&mut [f32], &mut [f32], &mut Vec<Product>) {
        (&mut self.tokens.entries, &mut self.rest, &mut self.products)
    }

    /// Floats a token's entry holds: its vector of every table, in order.
    pub(crate) fn column_width(&self) -> usize {
        self.tokens.column
    }

    /// Forms every kept product into the dense part.
    fn form_products(&mut self) {
        for product in &mut self.products {
            if product.is_kept() {
                product.form(&mut self.rest);
            }
        }
    }

    /// Sets to zero the gradient of the token table at `offset` (of the parameters) for every
    /// row below `rows`: those rows are then left as they are by the update. (The rows from
    /// `V` on are subword n-grams', see [`super::Subwords`]; `rows = V` keeps the words' vectors
    /// and lets the n-grams learn.)
    pub fn zero_table(&mut self, offset: usize, rows: usize) {
        let tokens = &mut self.tokens;
        let column = tokens.column.max(1);
        let mut start = 0;
        for table in &tokens.tables {
            if table.offset == offset {
                let entries = tokens.entries.chunks_exact_mut(column);
                for (&id, entry) in tokens.ids.iter().zip(entries) {
                    if (id as usize) < rows {
                        entry[start..start + table.width].fill(0.0);
                    }
                }
            }
            start += table.width;
        }
    }

    /// The tokens that have a column, in order.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens.ids
    }

    /// Where the wide path's table ends in the parameters (it starts them), or 0 without one.
    pub fn wide_end(&self) -> usize {
        self.rows
            .tables
            .first()
            .map_or(0, |t| t.width * self.rows.slot.len())
    }

    /// Calls `f` with every part of the gradient and the range of the parameters it belongs
    /// to: each bucket's row of the wide table, each token's vector of each table, then the
    /// rest in order, cut around the kept products, which come as [`Part::Product`]. The
    /// order is fixed, so a step is reproducible.
    pub fn for_each_part(&mut self, mut f: impl FnMut(Range<usize>, Part<'_>)) {
        self.for_each_part_ahead(|range, part, _| f(range, part));
    }

    /// [`Gradients::for_each_part`], telling `f` also, with each row of a table, the range of
    /// the parameters of the row it will see `LOOK_AHEAD` (8) rows later: an update may ask the
    /// CPU to fetch that row's memory now. The rows lie at random places in tables of many
    /// megabytes (the wide path's, with its optimiser's moments), so each one read when its
    /// turn comes is a wait for memory; fetched ahead, the waits overlap.
    pub fn for_each_part_ahead(
        &mut self,
        mut f: impl FnMut(Range<usize>, Part<'_>, Option<Range<usize>>),
    ) {
        self.rows.for_each_part(&mut f);
        self.tokens.for_each_part(&mut f);
        for_each_dense_part(self.input_len, &mut self.rest, &self.products, &mut f);
    }

    /// Where to cut this step's update in two, so that the two halves cost about the same
    /// ([`Gradients::pieces_apart`]): the point of the parameters below which lies the share
    /// [`Gradients::balance`] of the step's estimated cost. A table's row the batch reached
    /// costs [`ROW_COST`] times a float of the dense part per float (it lies at random in a
    /// table of megabytes, and so do its optimiser's moments), and [`PIECE_COST`] floats more;
    /// a table's rows are taken to be spread evenly over it (the n-gram buckets are hashes),
    /// which the balance corrects where they are not. The point is at a row's boundary in a
    /// table, and never inside a kept product.
    pub fn split_point(&self) -> usize {
        // (start, end, estimated cost, row width) of every table and of the dense part
        let mut regions: Vec<(usize, usize, f64, usize)> = Vec::new();
        for sparse in [&self.rows, &self.tokens] {
            for table in &sparse.tables {
                let end = table.offset + sparse.slot.len() * table.width;
                let cost = sparse.ids.len() as f64 * (table.width as f64 * ROW_COST + PIECE_COST);
                regions.push((table.offset, end, cost, table.width));
            }
        }
        let rest_end = self.input_len + self.rest.len();
        regions.push((self.input_len, rest_end, self.rest.len() as f64, 1));
        regions.sort_by_key(|r| r.0);
        let total: f64 = regions.iter().map(|r| r.2).sum();
        let mut left = self.balance * total;
        for &(start, end, cost, width) in &regions {
            if cost <= 0.0 || left > cost {
                left -= cost.max(0.0);
                continue;
            }
            let rows = (end - start) / width.max(1);
            let row = ((left / cost) * rows as f64).round() as usize;
            let at = start + row.min(rows) * width;
            // not inside a kept product: at its start
            return self
                .products
                .iter()
                .filter(|p| p.is_kept())
                .map(|p| {
                    let (_, k, m) = p.shape();
                    self.input_len + p.at..self.input_len + p.at + k * m
                })
                .find(|r| r.start < at && at < r.end)
                .map_or(at, |r| r.start);
        }
        rest_end
    }

    /// The parts of [`Gradients::for_each_part_ahead`], in its order, cut at `at` into those
    /// of the parameters before `at` and those from `at` on: a dense part across `at` is cut
    /// in two. `at` must not be inside a kept product ([`Gradients::split_point`]).
    pub fn pieces_apart(&mut self, at: usize) -> [Vec<Piece<'_>>; 2] {
        let mut halves = [Vec::new(), Vec::new()];
        let mut row = |range, part, _| put_apart(&mut halves, at, range, part, true);
        self.rows.for_each_part(&mut row);
        self.tokens.for_each_part(&mut row);
        let mut dense = |range, part, _| put_apart(&mut halves, at, range, part, false);
        for_each_dense_part(self.input_len, &mut self.rest, &self.products, &mut dense);
        halves
    }

    /// The share of a step's estimated cost that the first half of a split update takes
    /// (see [`Gradients::split_point`]).
    pub fn balance(&self) -> f64 {
        self.balance
    }

    /// Sets [`Gradients::balance`] (a test's way to put the cut anywhere).
    #[cfg(test)]
    pub(crate) fn set_balance(&mut self, share: f64) {
        self.balance = share;
    }

    /// Moves [`Gradients::balance`] after a split step whose first half took `first` seconds
    /// and whose second took `second`: toward the slower half's share being smaller.
    pub fn rebalance(&mut self, first: f64, second: f64) {
        if first + second > 0.0 {
            let lead = (second - first) / (first + second);
            self.balance = (self.balance + 0.25 * lead).clamp(0.02, 0.98);
        }
    }

    /// Forgets which tokens and buckets have entries, and every kept product. Call it after an
    /// optimiser step (which leaves every float zero); use [`Gradients::zero`] otherwise.
    pub fn clear(&mut self) {
        debug_assert!(self.rest.iter().all(|&g| g == 0.0));
        self.tokens.clear();
        self.rows.clear();
        for product in &mut self.products {
            product.a.clear();
            product.b.clear();
            product.formed = false;
        }
    }

    /// Sets every float to zero and forgets the tokens, the buckets and the kept products.
    pub fn zero(&mut self) {
        self.tokens.entries.fill(0.0);
        self.rows.entries.fill(0.0);
        self.rest.fill(0.0);
        self.clear();
    }

    /// Adds `other` (the gradient of another part of the same batch) to this one and zeroes
    /// it. Tokens' and buckets' entries are matched by token and by bucket.
    pub fn absorb(&mut self, other: &mut Gradients) {
        self.form_products();
        other.form_products();
        self.tokens.absorb(&mut other.tokens);
        self.rows.absorb(&mut other.rows);
        crate::kernels::add_into(&mut self.rest, &other.rest);
        other.zero();
    }

    /// The number of entry ids a packed gradient may name: `V` tokens (and the `B_s` subword
    /// rows after them, see [`super::Subwords`]), then `B` n-gram buckets (`V + b` is bucket
    /// `b`'s id, `V` counting the subword rows; see [`Gradients::entry_ids`]).
    pub fn id_space(&self) -> usize {
        self.tokens.slot.len() + self.rows.slot.len()
    }

    /// The ids of the entries this gradient has: every token, then `V + b` for every n-gram
    /// bucket `b` of the wide path (the ids a packed gradient names; see [`Gradients::pack`]).
    pub fn entry_ids(&self) -> Vec<u32> {
        let vocab = self.tokens.slot.len() as u32;
        let buckets = self.rows.ids.iter().map(|&b| vocab + b);
        self.tokens.ids.iter().copied().chain(buckets).collect()
    }

    /// The tokens of `union` (ids under `V`) and its buckets (the others, less `V`), each in
    /// the order of `union`.
    fn split_ids(&self, union: &[u32]) -> (Vec<u32>, Vec<u32>) {
        let vocab = self.tokens.slot.len() as u32;
        let tokens = union.iter().copied().filter(|&id| id < vocab).collect();
        let buckets = union
            .iter()
            .filter(|&&id| id >= vocab)
            .map(|&id| id - vocab);
        (tokens, buckets.collect())
    }

    /// Floats of a packed gradient (see [`Gradients::pack`]) for the entry ids `union`: an
    /// entry a token, a row a bucket, then the rest of the parameters.
    pub fn packed_len(&self, union: &[u32]) -> usize {
        let (tokens, buckets) = self.split_ids(union);
        tokens.len() * self.tokens.column + buckets.len() * self.rows.column + self.rest.len()
    }

    /// Writes the gradient into `out` (of [`Gradients::packed_len`] floats) as another process
    /// can add it to its own: the entry of every token of `union` in that order (zeros for a
    /// token this gradient has not), the row of every bucket of `union` in that order (ids `V +
    /// b`, see [`Gradients::entry_ids`]), then the rest of the parameters, with the kept
    /// products formed. `union` must hold every id this gradient has. Leaves the gradient zero.
    ///
    /// # Panics
    /// If `out` is not of that length, or an id of the gradient is not in `union`.
    pub fn pack(&mut self, union: &[u32], out: &mut [f32]) {
        assert_eq!(out.len(), self.packed_len(union), "the packed length");
        self.form_products();
        let (tokens, buckets) = self.split_ids(union);
        let (entries, out) = out.split_at_mut(tokens.len() * self.tokens.column);
        let (rows, rest) = out.split_at_mut(buckets.len() * self.rows.column);
        self.tokens.pack(&tokens, entries);
        self.rows.pack(&buckets, rows);
        rest.copy_from_slice(&self.rest);
        self.zero();
    }

    /// Makes this (zero) gradient the one `packed` holds for the ids `union` (see
    /// [`Gradients::pack`]): the sum of every process's part, for the update.
    ///
    /// # Panics
    /// If `packed` is not of the packed length, or this gradient is not zero and empty.
    pub fn unpack(&mut self, union: &[u32], packed: &[f32]) {
        assert_eq!(packed.len(), self.packed_len(union), "the packed length");
        let (tokens, buckets) = self.split_ids(union);
        let (entries, packed) = packed.split_at(tokens.len() * self.tokens.column);
        let (rows, rest) = packed.split_at(buckets.len() * self.rows.column);
        self.tokens.unpack(&tokens, entries);
        self.rows.unpack(&buckets, rows);
        self.rest.copy_from_slice(rest);
    }

    /// Makes this (zero) gradient the one `dense` holds (laid out like the parameters, as
    /// [`Gradients::to_dense`] gives it) for the ids `union`: their vectors of the token
    /// tables and rows of the wide table, and the rest.
    ///
    /// # Panics
    /// If `dense` is not of the parameters' length, or this gradient is not zero and empty.
    pub fn unpack_dense(&mut self, union: &[u32], dense: &[f32]) {
        assert_eq!(
            dense.len(),
            self.input_len + self.rest.len(),
            "the dense length"
        );
        let (tokens, buckets) = self.split_ids(union);
        self.tokens.read_dense(&tokens, dense);
        self.rows.read_dense(&buckets, dense);
        self.rest.copy_from_slice(&dense[self.input_len..]);
    }

    /// The whole gradient laid out like the parameters (zeros in the vectors of the tokens
    /// and buckets the batch did not have): what a dense backward pass would give.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut dense = vec![0.0; self.input_len + self.rest.len()];
        self.tokens.write_dense(&mut dense);
        self.rows.write_dense(&mut dense);
        let rest = &mut dense[self.input_len..];
        rest.copy_from_slice(&self.rest);
        for product in self.products.iter().filter(|p| p.is_kept()) {
            product.clone().form(rest);
        }
        dense
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::rnn::{Architecture, Batch, CellKind, Init, Workspace};

    fn network() -> Network {
        let mut rng = Rng::new(1);
        let arch = Architecture::new(CellKind::Rnn, 10, 4, 3);
        let mut net = Network::new(&arch, Init::LikeRnn, &mut rng).unwrap();
        for w in net.params_mut() {
            *w = rng.symmetric(0.5) as f32;
        }
        net
    }

    #[test]
    fn only_the_batch_tokens_have_columns_and_the_dense_view_places_them() {
        let net = network();
        let batch = Batch::new(&[&[1, 7, 1], &[3]], &[0, 2]);
        let mut ws = Workspace::default();
        let mut grads = Gradients::new(&net);
        net.forward(&batch, &mut ws, None);
        net.backward(&batch, &mut ws, &mut grads);
        // In the order the steps meet them: step 0 has tokens 1 and 3, step 1 token 7.
        assert_eq!(grads.tokens(), [1, 3, 7]);
        let dense = grads.to_dense();
        assert_eq!(
            net.tables(),
            [Table {
                offset: 0,
                width: 4
            }]
        );
        let h = 4;
        for token in 0..10 {
            let column = &dense[token * h..][..h];
            let seen = [1, 3, 7].contains(&token);
            assert_eq!(column.iter().any(|&g| g != 0.0), seen, "column {token}");
        }
        // the columns, then the input bias, Whh's gradient as a product of 2 rows (the tokens
        // after the first step), and the output layer
        let mut parts = Vec::new();
        grads.for_each_part(|range, part| {
            parts.push(match part {
                Part::Dense(g) => (range, g.len(), "dense"),
                Part::Product(p) => {
                    assert_eq!(p.shape(), (2, 4, 4));
                    (range, p.factors().0.len(), "product")
                }
            })
        });
        assert_eq!(
            parts,
            [
                (4..8, 4, "dense"),
                (12..16, 4, "dense"),
                (28..32, 4, "dense"),
                (40..44, 4, "dense"),
                (44..60, 8, "product"),
                (60..dense.len(), dense.len() - 60, "dense")
            ]
        );
    }

    #[test]
    fn two_packed_parts_add_up_to_the_whole_batchs_gradient() {
        let net = network();
        let mut ws = Workspace::default();
        let run = |batch: &Batch, grads: &mut Gradients, ws: &mut Workspace| {
            net.forward(batch, ws, None);
            net.backward_weighted(batch, ws, grads, 0.5);
        };
        // the whole batch in one process
        let (first, second) = (
            Batch::new(&[&[1, 7, 1]], &[0]),
            Batch::new(&[&[3, 1]], &[2]),
        );
        let mut whole = Gradients::new(&net);
        run(&first, &mut whole, &mut ws);
        run(&second, &mut whole, &mut ws);
        // its halves in two, packed for the union of their tokens, added, unpacked
        let (mut a, mut b) = (Gradients::new(&net), Gradients::new(&net));
        run(&first, &mut a, &mut ws);
        run(&second, &mut b, &mut ws);
        let union = [1, 3, 7];
        let mut pa = vec![f32::NAN; a.packed_len(&[1, 3, 7])];
        let mut pb = vec![f32::NAN; b.packed_len(&[1, 3, 7])];
        a.pack(&union, &mut pa);
        b.pack(&union, &mut pb);
        assert!(a.to_dense().iter().all(|&g| g == 0.0) && a.tokens().is_empty());
        let summed: Vec<f32> = pa.iter().zip(&pb).map(|(x, y)| x + y).collect();
        let mut reduced = Gradients::new(&net);
        reduced.unpack(&union, &summed);
        assert_eq!(reduced.tokens(), union);
        let (want, got) = (whole.to_dense(), reduced.to_dense());
        for (w, g) in want.iter().zip(&got) {
            assert!((w - g).abs() <= 1e-6 * (1.0 + w.abs()), "{w} against {g}");
        }
        // the dense layout reads back as the same gradient
        let mut from_dense = Gradients::new(&net);
        from_dense.unpack_dense(&union, &got);
        assert_eq!(from_dense.tokens(), union);
        assert_eq!(from_dense.to_dense(), got);
    }

    /// Adds `n` random rows of factors of a 3×5 product at `rest[2..17]`, and returns them.
    fn add_rows(g: &mut CellGradient<'_>, n: usize, rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
        let a: Vec<f32> = (0..n * 3).map(|_| rng.symmetric(1.0) as f32).collect();
        let b: Vec<f32> = (0..n * 5).map(|_| rng.symmetric(1.0) as f32).collect();
        g.add_product(2, &a, &b, 3, 5);
        (a, b)
    }

    #[test]
    fn a_product_is_kept_up_to_the_row_limit_then_formed() {
        let mut rng = Rng::new(2);
        let (mut rest, mut products) = (vec![0.0; 20], vec![]);
        let mut g = CellGradient::new(&mut rest, 0, 20, &mut products);
        let (a1, b1) = add_rows(&mut g, DEFER_ROWS - 1, &mut rng);
        let (a2, b2) = add_rows(&mut g, 1, &mut rng);
        assert!(rest.iter().all(|&x| x == 0.0), "kept, not formed");
        assert_eq!(products.len(), 1);
        assert_eq!(products[0].shape(), (DEFER_ROWS, 3, 5));
        assert_eq!(products[0].factors().0, [&a1[..], &a2].concat());
        assert_eq!(products[0].factors().1, [&b1[..], &b2].concat());

        let mut g = CellGradient::new(&mut rest, 0, 20, &mut products);
        let (a3, b3) = add_rows(&mut g, 1, &mut rng);
        let (a4, b4) = add_rows(&mut g, 2, &mut rng);
        assert!(!products[0].is_kept(), "one row too many: formed");
        assert!(products[0].factors().0.is_empty() && products[0].factors().1.is_empty());
        // rest[2..17] now holds the whole sum, and nothing is left outside it
        let (a, b) = ([a1, a2, a3, a4].concat(), [b1, b2, b3, b4].concat());
        let mut expected = vec![0.0; 15];
        crate::kernels::reference::matmul_tn(&mut expected, &a, &b, DEFER_ROWS + 3, 3, 5);
        for (x, y) in rest[2..17].iter().zip(&expected) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        assert!(rest[..2].iter().chain(&rest[17..]).all(|&x| x == 0.0));
    }

    #[test]
    fn absorbing_adds_by_token_and_zeroes_the_other() {
        let net = network();
        let mut ws = Workspace::default();
        let whole = Batch::new(&[&[1, 2], &[2, 5]], &[0, 1]);
        let (first, second) = (Batch::new(&[&[1, 2]], &[0]), Batch::new(&[&[2, 5]], &[1]));
        let mut together = Gradients::new(&net);
        net.forward(&whole, &mut ws, None);
        net.backward(&whole, &mut ws, &mut together);
        // Two halves, each weighted by one over the whole batch, then merged.
        let (mut a, mut b) = (Gradients::new(&net), Gradients::new(&net));
        net.forward(&first, &mut ws, None);
        net.backward_weighted(&first, &mut ws, &mut a, 0.5);
        net.forward(&second, &mut ws, None);
        net.backward_weighted(&second, &mut ws, &mut b, 0.5);
        a.absorb(&mut b);
        for (x, y) in a.to_dense().iter().zip(together.to_dense()) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
        assert!(b.tokens().is_empty() && b.to_dense().iter().all(|&g| g == 0.0));
        a.zero();
        assert!(a.tokens().is_empty() && a.to_dense().iter().all(|&g| g == 0.0));
    }
}
