//! Plots of an experiment's results as PNG image files, drawn in Rust.
//!
//! Four kinds, one function each, every one writing an 800 × 500 PNG with
//! a title, axes labelled with their units and a legend:
//!
//! - [`stale_rate`]: stale (orphan) rate against the block interval T,
//!   with the approximation 1 − e^(−Δ/T) for a propagation delay Δ;
//! - [`selfish_revenue`]: a selfish miner's revenue share against its hash
//!   share α, with Eyal and Sirer's closed form
//!   ([`crapcoin_core::measure::selfish_revenue`]) and the honest line;
//! - [`propagation_cdf`]: empirical CDFs of block propagation delays;
//! - [`heights`]: best-chain height over virtual time per node, with the
//!   fault schedule marked.
//!
//! Text is rendered from DejaVu Sans embedded in the binary (the `dejavu`
//! crate, through plotters' pure-Rust `ab_glyph` renderer): no system
//! font, fontconfig or Python is looked up, so a plot renders the same on
//! any machine. The picture is drawn into memory and only then written,
//! so a failure while drawing writes nothing.
//!
//! Bad data does not panic: values that are NaN, infinite or beyond
//! ±[`MAX_ABS_VALUE`] are skipped, an empty input draws empty axes, a
//! single point or all-equal values get an axis with some range.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Width of every plot, in pixels.
pub const WIDTH: u32 = 800;
/// Height of every plot, in pixels.
pub const HEIGHT: u32 = 500;

/// Colour (RGB) of the closed-form curves: 1 − e^(−Δ/T) in
/// [`stale_rate`] and Eyal and Sirer's revenue in [`selfish_revenue`].
/// Nothing else on those plots is drawn in it, so a reader (or a test)
/// can find the curve by its colour.
pub const CLOSED_FORM_RGB: [u8; 3] = [214, 39, 40];

/// Largest magnitude of a value that is plotted; larger ones are skipped
/// like NaN, so an absurd value cannot squash the axis or overflow the
/// pixel arithmetic.
pub const MAX_ABS_VALUE: f64 = 1e12;

/// Series drawn at most by [`propagation_cdf`]; the rest are skipped
/// (and logged).
pub const MAX_CDF_SERIES: usize = 20;

/// Nodes drawn one line each by [`heights`]; beyond this the plot shows
/// the min / median / max envelopes over all nodes instead.
pub const MAX_HEIGHT_LINES: usize = 50;

/// Fault marks drawn at most by [`heights`]; the rest are skipped (and
/// logged).
pub const MAX_MARKS: usize = 100;

/// Font family every text is drawn in (registered once, from the
/// embedded DejaVu Sans).
const FONT: &str = "sans-serif";

/// Span (largest T over smallest) from which [`stale_rate`] draws its T
/// axis on a logarithmic scale.
const LOG_AXIS_RATIO: f64 = 20.0;

/// Steps of a sampled closed-form curve.
const CURVE_STEPS: usize = 400;

/// Points a CDF is drawn with at most (more samples are drawn at
/// evenly spaced quantiles).
const CDF_POINTS: usize = 1_000;

/// Time steps the height envelopes are sampled at.
const ENVELOPE_STEPS: usize = 400;

/// Longest label drawn (series names and marks are cut beyond it).
const MAX_LABEL_CHARS: usize = 40;

/// Closed-form colour as plotters wants it.
const CLOSED_FORM: RGBColor = RGBColor(CLOSED_FORM_RGB[0], CLOSED_FORM_RGB[1], CLOSED_FORM_RGB[2]);
/// Measured points.
const MEASURED: RGBColor = RGBColor(31, 119, 180);
/// Medians and other summaries of the measured points.
const SUMMARY: RGBColor = RGBColor(8, 48, 107);
/// Reference lines (the honest share, fault marks).
const REFERENCE: RGBColor = RGBColor(110, 110, 110);
/// Series colours, cycled; none is [`CLOSED_FORM_RGB`].
const SERIES: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Why a plot could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// The embedded font could not be loaded into the renderer, so no
    /// text could be drawn.
    #[error("the embedded DejaVu Sans font could not be registered with the plot renderer")]
    Font,
    /// The renderer failed while drawing (the message is the renderer's).
    #[error("drawing the {plot} plot failed: {reason}")]
    Draw {
        /// Which plot was being drawn.
        plot: &'static str,
        /// The renderer's error.
        reason: String,
    },
    /// The drawn picture could not be encoded as PNG.
    #[error("encoding the {plot} plot as PNG failed: {reason}")]
    Encode {
        /// Which plot was being encoded.
        plot: &'static str,
        /// The encoder's error.
        reason: String,
    },
    /// The PNG file could not be written.
    #[error("cannot write the plot to {}: {source}", path.display())]
    Write {
        /// Where the plot was to be written.
        path: PathBuf,
        /// Why writing failed.
        #[source]
        source: std::io::Error,
    },
}

