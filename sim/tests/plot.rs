//! The plots are real PNG files with something drawn on them: each is
//! decoded and its pixels counted, the closed-form curves are found by
//! their colour, and bad input gives a picture or a clean error, never a
//! panic.

use std::path::{Path, PathBuf};

use crapcoin_sim::plot::{self, CLOSED_FORM_RGB, HEIGHT, PlotError, WIDTH};

/// What `plot::propagation_cdf` takes.
type CdfSeries = Vec<(String, Vec<f64>)>;
/// What `plot::heights` takes: the series and the marks.
type HeightSeries = Vec<(String, Vec<(f64, u64)>)>;
type Marks = Vec<(f64, String)>;

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
const WHITE: [u8; 3] = [255, 255, 255];

/// A decoded RGB picture.
struct Picture {
    pixels: Vec<[u8; 3]>,
}

impl Picture {
    /// Reads `path`, checks the PNG signature and size, decodes it.
    fn load(path: &Path) -> Picture {
        let bytes = std::fs::read(path).expect("the plot was written");
        assert_eq!(bytes[..8], PNG_SIGNATURE, "{} is not a PNG", path.display());
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("a readable PNG header");
        let mut buf = vec![0; reader.output_buffer_size().expect("a sane size")];
        let info = reader.next_frame(&mut buf).expect("a decodable PNG");
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        let pixels = buf[..info.buffer_size()]
            .chunks_exact(3)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        Picture { pixels }
    }

    /// Pixels that are not the white background.
    fn drawn(&self) -> usize {
        self.pixels.iter().filter(|&&p| p != WHITE).count()
    }

    /// Pixels drawn in exactly `rgb`.
    fn of_colour(&self, rgb: [u8; 3]) -> usize {
        self.pixels.iter().filter(|&&p| p == rgb).count()
    }

    /// Pixels that are not background in rows `rows` (the title is in
    /// the top rows).
    fn drawn_in_rows(&self, rows: std::ops::Range<u32>) -> usize {
        let w = WIDTH as usize;
        self.pixels[rows.start as usize * w..rows.end as usize * w]
            .iter()
            .filter(|&&p| p != WHITE)
            .count()
    }

    /// Pixels in which two pictures differ.
    fn differs_from(&self, other: &Picture) -> usize {
        self.pixels
            .iter()
            .zip(&other.pixels)
            .filter(|(a, b)| a != b)
            .count()
    }
}

fn in_tmp(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// Axes, ticks, labels and a title: thousands of pixels, and text in
/// the title rows (the font rendered).
fn assert_a_real_plot(picture: &Picture) {
    assert!(
        picture.drawn() > 5_000,
        "only {} pixels drawn",
        picture.drawn()
    );
    assert!(
        picture.drawn_in_rows(0..40) > 300,
        "no title text: {} pixels in the title rows",
        picture.drawn_in_rows(0..40)
    );
}

#[test]
fn stale_rate_draws_the_points_and_the_approximation_in_its_colour() {
    let dir = tempfile::tempdir().expect("tempdir");
    let points: Vec<(f64, f64)> = [1.0, 2.0, 5.0, 10.0, 30.0]
        .iter()
        .flat_map(|&t| [0.9, 1.0, 1.1].map(|k| (t, k * -(-0.8f64 / t).exp_m1())))
        .collect();

    let with_curve = in_tmp(&dir, "stale.png");
    plot::stale_rate(&with_curve, &points, 0.8).expect("plotted");
    let with_curve = Picture::load(&with_curve);
    assert_a_real_plot(&with_curve);
    // A 2-pixel line across the plot (the legend's sample alone is ~40).
    let curve = with_curve.of_colour(CLOSED_FORM_RGB);
    assert!(curve > 500, "only {curve} pixels of the curve's colour");

    // A narrow sweep, on a linear T axis: the curve is there too.
    let narrow: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|p| (2.0..=10.0).contains(&p.0))
        .collect();
    let linear = in_tmp(&dir, "stale-linear.png");
    plot::stale_rate(&linear, &narrow, 0.8).expect("plotted");
    let linear = Picture::load(&linear);
    assert_a_real_plot(&linear);
    let curve = linear.of_colour(CLOSED_FORM_RGB);
    assert!(curve > 500, "only {curve} pixels of the curve's colour");

    // Without a usable delay there is no curve, and nothing else is
    // drawn in its colour.
    let without = in_tmp(&dir, "stale-no-delay.png");
    plot::stale_rate(&without, &points, f64::NAN).expect("plotted");
    let without = Picture::load(&without);
    assert_a_real_plot(&without);
    assert_eq!(without.of_colour(CLOSED_FORM_RGB), 0);
}

