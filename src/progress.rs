//! Terminal output: a progress bar on a terminal, plain log lines otherwise (CI, pipes, files).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    live: bool,
}

impl Progress {
    /// A bar of `total` units (steps) with a message; hidden unless stderr is a terminal.
    pub fn new(total: u64, unit: &str) -> Self {
        let live =
            std::io::stderr().is_terminal() && std::env::var_os("FASTFC_NO_PROGRESS").is_none();
        let bar = if live {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(10))
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit} ({{per_sec}}, ETA {{eta}}) {{msg}}"
            ))
            .expect("valid template"),
        );
        Progress { bar, live }
    }
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }
    pub fn set_message(&self, m: String) {
        self.bar.set_message(m);
    }
    /// Prints a line above the bar (or plainly on stdout when there is no bar).
    pub fn println(&self, line: impl AsRef<str>) {
        if self.live {
            self.bar.println(line);
        } else {
            println!("{}", line.as_ref());
        }
    }
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
