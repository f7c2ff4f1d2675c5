//! The flow of one text through the network, drawn: hidden states, class probabilities and the
//! gradient reaching each token, aligned by token.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{FONT, MESH_COLOUR, register_font_once};
use crate::error::{Error, Result};
use crate::fsutil::replace_with;
use crate::rnn::Flow;

/// Height of the flow chart in pixels; its width grows with the number of tokens.
const FLOW_HEIGHT: u32 = 900;
/// Texts up to this many tokens have the tokens themselves as tick labels, longer ones positions.
const TOKEN_LABELS_UP_TO: usize = 40;
/// Tokens longer than this many characters are cut short with "…".
const TOKEN_CHARS: usize = 12;
/// Texts up to this many tokens get a marker on every point of the lines.
const FLOW_MARKERS_UP_TO: usize = 60;
/// At most this many heatmap cells are drawn; beyond, neighbouring tokens share a column.
const MAX_CELLS: usize = 500_000;
/// At most this many classes get a line (plus the target).
const MAX_CLASS_LINES: usize = 8;
/// Gradient norms below this (zero, denormals) are drawn at it, so that the log scale is finite.
const GRADIENT_FLOOR: f64 = 1e-30;
/// The colour of `h = -1`; 0 is white and the colours in between are mixed linearly.
const COLD: RGBColor = RGBColor(33, 102, 172);
/// The colour of `h = +1`.
const HOT: RGBColor = RGBColor(178, 24, 43);
/// The colour of a hidden state that is not a number.
const MISSING_COLOUR: RGBColor = RGBColor(160, 160, 160);
const GRADIENT_COLOUR: RGBColor = RGBColor(84, 39, 143);
const NOTE_COLOUR: RGBColor = RGBColor(90, 90, 90);
/// The colours of the class lines, in the order of the classes drawn.
const PALETTE: [RGBColor; MAX_CLASS_LINES + 1] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
];
/// Space in pixels around each panel's chart.
const FLOW_MARGIN: u32 = 8;
/// Width in pixels of the y labels left of every panel (the same for all, so columns line up).
const FLOW_Y_AREA: u32 = 80;
/// Width in pixels of the strip right of every panel holding the colour bar and the legend.
const SIDE: u32 = 180;
const TOKEN_FONT_SIZE: u32 = 13;
/// Roughly the height in pixels a panel's caption takes.
const CAPTION_HEIGHT: u32 = 32;
/// Height in pixels under the middle panel, which has ticks but no tick labels.
const MIDDLE_X_AREA: u32 = 12;
/// Height in pixels of the axis description ("token") under the bottom panel.
const X_DESC_HEIGHT: u32 = 22;

/// Draws how a network reads one text into a PNG at `path` (written atomically): three panels
/// stacked, sharing the token axis (`tokens[0]` at position 1).
///
/// - Top, the hidden state `h_t` after each token as a heatmap: one column a token, one row a
///   hidden unit, blue for -1, white for 0, red for +1. A unit that switches colour at a token
///   reacts to it; rows that keep their colour carry memory along the text. For a stacked
///   network these are the top layer's states; for a bidirectional one, the forward
///   direction's units come first, then the backward direction's (read from the end).
/// - Middle, the probability of each class if the text stopped after each token (one line a
///   class, `target` thicker): where the network changes its mind. With more than
///   `MAX_CLASS_LINES` classes only the most probable at the end, and `target`, are drawn.
/// - Bottom, `‖∂L/∂h_t‖` on a log scale: how much the loss for `labels[target]` depends on each
///   hidden state, i.e. how much training can learn from each token. On a long text it falls by
///   orders of magnitude from the last token back to the first: the vanishing gradient. Zero
///   (and denormal) norms are drawn at 1e-30; non-finite ones are left out.
///
/// Up to `TOKEN_LABELS_UP_TO` tokens, the ticks are labelled with the tokens (spaces shown as
/// `␣`, long tokens cut short), otherwise with their positions. The image is
/// [`flow_size`]`(tokens.len())` pixels.
pub fn plot_flow(
    tokens: &[String],
    labels: &[String],
    target: usize,
    flow: &Flow,
    title: &str,
    path: &Path,
) -> Result<()> {
    let plot_error = |message: String| Error::Plot {
        path: path.to_path_buf(),
        message,
    };
    let chart = FlowChart::new(tokens, labels, target, flow).map_err(plot_error)?;
    register_font_once();
    replace_with(path, |tmp| {
        render_flow(&chart, title, tmp).map_err(plot_error)
    })
}