#[test]
fn selfish_revenue_draws_eyal_and_sirers_curve_in_its_colour() {
    let dir = tempfile::tempdir().expect("tempdir");
    let points: Vec<(f64, f64)> = (1..10)
        .map(|i| {
            let a = f64::from(i) * 0.05;
            (a, crapcoin_core::measure::selfish_revenue(a, 0.0) + 0.01)
        })
        .collect();
    let path = in_tmp(&dir, "selfish.png");
    plot::selfish_revenue(&path, &points, 0.0).expect("plotted");
    let picture = Picture::load(&path);
    assert_a_real_plot(&picture);
    let curve = picture.of_colour(CLOSED_FORM_RGB);
    assert!(curve > 500, "only {curve} pixels of the curve's colour");

    let path = in_tmp(&dir, "selfish-bad-gamma.png");
    plot::selfish_revenue(&path, &points, 1.5).expect("plotted");
    let picture = Picture::load(&path);
    assert_a_real_plot(&picture);
    assert_eq!(picture.of_colour(CLOSED_FORM_RGB), 0);
}

#[test]
fn propagation_cdf_draws_a_curve_per_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fast: Vec<f64> = (0..3_000).map(|i| f64::from(i % 97) * 1.5).collect();
    let slow: Vec<f64> = (0..200).map(|i| 50.0 + f64::from(i) * 2.0).collect();

    let one = in_tmp(&dir, "cdf-one.png");
    plot::propagation_cdf(&one, &[("fast links".to_owned(), fast.clone())]).expect("plotted");
    let one = Picture::load(&one);
    assert_a_real_plot(&one);

    let two = in_tmp(&dir, "cdf-two.png");
    plot::propagation_cdf(
        &two,
        &[
            ("fast links".to_owned(), fast),
            ("slow links".to_owned(), slow),
        ],
    )
    .expect("plotted");
    let two = Picture::load(&two);
    assert_a_real_plot(&two);
    assert!(two.drawn() > one.drawn(), "the second series drew nothing");
}

#[test]
fn heights_draw_lines_envelopes_and_marks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = |i: u64, n: u64| {
        (
            format!("node-{i}"),
            (0..n)
                .map(|b| (b as f64 * 10.0 + i as f64 * 0.1, b + i % 3))
                .collect::<Vec<_>>(),
        )
    };
    let marks = vec![
        (120.0, "partition {0..4} | {5..9}".to_owned()),
        (300.0, "heal".to_owned()),
    ];

    let few: Vec<_> = (0..8).map(|i| node(i, 50)).collect();
    let unmarked = in_tmp(&dir, "heights-unmarked.png");
    plot::heights(&unmarked, &few, &[]).expect("plotted");
    let unmarked = Picture::load(&unmarked);
    assert_a_real_plot(&unmarked);
    let marked = in_tmp(&dir, "heights.png");
    plot::heights(&marked, &few, &marks).expect("plotted");
    let marked = Picture::load(&marked);
    assert_a_real_plot(&marked);
    assert!(
        marked.differs_from(&unmarked) > 300,
        "the marks drew nothing"
    );

    // Past 50 nodes: envelopes, not 200 lines.
    let many: Vec<_> = (0..200).map(|i| node(i, 50)).collect();
    let path = in_tmp(&dir, "heights-many.png");
    plot::heights(&path, &many, &marks).expect("plotted");
    assert_a_real_plot(&Picture::load(&path));
}

