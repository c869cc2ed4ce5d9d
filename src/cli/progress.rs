//! Progress display for long reads: a byte bar on stderr when it is a terminal, nothing
//! otherwise (logs and pipes stay clean).

use std::io::{IsTerminal, Read};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Wraps `reader` so that reading it advances a bar of `total` bytes, if stderr is a terminal.
pub fn wrap<R: Read + Send + 'static>(
    reader: R,
    total: u64,
    label: &str,
) -> (Box<dyn Read + Send>, Option<ProgressBar>) {
    if !std::io::stderr().is_terminal() || total < (8 << 20) {
        return (Box::new(reader), None);
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_string());
    (Box::new(bar.wrap_read(reader)), Some(bar))
}