/// Stale (orphan) rate against block interval T: measured points (one
/// per run; several seeds per T allowed: every point is drawn, and the
/// median per T joined by a line), and the approximation 1 − e^(−Δ/T)
/// drawn beside them as a curve for the given propagation delay Δ
/// (`delay_secs`) in [`CLOSED_FORM_RGB`].
///
/// The T axis is logarithmic when the largest T is 20 times the smallest
/// or more (a sweep over decades), linear otherwise. Points with T ≤ 0 or
/// a value that is not finite are skipped; a delay that is negative or
/// not finite draws no curve (and is logged).
///
/// # Errors
///
/// [`PlotError`] when the picture cannot be drawn, encoded or written to
/// `path`.
pub fn stale_rate(
    path: &Path,
    points: &[(f64 /*T seconds*/, f64 /*stale rate 0..1*/)],
    delay_secs: f64,
) -> Result<(), PlotError> {
    const PLOT: &str = "stale rate";
    let points: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|&(t, r)| plottable(t) && t > 0.0 && plottable(r))
        .collect();
    let delay = (plottable(delay_secs) && delay_secs >= 0.0).then_some(delay_secs);
    if delay.is_none() {
        tracing::warn!(
            delay_secs,
            "stale-rate plot: propagation delay is not usable, no curve drawn"
        );
    }

    let (x0, x1) = match bounds(points.iter().map(|p| p.0)) {
        Some(b) => b,
        None => match delay {
            Some(d) if d > 0.0 => (d, 20.0 * d),
            _ => (1.0, 10.0),
        },
    };
    // Sweeps over decades (say 1 s to 600 s) get a logarithmic T axis.
    let log_x = x0 > 0.0 && x1 / x0 >= LOG_AXIS_RATIO;
    let (x0, x1) = if log_x {
        (x0 / 1.2, x1 * 1.2)
    } else {
        let (x0, x1) = pad(x0, x1);
        (x0.max(0.0), x1)
    };
    let curve: Vec<(f64, f64)> = match delay {
        Some(d) => samples(x0, x1, log_x)
            .filter(|&t| plottable(t) && t > 0.0)
            .map(|t| (t, -(-d / t).exp_m1()))
            .filter(|&(_, y)| y.is_finite())
            .collect(),
        None => Vec::new(),
    };
    let medians = medians_per_x(&points);

    // The y axis fits the points and the curve over the points' T range
    // (the curve climbs to 1 as T → 0, which would flatten the points);
    // left of the points the curve is cut at the top of the axis.
    let min_t = bounds(points.iter().map(|p| p.0)).map_or(x0, |b| b.0);
    let (y0, y1) = bounds(
        points
            .iter()
            .map(|p| p.1)
            .chain(curve.iter().filter(|p| p.0 >= min_t).map(|p| p.1)),
    )
    .unwrap_or((0.0, 1.0));
    let (y0, y1) = pad(y0.min(0.0), y1.max(0.01));
    let y0 = if points.iter().all(|p| p.1 >= 0.0) {
        0.0
    } else {
        y0
    };
    let curve: Vec<(f64, f64)> = curve.into_iter().filter(|p| p.1 <= y1).collect();

    let title = match delay {
        Some(d) => format!("Stale rate against block interval (Δ = {} s)", short(d)),
        None => "Stale rate against block interval".to_owned(),
    };
    let stale = Stale {
        title,
        points,
        medians,
        curve,
        delay,
        log_x,
    };
    render(path, PLOT, |root| {
        if log_x {
            let x = (x0..x1)
                .log_scale()
                .with_key_points(decade_ticks(x0, x1, &[1.0, 2.0, 5.0]))
                .with_light_points(decade_ticks(
                    x0,
                    x1,
                    &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
                ));
            draw_stale(chart_over(root, &stale.title, x, (y0, y1))?, &stale)
        } else {
            draw_stale(chart_over(root, &stale.title, x0..x1, (y0, y1))?, &stale)
        }
    })
}