#[test]
fn bad_input_gives_a_picture_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nan = f64::NAN;
    let inf = f64::INFINITY;
    let xy_cases: Vec<(&str, Vec<(f64, f64)>)> = vec![
        ("empty", vec![]),
        (
            "non-finite",
            vec![(nan, 0.1), (1.0, inf), (-inf, nan), (inf, 0.2)],
        ),
        ("single", vec![(2.0, 0.1)]),
        ("all-equal", vec![(2.0, 0.1); 5]),
        ("tiny", vec![(1e-9, 1e-9), (2e-9, 1e-9), (3e-9, 2e-9)]),
        (
            "subnormal-to-huge",
            vec![(5e-324, 0.1), (1e12, 0.2), (-1e12, 0.3)],
        ),
        (
            "zero-and-negative",
            vec![(0.0, 0.1), (-1.0, -0.5), (3.0, 0.0)],
        ),
        (
            "absurd",
            vec![
                (1e300, 1e300),
                (-1e300, 5.0),
                (1.0, f64::MAX),
                (f64::MIN_POSITIVE, 0.5),
            ],
        ),
    ];
    for (name, points) in &xy_cases {
        for delay in [0.5, 0.0, -1.0, nan, 1e300] {
            let path = in_tmp(&dir, &format!("stale-{name}.png"));
            plot::stale_rate(&path, points, delay)
                .unwrap_or_else(|e| panic!("stale {name} {delay}: {e}"));
            assert!(Picture::load(&path).drawn() > 1_000, "stale {name} {delay}");
        }
        for gamma in [0.0, 1.0, nan] {
            let path = in_tmp(&dir, &format!("selfish-{name}.png"));
            plot::selfish_revenue(&path, points, gamma)
                .unwrap_or_else(|e| panic!("selfish {name} {gamma}: {e}"));
            assert!(
                Picture::load(&path).drawn() > 1_000,
                "selfish {name} {gamma}"
            );
        }
    }

    let cdf_cases: Vec<(&str, CdfSeries)> = vec![
        ("none", vec![]),
        ("empty", vec![("a".to_owned(), vec![])]),
        (
            "non-finite",
            vec![("a".to_owned(), vec![nan, inf, -inf, -5.0])],
        ),
        ("single", vec![("a".to_owned(), vec![12.0])]),
        (
            "all-zero",
            vec![("a".to_owned(), vec![0.0; 10]), ("b".to_owned(), vec![])],
        ),
        (
            "many",
            (0..100)
                .map(|i| (format!("s{i}"), vec![f64::from(i)]))
                .collect(),
        ),
        ("long-name", vec![("x\n".repeat(500), vec![1.0, 2.0])]),
    ];
    for (name, series) in &cdf_cases {
        let path = in_tmp(&dir, &format!("cdf-{name}.png"));
        plot::propagation_cdf(&path, series).unwrap_or_else(|e| panic!("cdf {name}: {e}"));
        assert!(Picture::load(&path).drawn() > 1_000, "cdf {name}");
    }

    let height_cases: Vec<(&str, HeightSeries, Marks)> = vec![
        ("none", vec![], vec![]),
        (
            "empty",
            vec![("a".to_owned(), vec![])],
            vec![(nan, "x".to_owned())],
        ),
        (
            "non-finite",
            vec![("a".to_owned(), vec![(nan, 1), (inf, 2)])],
            vec![(inf, "x".to_owned())],
        ),
        (
            "single",
            vec![("a".to_owned(), vec![(3.0, 7)])],
            vec![(3.0, "crash".to_owned())],
        ),
        (
            "flat",
            vec![("a".to_owned(), vec![(0.0, 0), (5.0, 0)]); 60],
            vec![],
        ),
        (
            "unsorted",
            vec![("a".to_owned(), vec![(9.0, 3), (1.0, 1), (5.0, 2)])],
            vec![],
        ),
        (
            "huge-height",
            vec![("a".to_owned(), vec![(0.0, u64::MAX), (1.0, 0)])],
            vec![],
        ),
        (
            "many-marks",
            vec![("a".to_owned(), vec![(0.0, 1)])],
            (0..500).map(|i| (f64::from(i), format!("m{i}"))).collect(),
        ),
    ];
    for (name, series, marks) in &height_cases {
        let path = in_tmp(&dir, &format!("heights-{name}.png"));
        plot::heights(&path, series, marks).unwrap_or_else(|e| panic!("heights {name}: {e}"));
        assert!(Picture::load(&path).drawn() > 1_000, "heights {name}");
    }
}

#[test]
fn an_unwritable_path_is_a_clean_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-dir").join("plot.png");
    let is_dir = dir.path().to_owned();
    for path in [&missing, &is_dir] {
        let results = [
            plot::stale_rate(path, &[(1.0, 0.1)], 0.5),
            plot::selfish_revenue(path, &[(0.3, 0.3)], 0.5),
            plot::propagation_cdf(path, &[("a".to_owned(), vec![1.0])]),
            plot::heights(path, &[("a".to_owned(), vec![(0.0, 1)])], &[]),
        ];
        for result in results {
            match result {
                Err(PlotError::Write { path: reported, .. }) => assert_eq!(&reported, path),
                other => panic!("{}: expected a write error, got {other:?}", path.display()),
            }
        }
    }
    assert!(!missing.exists());
}

/// A replayed run redraws the same pictures: the same input gives the
/// same bytes (no time, randomness or system font goes into a plot).
#[test]
fn the_same_input_gives_the_same_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let series = vec![("a".to_owned(), vec![(0.0, 0), (3.0, 1), (7.5, 2)])];
    let marks = vec![(4.0, "crash a".to_owned())];
    let first = in_tmp(&dir, "first.png");
    let second = in_tmp(&dir, "second.png");
    plot::heights(&first, &series, &marks).expect("plotted");
    plot::heights(&second, &series, &marks).expect("plotted");
    let first = std::fs::read(first).expect("written");
    assert_eq!(first, std::fs::read(second).expect("written"));
    assert_eq!(first[..8], PNG_SIGNATURE);
}
