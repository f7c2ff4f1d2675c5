//! Charts: the training curves (loss and accuracy per epoch, train and test) here, and in
//! `flow` the flow of one text through the network (hidden states, class probabilities and
//! gradient norms per token).

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::error::{Error, Result};
use crate::fsutil::replace_with;
use crate::metrics::{EpochMetrics, Score};

mod flow;
pub use flow::{flow_size, plot_flow};

/// Width and height of the image in pixels.
const SIZE: (u32, u32) = (1200, 500);
/// The font family every text uses; registered from the embedded DejaVu Sans.
const FONT: &str = "sans-serif";
const TRAIN_COLOUR: RGBColor = RGBColor(31, 119, 180);
const VALID_COLOUR: RGBColor = RGBColor(44, 160, 44);
const TEST_COLOUR: RGBColor = RGBColor(255, 127, 14);
const MESH_COLOUR: RGBColor = RGBColor(220, 220, 220);
/// Histories up to this many epochs get a marker on every point, so that a single epoch shows.
const MARKERS_UP_TO: usize = 40;

/// Draws the training curves of `history` into a PNG at `path` (written atomically).
///
/// Two panels side by side: the cross-entropy loss and the accuracy (in %) per epoch, each with
/// a "train" curve and, when epochs have validation or test scores, a "validation" and a "test"
/// curve. Non-finite values are left
/// out of the curves. The format follows the extension of `path` (`.png`).
pub fn plot_curves(history: &[EpochMetrics], title: &str, path: &Path) -> Result<()> {
    let plot_error = |message: String| Error::Plot {
        path: path.to_path_buf(),
        message,
    };
    if history.is_empty() {
        return Err(plot_error("no epochs to plot".into()));
    }
    register_font_once();
    replace_with(path, |tmp| render(history, title, tmp).map_err(plot_error))
}

/// The image formats a chart can be written in, by the extension of its path.
pub const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

/// Checks, before any work, that a chart can be written at `path` in the format its extension
/// names (one of [`EXTENSIONS`], in any case): a run should not train for an hour and then
/// fail to draw its chart.
///
/// # Errors
/// [`Error::Plot`] naming the extension, or its absence, and the ones that can be used.
pub fn check_path(path: &Path) -> Result<()> {
    let extension = path.extension().map(|e| e.to_string_lossy().to_lowercase());
    if extension
        .as_deref()
        .is_some_and(|e| EXTENSIONS.contains(&e))
    {
        return Ok(());
    }
    let given = match extension {
        Some(e) => format!("not .{e}"),
        None => "and this path has none".into(),
    };
    Err(Error::Plot {
        path: path.to_path_buf(),
        message: format!("the image format follows the extension: .png, .jpg or .bmp, {given}"),
    })
}

/// Registers the embedded font as [`FONT`], once per process.
fn register_font_once() {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        let bytes = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        if register_font(FONT, FontStyle::Normal, bytes).is_err() {
            panic!("the embedded DejaVu Sans font is not a valid font");
        }
    });
}

/// Draws the chart into the PNG file `png`.
///
/// The backend is dropped before this returns, so the file is closed. After a failure the
/// backend's `Drop` still saves whatever was drawn; [`replace_with`] removes that file.
fn render(history: &[EpochMetrics], title: &str, png: &Path) -> Result<(), String> {
    let root = BitMapBackend::new(png, SIZE).into_drawing_area();
    draw(&root, history, title)
        .and_then(|()| root.present())
        .map_err(|e| e.to_string())
}

/// Picks one of an epoch's scores (train or test), if it has it.
type ScoreOf = fn(&EpochMetrics) -> Option<Score>;

/// One of the two panels: which score it shows and how.
struct Panel<'a> {
    caption: &'a str,
    y_desc: &'a str,
    y_max: f64,
    value: fn(&Score) -> f64,
    y_format: &'a dyn Fn(&f64) -> String,
    legend: SeriesLabelPosition,
}

/// The smallest size a title is shrunk to before it is cut.
const MIN_TITLE: u32 = 14;
/// The room kept free on each side of a title, in pixels.
const TITLE_MARGIN: u32 = 12;

/// `root` below `title`, drawn in [`FONT`] at `size`, or smaller when it would not fit the
/// width (a title is centred, so one too wide lost both of its ends): as large as fits, down
/// to [`MIN_TITLE`]; a title too long even then is cut, ending in "…".
pub(crate) fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    size: u32,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let (title, size) = fit_title(root, title, size)?;
    root.titled(&title, (FONT, size))
}

