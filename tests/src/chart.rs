//! The compare benchmark's chart: one panel per measure (units differ, so no shared axis), each
//! with a tunnelkit bar and an OpenSSH bar (medians; dots are the single rounds) and a verdict
//! line with the ratio, green where tunnelkit does better and red where OpenSSH does.
//!
//! Reads the `bench-results.json` that `compare` writes ([`Results::from_json`]) and draws a PNG
//! with plotters' bitmap backend. Text is drawn with a TTF file loaded at run time ([`load_font`]),
//! so building needs no system C library.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

/// Where Debian's `fonts-dejavu-core` puts the font used unless `TUNNELKIT_CHART_FONT` names one.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

const PANEL: (u32, u32) = (620, 240);
const HEADER: u32 = 70;
const COLUMNS: usize = 2;
/// Ratios within 2% of 1 are called even (a difference that small is noise on any machine).
const EVEN: f64 = 0.02;
const TUNNELKIT: RGBColor = RGBColor(31, 119, 180);
const OPENSSH: RGBColor = RGBColor(150, 150, 150);
const BETTER: RGBColor = RGBColor(30, 130, 50);
const WORSE: RGBColor = RGBColor(200, 40, 40);

/// Why a chart could not be drawn.
#[derive(Debug)]
pub enum ChartError {
    /// The TTF file is missing or unreadable.
    Font(PathBuf, String),
    /// The JSON is not what `compare` writes.
    Json(String),
    /// plotters failed (writing the PNG, most likely).
    Draw(String),
}

impl fmt::Display for ChartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChartError::Font(p, e) => write!(
                f,
                "cannot load the chart font {}: {e} (install the fonts-dejavu-core package, \
                 or set TUNNELKIT_CHART_FONT to a .ttf file)",
                p.display()
            ),
            ChartError::Json(e) => write!(f, "not a compare results file: {e}"),
            ChartError::Draw(e) => write!(f, "drawing the chart: {e}"),
        }
    }
}

impl std::error::Error for ChartError {}

/// One measure: medians, every round, and which way is better.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// As printed, e.g. `new connection, median (ms)`.
    pub measure: String,
    /// Axis unit, e.g. `ms`; empty for counts.
    pub unit: String,
    /// Median for tunnelkit.
    pub tunnelkit: f64,
    /// Median for OpenSSH.
    pub openssh: f64,
    /// Every round for tunnelkit.
    pub tunnelkit_all: Vec<f64>,
    /// Every round for OpenSSH.
    pub openssh_all: Vec<f64>,
    /// True for throughput and connection counts; false for times, memory and CPU.
    pub higher_is_better: bool,
}

/// A whole results file.
#[derive(Debug, Clone, PartialEq)]
pub struct Results {
    /// Alternating rounds behind each median.
    pub rounds: u64,
    /// Where it ran (cores, kernel), when recorded.
    pub machine: String,
    /// The measures, in the order measured.
    pub rows: Vec<Row>,
}

impl Results {
    /// Reads `compare`'s JSON. `unit` and `better` are optional (older files lack them): the
    /// unit then comes from the measure's `(...)` suffix, and higher is better for Gbit/s and
    /// for counts of intact connections.
    pub fn from_json(v: &serde_json::Value) -> Result<Results, ChartError> {
        let list = v["results"]
            .as_array()
            .ok_or_else(|| ChartError::Json("no \"results\" list".into()))?;
        let mut rows = Vec::new();
        for r in list {
            let measure = r["measure"]
                .as_str()
                .ok_or_else(|| ChartError::Json("a result without \"measure\"".into()))?
                .to_string();
            let num = |k: &str| {
                r[k].as_f64()
                    .ok_or_else(|| ChartError::Json(format!("{measure}: no number \"{k}\"")))
            };
            let all = |k: &str| -> Vec<f64> {
                r[k].as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
                    .unwrap_or_default()
            };
            let unit = r["unit"].as_str().map(str::to_string).unwrap_or_else(|| {
                measure
                    .rsplit_once('(')
                    .and_then(|(_, u)| u.strip_suffix(')'))
                    .unwrap_or("")
                    .to_string()
            });
            let higher_is_better = match r["better"].as_str() {
                Some(b) => b == "higher",
                None => higher_is_better(&measure, &unit),
            };
            rows.push(Row {
                tunnelkit: num("tunnelkit")?,
                openssh: num("openssh")?,
                tunnelkit_all: all("tunnelkit_all"),
                openssh_all: all("openssh_all"),
                measure,
                unit,
                higher_is_better,
            });
        }
        if rows.is_empty() {
            return Err(ChartError::Json("the results list is empty".into()));
        }
        Ok(Results {
            rounds: v["rounds"].as_u64().unwrap_or(0),
            machine: v["machine"].as_str().unwrap_or("").to_string(),
            rows,
        })
    }
}

