//! The terminal: an indicatif progress display on stderr (a bar while
//! nodes start, then a status line), log lines printed above it without
//! tearing it, and plain status lines when stderr is not a terminal.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress display. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ui {
    multi: MultiProgress,
    status: ProgressBar,
    interactive: bool,
}

impl Ui {
    /// A display on stderr; hidden (plain lines instead) when `plain` or
    /// when stderr is not a terminal.
    pub fn new(plain: bool) -> Self {
        let interactive = !plain && std::io::stderr().is_terminal();
        let target = if interactive {
            ProgressDrawTarget::stderr_with_hz(4)
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let status = multi.add(ProgressBar::new_spinner());
        status.set_style(
            ProgressStyle::with_template("{spinner} {wide_msg}").expect("a valid template"),
        );
        Self {
            multi,
            status,
            interactive,
        }
    }

    /// Whether the display is drawn.
    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// A bar counting `total` starts.
    pub fn starting(&self, total: u64) -> ProgressBar {
        let bar = self
            .multi
            .insert_before(&self.status, ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template("starting nodes [{bar:30}] {pos}/{len} {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar
    }

    /// Shows `line` as the status (or, when not interactive, logs it).
    pub fn status(&self, line: &str) {
        if self.interactive {
            self.status.set_message(line.to_owned());
            self.status.tick();
        } else {
            tracing::info!(target: "watercooler::status", "{line}");
        }
    }

    /// Prints `text` on stdout above the display.
    pub fn println(&self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.multi.suspend(|| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", text.trim_end());
            let _ = out.flush();
        });
    }

    /// Removes the display.
    pub fn finish(&self) {
        self.status.finish_and_clear();
        let _ = self.multi.clear();
    }

    /// Ticks the spinner now and then (call from a task).
    pub fn tick_interval() -> Duration {
        Duration::from_millis(250)
    }

    /// A `tracing` writer that prints to stderr above the display.
    pub fn log_writer(&self) -> LogWriter {
        LogWriter {
            multi: self.multi.clone(),
        }
    }
}

/// Writes log lines to stderr without tearing the progress display.
#[derive(Debug, Clone)]
pub struct LogWriter {
    multi: MultiProgress,
}

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.multi
            .suspend(|| std::io::stderr().lock().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