/// What [`stale_rate`] draws, whatever its x axis.
struct Stale {
    /// The plot's title.
    title: String,
    /// Every run's (T, stale rate).
    points: Vec<(f64, f64)>,
    /// The median per T.
    medians: Vec<(f64, f64)>,
    /// 1 − e^(−Δ/T), sampled.
    curve: Vec<(f64, f64)>,
    /// Δ, when the curve is drawn.
    delay: Option<f64>,
    /// Whether the T axis is logarithmic.
    log_x: bool,
}

/// Draws [`stale_rate`]'s axes, series and legend on `chart`.
fn draw_stale<'a, 'b: 'a, X>(mut chart: ChartOver<'a, 'b, X>, stale: &Stale) -> DrawResult<()>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let Stale {
        points,
        medians,
        curve,
        delay,
        ..
    } = stale;
    chart
        .configure_mesh()
        .x_desc(if stale.log_x {
            "block interval T (s, logarithmic)"
        } else {
            "block interval T (s)"
        })
        .y_desc("stale rate (share of mined blocks)")
        .label_style((FONT, 14))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .axis_desc_style((FONT, 15))
        .draw()?;
    if let Some(d) = delay {
        chart
            .draw_series(LineSeries::new(
                curve.iter().copied(),
                CLOSED_FORM.stroke_width(2),
            ))?
            .label(format!("1 − e^(−Δ/T), Δ = {} s", short(*d)))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], CLOSED_FORM.stroke_width(2)));
    }
    chart
        .draw_series(
            points
                .iter()
                .map(|&p| Circle::new(p, 3, MEASURED.stroke_width(1))),
        )?
        .label("measured (one run each)")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, MEASURED.stroke_width(1)));
    chart.draw_series(LineSeries::new(
        medians.iter().copied(),
        SUMMARY.stroke_width(1),
    ))?;
    chart
        .draw_series(medians.iter().map(|&p| Circle::new(p, 4, SUMMARY.filled())))?
        .label("median per T")
        .legend(|(x, y)| Circle::new((x + 10, y), 4, SUMMARY.filled()));
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// Selfish miner revenue against α: measured points, Eyal and Sirer's
/// curve ([`crapcoin_core::measure::selfish_revenue`]`(α, gamma)`, for
/// 0 ≤ α ≤ ½, in [`CLOSED_FORM_RGB`]) and the honest line y = α, with the
/// profitability threshold (1 − γ) / (3 − 2γ) marked.
///
/// Points that are not finite are skipped; a `gamma` outside 0..=1 (or
/// not finite) draws no curve (and is logged).
///
/// # Errors
///
/// [`PlotError`] when the picture cannot be drawn, encoded or written to
/// `path`.
pub fn selfish_revenue(
    path: &Path,
    points: &[(f64 /*alpha*/, f64 /*revenue share*/)],
    gamma: f64,
) -> Result<(), PlotError> {
    const PLOT: &str = "selfish revenue";
    let points: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|&(a, r)| plottable(a) && plottable(r))
        .collect();
    let gamma = (gamma.is_finite() && (0.0..=1.0).contains(&gamma)).then_some(gamma);
    if gamma.is_none() {
        tracing::warn!("selfish-revenue plot: γ is not in 0..=1, no curve drawn");
    }

    let (x0, x1) = bounds(points.iter().map(|p| p.0).chain([0.0, 0.5])).unwrap_or((0.0, 0.5));
    let curve: Vec<(f64, f64)> = match gamma {
        Some(g) => samples(x0.max(0.0), x1.min(0.5), false)
            .map(|a| (a, crapcoin_core::measure::selfish_revenue(a, g)))
            .filter(|&(_, r)| plottable(r))
            .collect(),
        None => Vec::new(),
    };
    let honest = [(x0, x0), (x1, x1)];
    let (y0, y1) = bounds(
        points
            .iter()
            .map(|p| p.1)
            .chain(curve.iter().map(|p| p.1))
            .chain([x0, x1, 0.0]),
    )
    .unwrap_or((0.0, 1.0));
    let (y0, y1) = pad(y0, y1);
    let y0 = if y0 < 0.0 && points.iter().all(|p| p.1 >= 0.0) && x0 >= 0.0 {
        0.0
    } else {
        y0
    };
    let threshold = gamma.map(|g| (1.0 - g) / (3.0 - 2.0 * g));

    let title = match gamma {
        Some(g) => format!(
            "Selfish mining revenue against hash share (γ = {})",
            short(g)
        ),
        None => "Selfish mining revenue against hash share".to_owned(),
    };
    render(path, PLOT, |root| {
        let mut chart = chart(root, &title, (x0, x1), (y0, y1))?;
        chart
            .configure_mesh()
            .x_desc("selfish miner's hash share α")
            .y_desc("selfish miner's share of best-chain blocks")
            .label_style((FONT, 14))
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .axis_desc_style((FONT, 15))
            .draw()?;
        chart
            .draw_series(DashedLineSeries::new(
                honest,
                8,
                5,
                REFERENCE.stroke_width(1),
            ))?
            .label("honest mining: revenue = α")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], REFERENCE.stroke_width(1)));
        if let (Some(g), Some(a)) = (gamma, threshold) {
            chart.draw_series(DashedLineSeries::new(
                [(a, y0), (a, y1)],
                3,
                4,
                REFERENCE.stroke_width(1),
            ))?;
            chart.draw_series([Text::new(
                format!(" threshold α = {}", short(a)),
                (a, y1),
                (FONT, 13)
                    .into_font()
                    .color(&REFERENCE)
                    .pos(Pos::new(HPos::Left, VPos::Top)),
            )])?;
            chart
                .draw_series(LineSeries::new(curve, CLOSED_FORM.stroke_width(2)))?
                .label(format!("Eyal–Sirer closed form, γ = {}", short(g)))
                .legend(|(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], CLOSED_FORM.stroke_width(2))
                });
        }
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, MEASURED.filled())))?
            .label("measured")
            .legend(|(x, y)| Circle::new((x + 10, y), 4, MEASURED.filled()));
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// Empirical CDF of block propagation delays (milliseconds), one curve
/// per series (at most [`MAX_CDF_SERIES`]), each labelled with its name,
/// its count of samples and its median.
///
/// Delays that are negative or not finite are skipped; a series left
/// empty is listed in the legend as having no data.
///
/// # Errors
///
/// [`PlotError`] when the picture cannot be drawn, encoded or written to
/// `path`.
pub fn propagation_cdf(path: &Path, series: &[(String, Vec<f64>)]) -> Result<(), PlotError> {
    const PLOT: &str = "propagation CDF";
    if series.len() > MAX_CDF_SERIES {
        tracing::warn!(
            series = series.len(),
            drawn = MAX_CDF_SERIES,
            "propagation CDF: too many series, the rest are not drawn"
        );
    }
    let series: Vec<(String, Vec<f64>)> = series
        .iter()
        .take(MAX_CDF_SERIES)
        .map(|(name, values)| {
            let mut v: Vec<f64> = values
                .iter()
                .copied()
                .filter(|&d| plottable(d) && d >= 0.0)
                .collect();
            v.sort_by(f64::total_cmp);
            (label(name), v)
        })
        .collect();
    let (x0, x1) = bounds(
        series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .chain([0.0]),
    )
    .unwrap_or((0.0, 1.0));
    let (_, x1) = pad(x0, x1);
    let x0 = 0.0;

    render(path, PLOT, |root| {
        let mut chart = chart(
            root,
            "Block propagation delay (empirical CDF)",
            (x0, x1),
            (0.0, 1.02),
        )?;
        chart
            .configure_mesh()
            .x_desc("propagation delay (ms)")
            .y_desc("share of receptions within the delay")
            .label_style((FONT, 14))
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .axis_desc_style((FONT, 15))
            .draw()?;
        for (i, (name, values)) in series.iter().enumerate() {
            let colour = SERIES[i % SERIES.len()];
            if values.is_empty() {
                chart
                    .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                    .label(format!("{name} (no data)"))
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
                continue;
            }
            let median = values[(values.len() - 1) / 2];
            chart
                .draw_series(LineSeries::new(
                    cdf_steps(values, x1),
                    colour.stroke_width(2),
                ))?
                .label(format!(
                    "{name} (n = {}, median {median:.1} ms)",
                    values.len()
                ))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        if series.is_empty() {
            chart.draw_series([Text::new("no data", ((x0 + x1) / 2.0, 0.5), (FONT, 18))])?;
            return Ok(());
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// Best-chain height over (virtual) time, one step line per node (at
/// most [`MAX_HEIGHT_LINES`]; beyond that the min / median / max over the
/// nodes that have reported by then, sampled at even steps), with the
/// faults in `marks` drawn as labelled vertical lines (at most
/// [`MAX_MARKS`]).
///
/// Samples and marks whose time is not finite are skipped; each series
/// is drawn in time order whatever order it comes in.
///
/// # Errors
///
/// [`PlotError`] when the picture cannot be drawn, encoded or written to
/// `path`.
pub fn heights(
    path: &Path,
    series: &[(String, Vec<(f64 /*t seconds*/, u64)>)],
    marks: &[(f64, String)],
) -> Result<(), PlotError> {
    const PLOT: &str = "heights";
    let series: Vec<(String, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(name, samples)| {
            let mut s: Vec<(f64, f64)> = samples
                .iter()
                .filter(|&&(t, _)| plottable(t))
                // u64 → f64 rounds above 2^53; a height is far below.
                .map(|&(t, h)| (t, h as f64))
                .collect();
            s.sort_by(|a, b| a.0.total_cmp(&b.0));
            (label(name), s)
        })
        .filter(|(_, s)| !s.is_empty())
        .collect();
    if marks.len() > MAX_MARKS {
        tracing::warn!(
            marks = marks.len(),
            drawn = MAX_MARKS,
            "heights plot: too many marks, the rest are not drawn"
        );
    }
    let marks: Vec<(f64, String)> = marks
        .iter()
        .filter(|(t, _)| plottable(*t))
        .take(MAX_MARKS)
        .map(|(t, text)| (*t, label(text)))
        .collect();

    let all = || series.iter().flat_map(|(_, s)| s.iter().copied());
    let (x0, x1) =
        bounds(all().map(|p| p.0).chain(marks.iter().map(|m| m.0))).unwrap_or((0.0, 1.0));
    let (x0, x1) = pad(x0, x1);
    let (y0, y1) = bounds(all().map(|p| p.1).chain([0.0])).unwrap_or((0.0, 1.0));
    // A block of headroom: a flat line is not drawn on the frame.
    let y1 = pad(y0, y1).1.max(y1 + 1.0);
    let y0 = 0.0;

    let envelopes = (series.len() > MAX_HEIGHT_LINES).then(|| envelopes(&series, x0, x1));
    let title = format!(
        "Best-chain height over virtual time ({} nodes)",
        series.len()
    );
    render(path, PLOT, |root| {
        let mut chart = chart(root, &title, (x0, x1), (y0, y1))?;
        chart
            .configure_mesh()
            .x_desc("virtual time (s)")
            .y_desc("best-chain height (blocks)")
            .label_style((FONT, 14))
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .axis_desc_style((FONT, 15))
            .draw()?;
        for (i, (t, text)) in marks.iter().enumerate() {
            chart.draw_series(DashedLineSeries::new(
                [(*t, y0), (*t, y1)],
                4,
                4,
                REFERENCE.stroke_width(1),
            ))?;
            // Staggered so that marks close in time keep readable labels.
            let y = y1 - (y1 - y0) * 0.06 * (i % 4) as f64;
            chart.draw_series([Text::new(
                format!(" {text}"),
                (*t, y),
                (FONT, 12)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Left, VPos::Top)),
            )])?;
        }
        match &envelopes {
            None => {
                let labelled = series.len() <= SERIES.len();
                for (i, (name, s)) in series.iter().enumerate() {
                    let colour = SERIES[i % SERIES.len()];
                    let drawn =
                        chart.draw_series(LineSeries::new(steps(s, x1), colour.stroke_width(1)))?;
                    if labelled {
                        drawn.label(name.as_str()).legend(move |(x, y)| {
                            PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                        });
                    }
                }
                if labelled && !series.is_empty() {
                    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
                }
            }
            Some([min, median, max]) => {
                let n = series.len();
                chart
                    .draw_series(LineSeries::new(
                        max.iter().copied(),
                        SERIES[1].stroke_width(1),
                    ))?
                    .label(format!("max over {n} nodes"))
                    .legend(|(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], SERIES[1].stroke_width(1))
                    });
                chart
                    .draw_series(LineSeries::new(
                        median.iter().copied(),
                        SUMMARY.stroke_width(2),
                    ))?
                    .label("median")
                    .legend(|(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], SUMMARY.stroke_width(2))
                    });
                chart
                    .draw_series(LineSeries::new(
                        min.iter().copied(),
                        SERIES[2].stroke_width(1),
                    ))?
                    .label("min")
                    .legend(|(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], SERIES[2].stroke_width(1))
                    });
                legend(&mut chart, SeriesLabelPosition::LowerRight)?;
            }
        }
        Ok(())
    })
}