/// Which way is better for a measure of `compare`: higher for throughput (Gbit/s) and counts of
/// intact connections, lower for everything else (times, memory, CPU).
pub fn higher_is_better(measure: &str, unit: &str) -> bool {
    unit == "Gbit/s" || measure.contains("intact")
}

/// Loads the TTF at `path` as plotters' sans-serif font. Only the first call in a process
/// loads (plotters keeps fonts for the process's life); later calls return its outcome.
pub fn load_font(path: &Path) -> Result<(), ChartError> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = LOADED.get_or_init(|| {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| "not a TrueType/OpenType font".to_string())
    });
    result
        .clone()
        .map_err(|e| ChartError::Font(path.to_path_buf(), e))
}

/// The font to use: `TUNNELKIT_CHART_FONT` when set, else [`DEFAULT_FONT`].
pub fn font_path() -> PathBuf {
    std::env::var_os("TUNNELKIT_CHART_FONT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FONT))
}

/// Draws `results` to the PNG at `out` (the font must be loaded: [`load_font`]).
pub fn render(results: &Results, out: &Path) -> Result<(), ChartError> {
    let draw = |e: &dyn fmt::Display| ChartError::Draw(e.to_string());
    let panel_rows = results.rows.len().div_ceil(COLUMNS);
    let size = (
        PANEL.0 * COLUMNS as u32,
        HEADER + PANEL.1 * panel_rows as u32,
    );
    let root = BitMapBackend::new(out, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw(&e))?;
    let (header, body) = root.split_vertically(HEADER);
    let rounds = match results.rounds {
        1 => "1 round".to_string(),
        n => format!("medians of {n} alternating rounds"),
    };
    let title = format!(
        "tunnelkit vs OpenSSH ssh -N -L, same sshd on loopback (WAN: 100 ms delay line): {rounds}"
    );
    let legend = format!(
        "bars: medians (blue tunnelkit, grey OpenSSH); dots: single rounds. {}",
        results.machine
    );
    for (text, size, y) in [(&title, 24, 10), (&legend, 16, 42)] {
        header
            .draw_text(
                text,
                &("sans-serif", size).into_font().color(&BLACK),
                (16, y),
            )
            .map_err(|e| draw(&e))?;
    }
    let panels = body.split_evenly((panel_rows, COLUMNS));
    for (row, area) in results.rows.iter().zip(panels) {
        panel(row, &area).map_err(|e| draw(&e))?;
    }
    root.present().map_err(|e| draw(&e))
}

/// The verdict line and its colour, e.g. `ratio 0.01, lower is better: tunnelkit 94x better`.
pub fn verdict(row: &Row) -> (String, RGBColor) {
    let ratio = row.tunnelkit / row.openssh;
    let way = if row.higher_is_better {
        "higher"
    } else {
        "lower"
    };
    if !ratio.is_finite() || ratio <= 0.0 {
        return (format!("no ratio ({way} is better)"), BLACK);
    }
    let tunnelkit_better = (ratio > 1.0) == row.higher_is_better;
    let factor = ratio.max(1.0 / ratio);
    let head = format!("tunnelkit/OpenSSH = {ratio:.2}, {way} is better: ");
    if factor < 1.0 + EVEN {
        (head + "even", BLACK)
    } else if tunnelkit_better {
        (
            head + &format!("tunnelkit {} better", times(factor)),
            BETTER,
        )
    } else {
        (head + &format!("OpenSSH {} better", times(factor)), WORSE)
    }
}

fn times(factor: f64) -> String {
    if factor >= 10.0 {
        format!("{factor:.0}x")
    } else {
        format!("{factor:.2}x")
    }
}

/// A number with three significant digits at most (none lost above 100), no trailing zeros.
fn short(v: f64) -> String {
    let decimals = match v.abs() {
        a if a >= 100.0 || a == 0.0 => 0,
        a if a >= 10.0 => 1,
        a if a >= 1.0 => 2,
        _ => 3,
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn panel<DB: DrawingBackend>(
    row: &Row,
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let area = area.margin(8, 8, 12, 16);
    let name = row
        .measure
        .rsplit_once(" (")
        .map_or(row.measure.as_str(), |(n, _)| n);
    let (text, color) = verdict(row);
    area.draw_text(name, &("sans-serif", 19).into_font().color(&BLACK), (4, 2))?;
    area.draw_text(
        &text,
        &("sans-serif", 15).into_font().color(&color),
        (4, 26),
    )?;
    let plot = area.split_vertically(48).1;
    let top = [row.tunnelkit, row.openssh]
        .into_iter()
        .chain(row.tunnelkit_all.iter().copied())
        .chain(row.openssh_all.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    // Room on the right for the value printed after the longer bar.
    let x_max = if top > 0.0 { top * 1.35 } else { 1.0 };
    let mut chart = ChartBuilder::on(&plot)
        .x_label_area_size(36)
        .y_label_area_size(86)
        .build_cartesian_2d(0.0..x_max, (0u32..1).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_labels(6)
        .x_label_formatter(&|v| short(*v))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(0) => "OpenSSH".into(),
            SegmentValue::CenterOf(1) => "tunnelkit".into(),
            _ => String::new(),
        })
        .x_desc(row.unit.as_str())
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 14))
        .draw()?;
    let bars = [
        (0u32, row.openssh, &row.openssh_all, OPENSSH),
        (1u32, row.tunnelkit, &row.tunnelkit_all, TUNNELKIT),
    ];
    for (y, median, all, color) in bars {
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(y)),
                (median, SegmentValue::Exact(y + 1)),
            ],
            color.filled(),
        );
        bar.set_margin(10, 10, 0, 0);
        chart.draw_series([bar])?;
        chart.draw_series(
            all.iter()
                .map(|v| Circle::new((*v, SegmentValue::CenterOf(y)), 4, BLACK.stroke_width(2))),
        )?;
        // After the bar and its dots, so none hides it.
        let end = all
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(median, f64::max);
        let label = format!("{} {}", short(median), row.unit);
        let style = ("sans-serif", 15)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        chart
            .draw_series([EmptyElement::at((end, SegmentValue::CenterOf(y)))
                + Text::new(label, (12, 0), style)])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> serde_json::Value {
        serde_json::json!({"rounds": 3, "machine": "2 cores, Linux", "results": [
            {"measure": "throughput 1 stream, aes128 (Gbit/s)", "tunnelkit": 8.35, "openssh": 7.87,
             "tunnelkit_all": [8.1, 8.35, 9.0], "openssh_all": [7.5, 7.87, 8.2]},
            {"measure": "new connection, median (ms)", "unit": "ms", "better": "lower",
             "tunnelkit": 0.47, "openssh": 43.9},
            {"measure": "1000 x 64 KiB echo, connections intact", "tunnelkit": 1000.0,
             "openssh": 897.0},
        ]})
    }

    #[test]
    fn reads_units_and_direction_old_and_new() {
        let r = Results::from_json(&sample()).unwrap();
        assert_eq!(r.rows.len(), 3);
        assert_eq!(r.rows[0].unit, "Gbit/s");
        assert!(r.rows[0].higher_is_better);
        assert!(!r.rows[1].higher_is_better);
        assert_eq!(r.rows[2].unit, "");
        assert!(r.rows[2].higher_is_better);
        assert!(Results::from_json(&serde_json::json!({"results": []})).is_err());
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(short(0.47), "0.47");
        assert_eq!(short(43.9), "43.9");
        assert_eq!(short(5.0), "5");
        assert_eq!(short(1000.0), "1000");
        assert_eq!(short(0.0005), "0.001");
    }

    #[test]
    fn verdicts_name_the_better_side() {
        let r = Results::from_json(&sample()).unwrap();
        assert!(verdict(&r.rows[0]).0.ends_with("tunnelkit 1.06x better"));
        assert!(verdict(&r.rows[1]).0.ends_with("tunnelkit 93x better"));
        let mut worse = r.rows[1].clone();
        worse.tunnelkit = 46.0;
        worse.openssh = 27.0;
        assert!(verdict(&worse).0.ends_with("OpenSSH 1.70x better"));
    }

    #[test]
    fn renders_a_png_of_the_expected_size() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("chart.png");
        load_font(&font_path()).unwrap_or_else(|e| panic!("{e}"));
        render(&Results::from_json(&sample()).unwrap(), &out).unwrap();
        let png = std::fs::read(&out).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        // Width and height from the IHDR chunk: 2 panels wide, 2 rows of panels.
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        assert_eq!(be(&png[16..20]), PANEL.0 * 2);
        assert_eq!(be(&png[20..24]), HEADER + PANEL.1 * 2);
    }
}
