//! A progress bar on stderr, only when stderr is a terminal.

use std::io::IsTerminal;
use std::sync::OnceLock;

use indicatif::{ProgressBar, ProgressStyle};
use model_signing::serialize::Progress;

/// Shows hashing progress; invisible when stderr is not a terminal.
pub struct Bar {
    bar: OnceLock<ProgressBar>,
    enabled: bool,
}

/// Models smaller than this finish before a bar would be readable.
const MIN_BYTES_FOR_BAR: u64 = 64 << 20;

impl Bar {
    /// A bar if stderr is a terminal and `wanted`.
    pub fn new(wanted: bool) -> Self {
        Bar {
            bar: OnceLock::new(),
            enabled: wanted && std::io::stderr().is_terminal(),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = self.bar.get() {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn start(&self, total_bytes: u64) {
        if !self.enabled || total_bytes < MIN_BYTES_FOR_BAR {
            return;
        }
        let bar = ProgressBar::new(total_bytes);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} hashing [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        let _ = self.bar.set(bar);
    }

    fn advance(&self, bytes: u64) {
        if let Some(b) = self.bar.get() {
            b.inc(bytes);
        }
    }
}