/// The width and height in pixels of the flow chart of a text of `tokens` tokens: 24 pixels a
/// token plus 200 for the axes and the legend, between 900 and 2400 wide; 900 high.
pub fn flow_size(tokens: usize) -> (u32, u32) {
    let width = tokens
        .saturating_mul(24)
        .saturating_add(200)
        .clamp(900, 2400);
    (width as u32, FLOW_HEIGHT)
}

/// What [`plot_flow`] draws, checked to fit together.
struct FlowChart<'a> {
    tokens: &'a [String],
    labels: &'a [String],
    target: usize,
    flow: &'a Flow,
    /// H, the length of every hidden state.
    hidden: usize,
}

impl<'a> FlowChart<'a> {
    fn new(
        tokens: &'a [String],
        labels: &'a [String],
        target: usize,
        flow: &'a Flow,
    ) -> Result<Self, String> {
        let n = tokens.len();
        if n == 0 {
            return Err("no tokens to draw".into());
        }
        for (len, what) in [
            (flow.states.len(), "hidden states"),
            (flow.probs.len(), "lists of class probabilities"),
            (flow.gradient_norms.len(), "gradient norms"),
        ] {
            if len != n {
                return Err(format!("the flow has {len} {what} for {n} tokens"));
            }
        }
        let hidden = flow.states[0].len();
        if hidden == 0 {
            return Err("the hidden states are empty".into());
        }
        if let Some(t) = flow.states.iter().position(|h| h.len() != hidden) {
            return Err(format!(
                "the hidden state after token {} has {} units, the first has {hidden}",
                t + 1,
                flow.states[t].len()
            ));
        }
        let classes = flow.probs[0].len();
        if classes == 0 {
            return Err("the flow has no class probabilities".into());
        }
        if let Some(t) = flow.probs.iter().position(|p| p.len() != classes) {
            return Err(format!(
                "after token {} there are {} class probabilities, after the first {classes}",
                t + 1,
                flow.probs[t].len()
            ));
        }
        if labels.len() != classes {
            return Err(format!("{} labels for {classes} classes", labels.len()));
        }
        if target >= classes {
            return Err(format!(
                "the target class {target} is not one of the {classes} classes"
            ));
        }
        Ok(FlowChart {
            tokens,
            labels,
            target,
            flow,
            hidden,
        })
    }

    fn len(&self) -> usize {
        self.tokens.len()
    }

    /// The x coordinate of the token at `index` (from 0): its position, from 1.
    fn x(index: usize) -> f64 {
        (index + 1) as f64
    }
}

/// Draws the flow chart into the PNG file `png` (see [`render`]).
fn render_flow(chart: &FlowChart, title: &str, png: &Path) -> Result<(), String> {
    let root = BitMapBackend::new(png, flow_size(chart.len())).into_drawing_area();
    draw_flow(&root, chart, title)
        .and_then(|()| root.present())
        .map_err(|e| e.to_string())
}

/// The token axis all three panels share.
struct TokenAxis {
    /// `0.5..T + 0.5`: the token at position `t` (from 1) is centred on `t`.
    range: std::ops::Range<f64>,
    /// How many ticks to ask for: one a token when the tokens label them.
    ticks: usize,
    /// The tokens as printed under the ticks, or `None` when positions label the ticks.
    labels: Option<Vec<String>>,
    /// Whether the token labels are turned to read upwards, being too wide to lie side by side.
    upright: bool,
    /// Height in pixels of the tick labels under a panel.
    height: u32,
}

impl TokenAxis {
    fn new<DB: DrawingBackend>(
        root: &DrawingArea<DB, Shift>,
        tokens: &[String],
        plot_width: u32,
    ) -> Result<Self, DrawingAreaErrorKind<DB::ErrorType>> {
        let range = 0.5..tokens.len() as f64 + 0.5;
        if tokens.len() > TOKEN_LABELS_UP_TO {
            return Ok(TokenAxis {
                range,
                ticks: 12,
                labels: None,
                upright: false,
                height: 30,
            });
        }
        let labels: Vec<String> = tokens.iter().map(|t| visible_token(t)).collect();
        let style = TextStyle::from((FONT, TOKEN_FONT_SIZE));
        let (mut widest, mut tallest) = (0, 0);
        for label in &labels {
            let (w, h) = root.estimate_text_size(label, &style)?;
            widest = widest.max(w);
            tallest = tallest.max(h);
        }
        let column = plot_width / tokens.len() as u32;
        let upright = widest + 6 > column;
        Ok(TokenAxis {
            range,
            ticks: tokens.len(),
            labels: Some(labels),
            upright,
            height: if upright { widest } else { tallest } + 16,
        })
    }