/// The chart type every plot draws on.
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A renderer error, whatever its backend.
type DrawResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Draws with `draw` on a white 800 × 500 canvas in memory, encodes it as
/// PNG and writes it to `path`.
fn render<F>(path: &Path, plot: &'static str, draw: F) -> Result<(), PlotError>
where
    F: FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult<()>,
{
    register_font()?;
    let mut pixels = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let backend =
            BitMapBackend::with_buffer_and_format(&mut pixels, (WIDTH, HEIGHT)).map_err(|e| {
                PlotError::Draw {
                    plot,
                    reason: e.to_string(),
                }
            })?;
        let root = backend.into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Into::into));
        drawn.map_err(|e| PlotError::Draw {
            plot,
            reason: e.to_string(),
        })?;
    }
    let png = encode(&pixels).map_err(|e| PlotError::Encode {
        plot,
        reason: e.to_string(),
    })?;
    std::fs::write(path, png).map_err(|source| PlotError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Encodes an RGB buffer of [`WIDTH`] × [`HEIGHT`] as PNG.
fn encode(pixels: &[u8]) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(out)
}

/// Registers the embedded DejaVu Sans with plotters, once per process.
fn register_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

/// A chart over an x axis of any kind and a linear y axis.
type ChartOver<'a, 'b, X> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<X, RangedCoordf64>>;

