//! Progress display for long transfers: a byte bar on stderr when it is a terminal, nothing
//! otherwise (logs and pipes stay clean).

use std::io::{IsTerminal, Read};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar labelled `label` for `total` bytes (a spinner when unknown), if stderr is a terminal.
pub fn bar(total: Option<u64>, label: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}"
    } else {
        "{msg} {spinner} {bytes} {binary_bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_string());
    Some(bar)
}

/// Wraps `reader` so that reading it advances a bar of `total` bytes (files of 8 MiB and more).
pub fn wrap<R: Read + Send + 'static>(
    reader: R,
    total: u64,
    label: &str,
) -> (Box<dyn Read + Send>, Option<ProgressBar>) {
    match bar(Some(total), label).filter(|_| total >= 8 << 20) {
        Some(b) => (Box::new(b.wrap_read(reader)), Some(b)),
        None => (Box::new(reader), None),
    }
}