    /// Tick labels the chart's mesh draws: positions, or nothing when the tokens are drawn by
    /// [`TokenAxis::draw_tokens`] instead.
    fn mesh_label(&self) -> fn(&f64) -> String {
        if self.labels.is_some() {
            |_| String::new()
        } else {
            whole_number
        }
    }

    /// Writes the tokens under the ticks of `chart`, onto `root` (the whole image).
    fn draw_tokens<DB: DrawingBackend, Y: Ranged>(
        &self,
        root: &DrawingArea<DB, Shift>,
        chart: &ChartContext<DB, Cartesian2d<RangedCoordf64, Y>>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let Some(labels) = &self.labels else {
            return Ok(());
        };
        let style = TextStyle::from((FONT, TOKEN_FONT_SIZE));
        let style = if self.upright {
            // Turned, the text's right end sits under the tick and it reads upwards.
            style
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Right, VPos::Center))
        } else {
            style.pos(Pos::new(HPos::Center, VPos::Top))
        };
        let bottom = chart.plotting_area().get_pixel_range().1.end;
        for (index, label) in labels.iter().enumerate() {
            let y = chart.as_coord_spec().get_y_range().start;
            let (x, _) = chart.backend_coord(&(FlowChart::x(index), y));
            root.draw_text(label, &style, (x, bottom + 8))?;
        }
        Ok(())
    }
}

/// `token` as a tick label: whitespace made visible, cut short after [`TOKEN_CHARS`] characters.
fn visible_token(token: &str) -> String {
    let shown: Vec<char> = token
        .chars()
        .map(|c| match c {
            '\n' => '↵',
            '\t' => '⇥',
            c if c.is_whitespace() => '␣',
            c if c.is_control() => '·',
            c => c,
        })
        .collect();
    shorten(&shown.into_iter().collect::<String>(), TOKEN_CHARS)
}

/// `text` cut to at most `chars` characters, the last being "…" when it is cut.
fn shorten(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_string();
    }
    let mut short: String = text.chars().take(chars.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// A tick label for whole numbers; other ticks stay unlabelled.
fn whole_number(value: &f64) -> String {
    if (value - value.round()).abs() < 1e-6 {
        format!("{value:.0}")
    } else {
        String::new()
    }
}

/// A tick label on the gradient axis, whose values are base-10 exponents: `10⁻⁹` for whole
/// exponents; other ticks stay unlabelled.
fn power_of_ten(exponent: &f64) -> String {
    if (exponent - exponent.round()).abs() > 1e-6 {
        return String::new();
    }
    let digits: String = format!("{:.0}", exponent.round() + 0.0) // + 0.0 turns -0 into 0
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            '0' => '⁰',
            '1' => '¹',
            '2' => '²',
            '3' => '³',
            '4' => '⁴',
            '5' => '⁵',
            '6' => '⁶',
            '7' => '⁷',
            '8' => '⁸',
            '9' => '⁹',
            c => c,
        })
        .collect();
    format!("10{digits}")
}

/// The heatmap colour of a hidden state: blue at -1, white at 0, red at +1, linear in between.
fn diverging(value: f32) -> RGBColor {
    if value.is_nan() {
        return MISSING_COLOUR;
    }
    let value = value.clamp(-1.0, 1.0);
    let (end, strength) = if value < 0.0 {
        (COLD, -value)
    } else {
        (HOT, value)
    };
    let mix = |c: u8| (255.0 + (f32::from(c) - 255.0) * strength).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

/// How many tokens share a heatmap column, so that at most [`MAX_CELLS`] cells are drawn.
fn tokens_per_column(tokens: usize, hidden: usize) -> usize {
    tokens.saturating_mul(hidden).div_ceil(MAX_CELLS).max(1)
}

/// The classes that get a line: all, or the [`MAX_CLASS_LINES`] most probable after the last
/// token plus `target`; in class order.
fn shown_classes(last: &[f32], target: usize) -> Vec<usize> {
    let mut classes: Vec<usize> = (0..last.len()).collect();
    if last.len() > MAX_CLASS_LINES {
        let key = |c: usize| if last[c].is_nan() { f32::MIN } else { last[c] };
        classes.sort_by(|&a, &b| key(b).total_cmp(&key(a)));
        classes.truncate(MAX_CLASS_LINES);
        if !classes.contains(&target) {
            classes.push(target);
        }
        classes.sort_unstable();
    }
    classes
}

/// The range of the gradient axis, in base-10 exponents: the whole decades around the given
/// exponents (`log10` of the floored finite norms), at least one decade.
fn gradient_range(exponents: &[f64]) -> std::ops::Range<f64> {
    let (lo, hi) = exponents
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return -1.0..1.0;
    }
    let (lo, hi) = (lo.floor(), hi.ceil());
    if hi > lo { lo..hi } else { lo..lo + 1.0 }
}