/// A titled chart with label areas over `x` (linear or logarithmic) and
/// a linear y.
fn chart_over<'a, 'b, X>(
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    title: &str,
    x: X,
    (y0, y1): (f64, f64),
) -> DrawResult<ChartOver<'a, 'b, X::CoordDescType>>
where
    X: AsRangedCoord<Value = f64>,
{
    Ok(ChartBuilder::on(root)
        .caption(title, (FONT, 20).into_font().style(FontStyle::Bold))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y0..y1)?)
}

/// A titled chart with label areas over the given ranges.
fn chart<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    title: &str,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> DrawResult<Chart<'a, 'b>> {
    Ok(ChartBuilder::on(root)
        .caption(title, (FONT, 20).into_font().style(FontStyle::Bold))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)?)
}

/// Draws the legend box at `position`.
fn legend<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'b>, CT>,
    position: SeriesLabelPosition,
) -> DrawResult<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Whether a value can be drawn: finite and within ±[`MAX_ABS_VALUE`].
fn plottable(v: f64) -> bool {
    v.is_finite() && v.abs() <= MAX_ABS_VALUE
}

/// Smallest and largest of `values`, `None` when there are none.
fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// `lo..hi` widened by 5 % on each side, or to some range around a
/// single value, so that the axis always has a width.
fn pad(lo: f64, hi: f64) -> (f64, f64) {
    let span = hi - lo;
    if span > f64::EPSILON * lo.abs().max(hi.abs()).max(1.0) {
        (lo - 0.05 * span, hi + 0.05 * span)
    } else {
        // Half the value (at least 1 for values far from zero, so that a
        // flat line of heights is not squeezed into a sliver), 1 at zero.
        let v = lo.abs();
        let half = if v == 0.0 {
            1.0
        } else if v >= 2.0 {
            (0.5 * v).max(1.0)
        } else {
            0.5 * v
        };
        (lo - half, hi + half)
    }
}