/// The title and its size as [`titled`] draws them on `root`.
fn fit_title<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    size: u32,
) -> Result<(String, u32), DrawingAreaErrorKind<DB::ErrorType>> {
    let room = root.dim_in_pixel().0.saturating_sub(2 * TITLE_MARGIN);
    let width = |text: &str, size: u32| {
        root.estimate_text_size(text, &(FONT, size).into_font().into())
            .map(|(w, _)| w)
    };
    let mut size = size;
    while size > MIN_TITLE && width(title, size)? > room {
        size -= 1;
    }
    let mut kept: Vec<char> = title.chars().collect();
    let mut fitted = title.to_string();
    while width(&fitted, size)? > room && kept.pop().is_some() {
        fitted = kept.iter().collect::<String>() + "…";
    }
    Ok((fitted, size))
}

/// Draws the whole chart (title and both panels) onto `root`.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    history: &[EpochMetrics],
    title: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let root = titled(root, title, 26)?;
    let panels = root.split_evenly((1, 2));
    let max_loss = history
        .iter()
        .flat_map(|m| [Some(m.train), m.valid, m.test])
        .flatten()
        .map(|s| f64::from(s.loss))
        .filter(|loss| loss.is_finite())
        .fold(0.0, f64::max);
    let loss = Panel {
        caption: "Loss",
        y_desc: "cross-entropy",
        y_max: if max_loss > 0.0 { max_loss * 1.1 } else { 1.0 },
        value: |s| f64::from(s.loss),
        y_format: &|v| format!("{v:.2}"),
        legend: SeriesLabelPosition::UpperRight,
    };
    let accuracy = Panel {
        caption: "Accuracy",
        y_desc: "accuracy (%)",
        y_max: 105.0,
        value: |s| f64::from(s.accuracy) * 100.0,
        y_format: &|v| format!("{v:.0} %"),
        legend: SeriesLabelPosition::LowerRight,
    };
    draw_panel(&panels[0], history, loss)?;
    draw_panel(&panels[1], history, accuracy)
}