/// How many ticks the gradient axis asks for: one a decade up to 10 decades; beyond that the
/// axis picks round steps (and unlabelled ones in between stay blank).
fn decade_ticks(range: &std::ops::Range<f64>) -> usize {
    ((range.end - range.start).round() as usize + 1).min(11)
}

/// Draws the whole flow chart (title and the three panels) onto `root`.
fn draw_flow<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &FlowChart,
    title: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let body = super::titled(root, title, 24)?;
    let (width, height) = body.dim_in_pixel();
    let plot_width = width.saturating_sub(SIDE + 2 * FLOW_MARGIN + FLOW_Y_AREA);
    let axis = TokenAxis::new(root, chart.tokens, plot_width)?;
    // Captions, margins and tick labels take what they need; the plots share the rest.
    let fixed = |x_labels: u32| CAPTION_HEIGHT + 2 * FLOW_MARGIN + x_labels;
    let top_fixed = fixed(axis.height);
    let middle_fixed = fixed(MIDDLE_X_AREA);
    let bottom_fixed = fixed(axis.height + X_DESC_HEIGHT);
    let free = height.saturating_sub(top_fixed + middle_fixed + bottom_fixed);
    let top = top_fixed + free * 46 / 100;
    let middle = middle_fixed + free * 27 / 100;
    let panels = body.split_by_breakpoints([] as [u32; 0], [top, top + middle]);
    draw_states(root, &panels[0], chart, &axis)?;
    draw_probabilities(root, &panels[1], chart, &axis)?;
    draw_gradients(root, &panels[2], chart, &axis)
}

/// Splits a panel into the chart (left) and the side strip for the legend (right).
fn chart_and_side<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
    let width = area.dim_in_pixel().0;
    area.split_horizontally(width.saturating_sub(SIDE))
}

/// The top panel: the hidden states as a heatmap, with a colour bar in the side strip.
fn draw_states<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    chart: &FlowChart,
    axis: &TokenAxis,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (left, side) = chart_and_side(area);
    let (n, hidden) = (chart.len(), chart.hidden);
    let per_column = tokens_per_column(n, hidden);
    let mut caption = if chart.flow.directions == 2 {
        let h = hidden / 2;
        format!("top layer's output after each token, units 1-{h} forwards, the rest backwards")
    } else {
        String::from("hidden state h_t after each token")
    };
    caption += ": -1 (blue) … +1 (red)";
    if per_column > 1 {
        caption += &format!(", {per_column} tokens averaged a column");
    }
    let mut heatmap = ChartBuilder::on(&left)
        .caption(caption, (FONT, 18))
        .margin(FLOW_MARGIN)
        .x_label_area_size(axis.height)
        .y_label_area_size(FLOW_Y_AREA)
        .build_cartesian_2d(axis.range.clone(), -0.5..hidden as f64 - 0.5)?;
    let x_label = axis.mesh_label();
    heatmap
        .configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .x_labels(axis.ticks)
        .x_label_formatter(&x_label)
        .y_labels(10)
        .y_label_formatter(&whole_number)
        .y_desc("hidden unit")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()?;

    let states = &chart.flow.states;
    let cells = (0..n).step_by(per_column).flat_map(|start| {
        let end = (start + per_column).min(n);
        let x0 = FlowChart::x(start) - 0.5;
        let x1 = FlowChart::x(end - 1) + 0.5;
        (0..hidden).map(move |unit| {
            let sum: f32 = states[start..end].iter().map(|h| h[unit]).sum();
            let colour = diverging(sum / (end - start) as f32);
            let y = unit as f64;
            Rectangle::new([(x0, y - 0.5), (x1, y + 0.5)], colour.filled())
        })
    });
    heatmap.draw_series(cells)?;
    axis.draw_tokens(root, &heatmap)?;

    // The colour bar: +1 at the top, -1 at the bottom of the heatmap's height.
    let (_, rows) = heatmap.plotting_area().get_pixel_range();
    let x0 = side.get_base_pixel().0 + 12;
    let (bar_top, bar_height) = (rows.start, (rows.end - rows.start).max(2));
    for y in 0..bar_height {
        let value = 1.0 - 2.0 * y as f32 / (bar_height - 1) as f32;
        root.draw(&Rectangle::new(
            [(x0, bar_top + y), (x0 + 18, bar_top + y + 1)],
            diverging(value).filled(),
        ))?;
    }
    root.draw(&Rectangle::new(
        [(x0, bar_top), (x0 + 18, bar_top + bar_height - 1)],
        NOTE_COLOUR,
    ))?;
    let style = TextStyle::from((FONT, 14)).pos(Pos::new(HPos::Left, VPos::Center));
    for (text, y) in [
        ("+1", bar_top),
        ("0", bar_top + bar_height / 2),
        ("-1", bar_top + bar_height - 1),
    ] {
        root.draw_text(text, &style, (x0 + 24, y))?;
    }
    root.draw_text("h_t", &style, (x0 + 60, bar_top + bar_height / 2))
}

