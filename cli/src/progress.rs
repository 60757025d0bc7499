//! Progress bars on stderr, shown only when asked for and when stderr is a terminal: the CLI's
//! observer of the libraries' [`Progress`] reports.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use pocketrec_export::progress::Progress;

/// A progress bar that is a no-op when hidden. [`Progress::start`] sets its length and label.
pub struct Bar {
    bar: Option<ProgressBar>,
}

impl Bar {
    /// A bar, hidden unless `enabled` and stderr is a terminal, so logs and pipes never receive
    /// bar output. It draws from the first [`Progress::start`].
    pub fn new(enabled: bool) -> Self {
        if !enabled || !std::io::stderr().is_terminal() {
            return Bar { bar: None };
        }
        let style = ProgressStyle::with_template(
            "{msg:>14} [{bar:40}] {pos}/{len} ({elapsed}, eta {eta}) {prefix}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = ProgressBar::hidden().with_style(style);
        Bar { bar: Some(bar) }
    }

    /// A bar over `total` steps labelled `what`, already started (see [`Bar::new`]).
    pub fn started(enabled: bool, total: u64, what: &str) -> Self {
        let bar = Bar::new(enabled);
        bar.start(total, what);
        bar
    }

    /// Sets the text shown after the bar (e.g. the latest loss).
    pub fn set_status(&self, status: String) {
        if let Some(bar) = &self.bar {
            bar.set_prefix(status);
        }
    }

    /// Prints a line above the bar (or to stderr when the bar is hidden).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

impl Progress for Bar {
    fn start(&self, total: u64, what: &str) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(0);
            bar.set_message(what.to_string());
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
    }

    fn update(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