/// Draws one panel: axes, mesh, the train (and test) curve and the legend.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    history: &[EpochMetrics],
    panel: Panel,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let first = history.iter().map(|m| m.epoch).min().unwrap_or(1);
    let last = history.iter().map(|m| m.epoch).max().unwrap_or(1);
    // One epoch of room on either side keeps a single point (and the end points) off the frame.
    let x_range = first.saturating_sub(1)..last.saturating_add(1);
    let mut chart = ChartBuilder::on(area)
        .caption(panel.caption, (FONT, 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, 0.0..panel.y_max)?;
    chart
        .configure_mesh()
        .bold_line_style(MESH_COLOUR)
        .light_line_style(WHITE)
        .x_desc("epoch")
        .y_desc(panel.y_desc)
        .y_label_formatter(panel.y_format)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()?;

    let point_size = if history.len() <= MARKERS_UP_TO { 4 } else { 0 };
    let mut series: Vec<(&str, RGBColor, ScoreOf)> =
        vec![("train", TRAIN_COLOUR, |m| Some(m.train))];
    if history.iter().any(|m| m.valid.is_some()) {
        series.push(("validation", VALID_COLOUR, |m| m.valid));
    }
    if history.iter().any(|m| m.test.is_some()) {
        series.push(("test", TEST_COLOUR, |m| m.test));
    }
    for (label, colour, score) in series {
        let points = history.iter().filter_map(|m| {
            let value = (panel.value)(&score(m)?);
            value.is_finite().then_some((m.epoch, value))
        });
        let style = colour.filled().stroke_width(2);
        chart
            .draw_series(LineSeries::new(points, style).point_size(point_size))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
    }
    chart
        .configure_series_labels()
        .position(panel.legend)
        .margin(12)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    /// A made-up history of `epochs` epochs: falling loss, rising accuracy, test a bit worse.
    fn history(epochs: usize, with_test: bool) -> Vec<EpochMetrics> {
        (1..=epochs)
            .map(|epoch| {
                let t = epoch as f32 / epochs as f32;
                let train = Score {
                    loss: 2.3 * (-3.0 * t).exp() + 0.05,
                    accuracy: 0.1 + 0.85 * (1.0 - (-4.0 * t).exp()),
                };
                let test = Score {
                    loss: train.loss * 1.2 + 0.1 * (epoch as f32).sin().abs(),
                    accuracy: train.accuracy * 0.9,
                };
                EpochMetrics {
                    epoch,
                    train,
                    valid: None,
                    test: with_test.then_some(test),
                    lr: 0.1,
                    valid_classes: Vec::new(),
                }
            })
            .collect()
    }

    /// A fresh, empty folder for one test.
    pub(super) fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rnn-plot-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The width and height from a PNG's IHDR chunk (no decoder is reachable without a new
    /// dependency).
    pub(super) fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
        assert_eq!(&bytes[12..16], b"IHDR");
        let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        (word(16), word(20))
    }

    #[test]
    fn fifty_epochs_make_a_png_of_the_chosen_size_and_nothing_else() {
        let dir = scratch_dir("fifty");
        let path = dir.join("curves.png");
        plot_curves(&history(50, true), "50 epochs", &path).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(png_size(&bytes), SIZE);
        // A blank 1200×500 PNG compresses to a few kB; curves, text and anti-aliasing do not.
        assert!(bytes.len() > 20_000, "only {} bytes", bytes.len());
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["curves.png"], "temporary files left behind");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_drawn_chart_is_not_blank() {
        register_font_once();
        let (w, h) = SIZE;
        let mut buf = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, SIZE).into_drawing_area();
            draw(&root, &history(50, true), "not blank").unwrap();
            root.present().unwrap();
        }
        let colours: std::collections::HashSet<&[u8]> = buf.chunks(3).collect();
        assert!(colours.len() > 3, "only {} colours", colours.len());
        let has = |c: RGBColor| colours.contains(&[c.0, c.1, c.2][..]);
        assert!(has(TRAIN_COLOUR) && has(TEST_COLOUR), "a curve is missing");
    }

    #[test]
    fn a_long_title_is_shrunk_to_fit_and_a_longer_one_cut() {
        register_font_once();
        let (w, h) = SIZE;
        let mut buf = vec![0u8; (w * h * 3) as usize];
        let root = BitMapBackend::with_buffer(&mut buf, SIZE).into_drawing_area();
        let fits = |title: &str, size: u32| {
            let (w, _) = root
                .estimate_text_size(title, &(FONT, size).into_font().into())
                .unwrap();
            w <= SIZE.0 - 2 * TITLE_MARGIN
        };
        let short = "train.tsv: lstm";
        assert_eq!(fit_title(&root, short, 26).unwrap(), (short.into(), 26));
        // the title of a run with many settings, over the chart's width at 26
        let long = "a-long-data-file-name.tsv: bidirectional lstm, H = 64, embedding 64, max \
                    pooling, dropout 0.3, adam lr = 0.001, batch 32, balanced weights";
        assert!(!fits(long, 26));
        let (title, size) = fit_title(&root, long, 26).unwrap();
        assert_eq!(title, long, "shrunk, not cut");
        assert!(
            (MIN_TITLE..26).contains(&size) && fits(&title, size),
            "{size}"
        );
        let longer = long.repeat(3);
        let (title, size) = fit_title(&root, &longer, 26).unwrap();
        assert_eq!(size, MIN_TITLE);
        assert!(title.ends_with('…') && fits(&title, size), "{title}");
        assert!(longer.starts_with(title.trim_end_matches('…')));
    }

    #[test]
    fn one_epoch_without_test_scores_is_drawn() {
        let dir = scratch_dir("one");
        let path = dir.join("one.png");
        plot_curves(&history(1, false), "one epoch", &path).unwrap();
        assert_eq!(png_size(&fs::read(&path).unwrap()), SIZE);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn non_finite_values_are_skipped() {
        let dir = scratch_dir("nan");
        let path = dir.join("nan.png");
        let mut h = history(10, true);
        h[3].train.loss = f32::NAN;
        h[4].test = Some(Score {
            loss: f32::INFINITY,
            accuracy: 0.5,
        });
        plot_curves(&h, "gaps", &path).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_empty_history_is_an_error() {
        let err = plot_curves(&[], "nothing", Path::new("never.png")).unwrap_err();
        assert!(matches!(&err, Error::Plot { message, .. } if message.contains("no epochs")));
        assert!(!Path::new("never.png").exists());
    }

    #[test]
    fn a_missing_folder_is_named_and_nothing_is_left_behind() {
        let dir = scratch_dir("missing");
        let missing = dir.join("no-such-folder");
        let err = plot_curves(&history(5, true), "x", &missing.join("c.png")).unwrap_err();
        assert!(err.to_string().contains("no-such-folder"), "{err}");
        assert!(!missing.exists());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