/// [`CURVE_STEPS`] + 1 values from `lo` to `hi`, evenly spaced (on a
/// logarithmic scale when `log`; then `lo` must be positive).
fn samples(lo: f64, hi: f64, log: bool) -> impl Iterator<Item = f64> {
    (0..=CURVE_STEPS).map(move |i| {
        let f = i as f64 / CURVE_STEPS as f64;
        if log {
            lo * (hi / lo).powf(f)
        } else {
            lo + (hi - lo) * f
        }
    })
}

/// Ticks of a logarithmic axis over `lo..=hi` (`lo` > 0): each of
/// `steps` times every power of ten.
fn decade_ticks(lo: f64, hi: f64, steps: &[f64]) -> Vec<f64> {
    let first = lo.log10().floor() as i32;
    let last = hi.log10().ceil() as i32;
    (first..=last)
        .flat_map(|k| steps.iter().map(move |s| s * 10f64.powi(k)))
        .filter(|t| (lo..=hi).contains(t))
        .collect()
}

/// The median y of the points at each distinct x, in x order.
fn medians_per_x(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    sorted
        .chunk_by(|a, b| a.0 == b.0)
        .map(|group| {
            let n = group.len();
            let median = if n % 2 == 1 {
                group[n / 2].1
            } else {
                (group[n / 2 - 1].1 + group[n / 2].1) / 2.0
            };
            (group[0].0, median)
        })
        .collect()
}