/// The middle panel: one line a class, with the legend in the side strip.
fn draw_probabilities<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    chart: &FlowChart,
    axis: &TokenAxis,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (left, side) = chart_and_side(area);
    let probs = &chart.flow.probs;
    let classes = probs[0].len();
    let shown = shown_classes(&probs[chart.len() - 1], chart.target);
    let caption = if shown.len() < classes {
        format!(
            "class probabilities after each token ({} most probable at the end{} of {classes})",
            MAX_CLASS_LINES.min(shown.len()),
            if shown.len() > MAX_CLASS_LINES {
                " + target"
            } else {
                ""
            },
        )
    } else {
        "class probabilities after each token".to_string()
    };
    let mut lines = ChartBuilder::on(&left)
        .caption(caption, (FONT, 18))
        .margin(FLOW_MARGIN)
        .x_label_area_size(MIDDLE_X_AREA)
        .y_label_area_size(FLOW_Y_AREA)
        .build_cartesian_2d(axis.range.clone(), 0.0..1.0)?;
    lines
        .configure_mesh()
        .bold_line_style(MESH_COLOUR)
        .light_line_style(WHITE)
        .x_labels(axis.ticks)
        .x_label_formatter(&|_| String::new())
        .y_labels(6)
        .y_label_formatter(&|v| format!("{v:.1}"))
        .y_desc("probability")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()?;

    let point_size = if chart.len() <= FLOW_MARKERS_UP_TO {
        3
    } else {
        0
    };
    let style_of = |rank: usize, class: usize| {
        let width = if class == chart.target { 4 } else { 2 };
        PALETTE[rank].filled().stroke_width(width)
    };
    // The target last, so that it lies on top.
    let mut order: Vec<(usize, usize)> = shown.iter().copied().enumerate().collect();
    order.sort_by_key(|&(_, class)| class == chart.target);
    for (rank, class) in order {
        let points = probs.iter().enumerate().filter_map(|(t, p)| {
            let value = f64::from(p[class]);
            value.is_finite().then_some((FlowChart::x(t), value))
        });
        let size = if class == chart.target {
            point_size + 1
        } else {
            point_size
        };
        lines.draw_series(LineSeries::new(points, style_of(rank, class)).point_size(size))?;
    }

    // The legend, in the side strip so that it hides no line.
    let (_, rows) = lines.plotting_area().get_pixel_range();
    let x0 = side.get_base_pixel().0 + 8;
    let text = TextStyle::from((FONT, 14)).pos(Pos::new(HPos::Left, VPos::Center));
    let mut y = rows.start + 8;
    for (rank, &class) in shown.iter().enumerate() {
        let style = style_of(rank, class);
        root.draw(&PathElement::new(vec![(x0, y), (x0 + 22, y)], style))?;
        let mut label = shorten(&chart.labels[class], 15);
        if class == chart.target {
            label = shorten(&chart.labels[class], 11) + " (target)";
        }
        root.draw_text(&label, &text, (x0 + 28, y))?;
        y += 18;
    }
    if shown.len() < classes {
        let note = text.color(&NOTE_COLOUR);
        let hidden = classes - shown.len();
        let s = if hidden == 1 { "" } else { "es" };
        root.draw_text(&format!("({hidden} more class{s})"), &note, (x0, y))?;
    }
    Ok(())
}

