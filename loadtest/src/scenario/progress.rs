//! A progress bar on stderr for a run of known length (`indicatif`), with the answers so far;
//! drawn only on a terminal, cleared when dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// A progress bar on stderr for a run of `duration`, with the answers so far; drawn only on a
/// terminal, cleared when dropped.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Shows the bar until dropped.
    pub fn show(duration: Duration, answered: Arc<AtomicU64>) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
            let bar = indicatif::ProgressBar::new(millis);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {elapsed:>4} of {len_s} {msg}")
                    .expect("a valid template")
                    .with_key(
                        "len_s",
                        move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{}s", millis / 1000);
                        },
                    ),
            );
            let started = std::time::Instant::now();
            while !stopped.load(Ordering::Relaxed) {
                let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                bar.set_position(elapsed.min(millis));
                bar.set_message(format!("{} answers", answered.load(Ordering::Relaxed)));
                std::thread::sleep(Duration::from_millis(200));
            }
            bar.finish_and_clear();
        });
        Progress {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