/// The step function of an empirical CDF of sorted `values`, ending at
/// `x_end`, with at most about [`CDF_POINTS`] steps.
fn cdf_steps(values: &[f64], x_end: f64) -> Vec<(f64, f64)> {
    let n = values.len();
    let indices: Vec<usize> = if n <= CDF_POINTS {
        (0..n).collect()
    } else {
        (1..=CDF_POINTS).map(|j| j * n / CDF_POINTS - 1).collect()
    };
    let mut out = Vec::with_capacity(2 * indices.len() + 2);
    let mut below = 0.0;
    out.push((values[0], 0.0));
    for i in indices {
        let share = (i + 1) as f64 / n as f64;
        out.push((values[i], below));
        out.push((values[i], share));
        below = share;
    }
    out.push((x_end.max(values[n - 1]), 1.0));
    out
}

/// A node's height samples as a step line (a height holds until the next
/// sample), carried on to `x_end`.
fn steps(samples: &[(f64, f64)], x_end: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(2 * samples.len() + 1);
    for (i, &(t, h)) in samples.iter().enumerate() {
        if i > 0 {
            out.push((t, samples[i - 1].1));
        }
        out.push((t, h));
    }
    if let Some(&(t, h)) = samples.last()
        && t < x_end
    {
        out.push((x_end, h));
    }
    out
}

/// Min, median and max height over the nodes at [`ENVELOPE_STEPS`] + 1
/// evenly spaced times; a node counts from its first sample on.
fn envelopes(series: &[(String, Vec<(f64, f64)>)], x0: f64, x1: f64) -> [Vec<(f64, f64)>; 3] {
    let mut min = Vec::with_capacity(ENVELOPE_STEPS + 1);
    let mut median = Vec::with_capacity(ENVELOPE_STEPS + 1);
    let mut max = Vec::with_capacity(ENVELOPE_STEPS + 1);
    let mut at = Vec::with_capacity(series.len());
    // Samples of each node known by the current step: the steps go
    // forward in time, so each cursor only moves forward.
    let mut known = vec![0usize; series.len()];
    for i in 0..=ENVELOPE_STEPS {
        let t = x0 + (x1 - x0) * i as f64 / ENVELOPE_STEPS as f64;
        at.clear();
        for ((_, s), k) in series.iter().zip(known.iter_mut()) {
            while *k < s.len() && s[*k].0 <= t {
                *k += 1;
            }
            if *k > 0 {
                at.push(s[*k - 1].1);
            }
        }
        if at.is_empty() {
            continue;
        }
        // Linear, not a sort: 100,000 nodes at 401 steps stay cheap.
        let lowest = at.iter().copied().fold(f64::INFINITY, f64::min);
        let highest = at.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let middle = (at.len() - 1) / 2;
        let (_, &mut mid, _) = at.select_nth_unstable_by(middle, f64::total_cmp);
        min.push((t, lowest));
        median.push((t, mid));
        max.push((t, highest));
    }
    [min, median, max]
}