/// The bottom panel: `‖∂L/∂h_t‖` on a log scale.
fn draw_gradients<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    chart: &FlowChart,
    axis: &TokenAxis,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (left, _) = chart_and_side(area);
    let points: Vec<(f64, f64)> = chart
        .flow
        .gradient_norms
        .iter()
        .enumerate()
        .filter(|(_, g)| g.is_finite())
        .map(|(t, &g)| (FlowChart::x(t), f64::from(g).max(GRADIENT_FLOOR).log10()))
        .collect();
    let exponents: Vec<f64> = points.iter().map(|&(_, e)| e).collect();
    // a log scale drawn as exponents on a linear axis, so that every whole decade is a tick
    let range = gradient_range(&exponents);
    let ticks = decade_ticks(&range);
    let caption = format!(
        "‖∂L/∂h_t‖: gradient of the loss for \"{}\"",
        shorten(&chart.labels[chart.target], 40)
    );
    let x_desc = if axis.labels.is_some() {
        "token"
    } else {
        "token position"
    };
    let mut gradients = ChartBuilder::on(&left)
        .caption(caption, (FONT, 18))
        .margin(FLOW_MARGIN)
        .x_label_area_size(axis.height + X_DESC_HEIGHT)
        .y_label_area_size(FLOW_Y_AREA)
        .build_cartesian_2d(axis.range.clone(), range)?;
    let x_label = axis.mesh_label();
    gradients
        .configure_mesh()
        .bold_line_style(MESH_COLOUR)
        .light_line_style(WHITE)
        .x_labels(axis.ticks)
        .x_label_formatter(&x_label)
        .y_labels(ticks)
        .y_label_formatter(&power_of_ten)
        .x_desc(x_desc)
        .y_desc("‖∂L/∂h_t‖ (log)")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()?;
    let point_size = if chart.len() <= FLOW_MARKERS_UP_TO {
        3
    } else {
        0
    };
    let style = GRADIENT_COLOUR.filled().stroke_width(2);
    gradients.draw_series(LineSeries::new(points, style).point_size(point_size))?;
    axis.draw_tokens(root, &gradients)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::tests::{png_size, scratch_dir};
    use std::fs;

    /// A made-up flow of `tokens` tokens, `hidden` units and `classes` classes: states sweeping
    /// through [-1, 1] (the first two exactly +1 and -1), probabilities drifting towards class 0,
    /// gradient norms falling geometrically from 1 at the last token to 1e-9 at the first.
    fn flow(tokens: usize, hidden: usize, classes: usize) -> Flow {
        let states = (0..tokens)
            .map(|t| {
                let mut h: Vec<f32> = (0..hidden)
                    .map(|u| ((t * 7 + u * 3) as f32 * 0.37).sin())
                    .collect();
                h[0] = 1.0;
                if hidden > 1 {
                    h[1] = -1.0;
                }
                h
            })
            .collect();
        let probs = (0..tokens)
            .map(|t| {
                let drift = t as f32 / tokens as f32;
                let logits: Vec<f32> = (0..classes)
                    .map(|c| {
                        if c == 0 {
                            3.0 * drift
                        } else {
                            (c as f32 * 0.9 + t as f32).sin()
                        }
                    })
                    .collect();
                let total: f32 = logits.iter().map(|l| l.exp()).sum();
                logits.iter().map(|l| l.exp() / total).collect()
            })
            .collect();
        let last = tokens.saturating_sub(1).max(1) as f32;
        let gradient_norms = (0..tokens)
            .map(|t| 10f32.powf(-9.0 * (last - t as f32) / last))
            .collect();
        Flow {
            states,
            probs,
            ends: (1..=tokens).collect(),
            gradient_norms,
            directions: 1,
        }
    }

    fn words(tokens: usize) -> Vec<String> {
        let text = [
            "the",
            " ",
            "movie",
            "was",
            "not",
            "at",
            "all",
            "what",
            "I",
            "expected",
            ",",
            "extraordinarily",
            "\n",
            "good",
        ];
        (0..tokens)
            .map(|t| text[t % text.len()].to_string())
            .collect()
    }

    fn class_names(classes: usize) -> Vec<String> {
        let names = ["positive", "negative", "neutral"];
        (0..classes)
            .map(|c| names.get(c).map_or(format!("class {c}"), |n| n.to_string()))
            .collect()
    }

    #[test]
    fn the_flow_size_grows_with_the_tokens_within_bounds() {
        assert_eq!(flow_size(1), (900, 900));
        assert_eq!(flow_size(12), (900, 900));
        assert_eq!(flow_size(40), (1160, 900));
        assert_eq!(flow_size(300), (2400, 900));
        assert_eq!(flow_size(usize::MAX), (2400, 900));
    }

    #[test]
    fn twelve_tokens_make_a_png_of_the_chosen_size_and_nothing_else() {
        let dir = scratch_dir("flow12");
        let path = dir.join("flow.png");
        let f = flow(12, 16, 3);
        plot_flow(&words(12), &class_names(3), 0, &f, "12 tokens", &path).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(png_size(&bytes), flow_size(12));
        assert!(bytes.len() > 20_000, "only {} bytes", bytes.len());
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["flow.png"], "temporary files left behind");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Draws the flow chart into memory and returns the colours it uses.
    fn colours_of(tokens: &[String], labels: &[String], target: usize, f: &Flow) -> Vec<u8> {
        register_font_once();
        let chart = FlowChart::new(tokens, labels, target, f).unwrap();
        let size = flow_size(tokens.len());
        let mut buf = vec![0u8; (size.0 * size.1 * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
            draw_flow(&root, &chart, "in memory").unwrap();
            root.present().unwrap();
        }
        buf
    }

    #[test]
    fn the_drawn_flow_shows_the_heatmap_the_classes_and_the_gradient() {
        let buf = colours_of(&words(12), &class_names(3), 1, &flow(12, 16, 3));
        let colours: std::collections::HashSet<&[u8]> = buf.chunks(3).collect();
        let has = |c: RGBColor| colours.contains(&[c.0, c.1, c.2][..]);
        assert_eq!(diverging(1.0), HOT);
        assert_eq!(diverging(-1.0), COLD);
        assert_eq!(diverging(0.0), WHITE);
        assert!(has(HOT), "no red cell");
        assert!(has(COLD), "no blue cell");
        let f = flow(12, 16, 3);
        let missing = f
            .states
            .iter()
            .flatten()
            .filter(|&&h| !has(diverging(h)))
            .count();
        assert_eq!(missing, 0, "hidden states without their cell");
        for (class, &colour) in PALETTE[..3].iter().enumerate() {
            assert!(has(colour), "class {class} has no line");
        }
        assert!(has(GRADIENT_COLOUR), "no gradient line");
    }

    #[test]
    fn three_hundred_tokens_and_128_units_are_drawn_with_positions() {
        let dir = scratch_dir("flow300");
        let path = dir.join("long.png");
        let tokens = words(300);
        let f = flow(300, 128, 2);
        plot_flow(&tokens, &class_names(2), 1, &f, "300 tokens", &path).unwrap();
        assert_eq!(png_size(&fs::read(&path).unwrap()), (2400, 900));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn zero_denormal_and_non_finite_gradient_norms_are_drawn() {
        let dir = scratch_dir("flowzero");
        let path = dir.join("zero.png");
        let mut f = flow(12, 4, 2);
        f.gradient_norms[0] = 0.0;
        f.gradient_norms[1] = 1e-42;
        f.gradient_norms[2] = f32::NAN;
        f.gradient_norms[3] = f32::INFINITY;
        f.states[5][2] = f32::NAN;
        f.probs[6][0] = f32::NAN;
        plot_flow(&words(12), &class_names(2), 0, &f, "zeros", &path).unwrap();
        f.gradient_norms = vec![0.0; 12];
        plot_flow(&words(12), &class_names(2), 0, &f, "all zero", &path).unwrap();
        f.gradient_norms = vec![f32::NAN; 12];
        plot_flow(&words(12), &class_names(2), 0, &f, "all NaN", &path).unwrap();
        assert_eq!(gradient_range(&[]), -1.0..1.0);
        assert_eq!(gradient_range(&[GRADIENT_FLOOR.log10(); 3]), -30.0..-29.0);
        assert_eq!(
            gradient_range(&[2e-9f64.log10(), 0.5f64.log10()]),
            -9.0..0.0
        );
        assert_eq!(decade_ticks(&(-3.0..-1.0)), 3);
        assert_eq!(decade_ticks(&(-30.0..0.0)), 11);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_single_token_and_a_single_unit_are_drawn() {
        let dir = scratch_dir("flowone");
        let path = dir.join("one.png");
        plot_flow(&words(1), &class_names(2), 0, &flow(1, 1, 2), "one", &path).unwrap();
        assert_eq!(png_size(&fs::read(&path).unwrap()), (900, 900));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn many_classes_draw_the_most_probable_and_the_target() {
        let mut last = vec![0.01; 20];
        for (c, p) in [(3, 0.3), (7, 0.2), (1, 0.1), (0, 0.05), (9, 0.04)] {
            last[c] = p;
        }
        last[12] = 0.02;
        last[19] = f32::NAN;
        let shown = shown_classes(&last, 19);
        assert_eq!(shown.len(), MAX_CLASS_LINES + 1);
        for c in [0, 1, 3, 7, 9, 12, 19] {
            assert!(shown.contains(&c), "class {c} missing from {shown:?}");
        }
        assert!(shown.windows(2).all(|w| w[0] < w[1]), "{shown:?}");
        assert_eq!(shown_classes(&last, 3).len(), MAX_CLASS_LINES);
        assert_eq!(shown_classes(&[0.5, 0.5], 1), [0, 1]);

        let dir = scratch_dir("flowmany");
        let path = dir.join("many.png");
        let labels = class_names(20);
        plot_flow(
            &words(50),
            &labels,
            19,
            &flow(50, 32, 20),
            "20 classes",
            &path,
        )
        .unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn big_flows_average_neighbouring_tokens() {
        assert_eq!(tokens_per_column(1000, 500), 1);
        assert_eq!(tokens_per_column(1000, 512), 2);
        assert_eq!(tokens_per_column(5000, 512), 6);
        assert_eq!(tokens_per_column(0, 512), 1);
    }

    #[test]
    fn tokens_are_shown_with_visible_whitespace_and_cut_short() {
        assert_eq!(visible_token("the"), "the");
        assert_eq!(visible_token(" "), "␣");
        assert_eq!(visible_token("a b\n\t"), "a␣b↵⇥");
        assert_eq!(visible_token("extraordinarily"), "extraordina…");
        assert_eq!(visible_token("twelve chars").chars().count(), 12);
        assert_eq!(visible_token("écrasé"), "écrasé");
        assert_eq!(power_of_ten(&-9.0), "10⁻⁹");
        assert_eq!(power_of_ten(&0.0), "10⁰");
        assert_eq!(power_of_ten(&12.0), "10¹²");
        assert_eq!(power_of_ten(&-2.5), "");
        assert_eq!(power_of_ten(&-0.0), "10⁰");
        assert_eq!(whole_number(&3.0), "3");
        assert_eq!(whole_number(&2.5), "");
    }

    #[test]
    fn empty_or_mismatched_flows_are_errors_and_write_nothing() {
        let path = Path::new("never-flow.png");
        let f = flow(12, 8, 3);
        let (tokens, labels) = (words(12), class_names(3));
        let message = |result: Result<()>| match result.unwrap_err() {
            Error::Plot { message, .. } => message,
            other => panic!("not a plot error: {other}"),
        };
        assert!(message(plot_flow(&[], &labels, 0, &f, "x", path)).contains("no tokens"));
        let m = message(plot_flow(&words(11), &labels, 0, &f, "x", path));
        assert!(m.contains("12 hidden states for 11 tokens"), "{m}");
        let mut short = f.clone();
        short.gradient_norms.pop();
        let m = message(plot_flow(&tokens, &labels, 0, &short, "x", path));
        assert!(m.contains("11 gradient norms for 12 tokens"), "{m}");
        let mut ragged = f.clone();
        ragged.states[4].pop();
        let m = message(plot_flow(&tokens, &labels, 0, &ragged, "x", path));
        assert!(m.contains("token 5 has 7 units"), "{m}");
        let mut ragged = f.clone();
        ragged.probs[2].push(0.0);
        let m = message(plot_flow(&tokens, &labels, 0, &ragged, "x", path));
        assert!(m.contains("after token 3"), "{m}");
        let m = message(plot_flow(&tokens, &labels[..2], 0, &f, "x", path));
        assert!(m.contains("2 labels for 3 classes"), "{m}");
        let m = message(plot_flow(&tokens, &labels, 3, &f, "x", path));
        assert!(m.contains("target class 3"), "{m}");
        assert!(!path.exists());
    }

    #[test]
    fn a_missing_folder_for_the_flow_is_named_and_nothing_is_left_behind() {
        let dir = scratch_dir("flowmissing");
        let missing = dir.join("no-such-folder");
        let f = flow(5, 4, 2);
        let err = plot_flow(
            &words(5),
            &class_names(2),
            0,
            &f,
            "x",
            &missing.join("f.png"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no-such-folder"), "{err}");
        assert!(!missing.exists());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