/// A value in a few significant digits for titles and legends.
fn short(v: f64) -> String {
    if v == 0.0 {
        "0".to_owned()
    } else if (1e-3..1e6).contains(&v.abs()) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        format!("{v:.2e}")
    }
}

/// An axis tick label: [`short`], so that 10 reads "10", not "10.0".
fn tick(v: &f64) -> String {
    short(*v)
}

/// A name or mark cut to [`MAX_LABEL_CHARS`] characters, control
/// characters dropped.
fn label(text: &str) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    if clean.chars().count() > MAX_LABEL_CHARS {
        let mut cut: String = clean.chars().take(MAX_LABEL_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_gives_a_single_value_some_range() {
        for v in [0.0, 1.0, -3.0, 1e-9, 600.0, MAX_ABS_VALUE, -MAX_ABS_VALUE] {
            let (lo, hi) = pad(v, v);
            assert!(lo < v && v < hi, "{v}: {lo}..{hi}");
        }
        assert_eq!(pad(0.0, 10.0), (-0.5, 10.5));
    }

    #[test]
    fn decade_ticks_cover_the_range() {
        assert_eq!(
            decade_ticks(1.5, 72.0, &[1.0, 2.0, 5.0]),
            vec![2.0, 5.0, 10.0, 20.0, 50.0]
        );
        assert_eq!(
            decade_ticks(0.04, 0.3, &[1.0, 2.0, 5.0]),
            vec![0.05, 0.1, 0.2]
        );
    }

    #[test]
    fn medians_per_x_take_the_middle_of_each_group() {
        let m = medians_per_x(&[
            (2.0, 0.3),
            (1.0, 0.5),
            (2.0, 0.1),
            (1.0, 0.1),
            (2.0, 0.2),
            (1.0, 0.3),
            (1.0, 0.9),
        ]);
        assert_eq!(m, vec![(1.0, 0.4), (2.0, 0.2)]);
    }

    #[test]
    fn cdf_steps_climb_to_one_in_order() {
        let values: Vec<f64> = (0..5_000).map(f64::from).collect();
        let steps = cdf_steps(&values, 6_000.0);
        assert!(steps.len() <= 2 * CDF_POINTS + 2);
        assert!(
            steps
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
        );
        assert_eq!(steps.last(), Some(&(6_000.0, 1.0)));
        assert_eq!(
            cdf_steps(&[7.0], 10.0),
            vec![(7.0, 0.0), (7.0, 0.0), (7.0, 1.0), (10.0, 1.0)]
        );
    }

    #[test]
    fn envelopes_count_a_node_from_its_first_sample() {
        let series = vec![
            ("a".to_owned(), vec![(0.0, 0.0), (5.0, 2.0)]),
            ("b".to_owned(), vec![(0.0, 1.0)]),
            ("c".to_owned(), vec![(5.0, 9.0)]),
        ];
        let [min, median, max] = envelopes(&series, 0.0, 10.0);
        assert_eq!(
            (min[0], median[0], max[0]),
            ((0.0, 0.0), (0.0, 0.0), (0.0, 1.0))
        );
        let last = ENVELOPE_STEPS;
        assert_eq!(
            (min[last], median[last], max[last]),
            ((10.0, 1.0), (10.0, 2.0), (10.0, 9.0))
        );
    }

    #[test]
    fn labels_are_cut_and_cleaned() {
        assert_eq!(label("a\nb"), "ab");
        assert_eq!(label(&"x".repeat(100)).chars().count(), MAX_LABEL_CHARS);
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(1.0 / 3.0), "0.333");
        assert_eq!(short(2.5e-7), "2.50e-7");
        assert_eq!(short(-0.0), "0");
        assert_eq!(short(80.0), "80");
    }
}
