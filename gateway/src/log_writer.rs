//! The log writer for the request path: a formatted line is appended to a buffer of the thread
//! that logged it, and one writer thread moves every buffer to the sink (stderr) a few times a
//! second. A request thread never makes a syscall, never wakes another thread and never waits
//! on the terminal or pipe for a log line; it takes only its own thread's buffer lock, which
//! the writer thread holds for the time of a swap.
//!
//! Lines of one thread keep their order; lines of different threads are interleaved per
//! flush, so a file may be out of timestamp order by up to [`FLUSH_INTERVAL`]. When a thread's
//! buffer holds [`MAX_PENDING`] bytes (the sink is stuck), its new lines are dropped and
//! counted, and the writer says how many when it can write again.
//!
//! [`install`] sets up the process's logging with it, as `atoll serve` runs. Lines that are
//! written once per request (the access line) skip the `tracing` formatter: [`write_direct`]
//! hands the caller this thread's buffer to format its line into, byte for byte as the
//! formatter would have written it (without colours: on a terminal the formatter is used).

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The filter used when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info,pingora_core=warn,pingora_proxy=warn";

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `timestamp LEVEL target: message key=value ...`, coloured on a terminal.
    Text,
    /// One JSON object per line, fields under `fields`.
    Json,
}

/// Installs the process's global subscriber: `format` lines filtered by `filter` (a `RUST_LOG`
/// directive), written to `sink` through a [`BatchedWriter`]. Keep the guard until exit.
///
/// # Panics
///
/// When a global subscriber is already installed.
pub fn install(
    format: LogFormat,
    filter: EnvFilter,
    sink: impl Write + Send + 'static,
    ansi: bool,
) -> FlushGuard {
    let (writer, guard) = BatchedWriter::new(sink);
    if !ansi {
        // Only the first install of a process (there is one) writes lines directly.
        let _ = DIRECT.set((writer.clone(), format));
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    guard
}

/// The installed writer and its format, for [`write_direct`].
static DIRECT: OnceLock<(BatchedWriter, LogFormat)> = OnceLock::new();

/// Writes one line without the `tracing` formatter: `line` appends it, whole and ending in a
/// newline, to this thread's buffer in the installed format. `false` (and nothing written) when
/// [`install`] has not set up direct writing (in tests, or on a terminal): log through
/// `tracing` then. The caller checks the line's target and level are enabled first.
pub fn write_direct(line: impl FnOnce(LogFormat, &mut Vec<u8>)) -> bool {
    let Some((writer, format)) = DIRECT.get() else {
        return false;
    };
    writer.append_with(|buffer| line(*format, buffer));
    true
}

/// Appends the UTC time now as the formatter writes it: `2026-12-07T12:09:37.153951Z`. The
/// date and time to the second are formatted once a second per thread.
pub fn write_timestamp(buffer: &mut Vec<u8>) {
    thread_local! {
        static SECOND: RefCell<(u64, [u8; 19])> = const { RefCell::new((u64::MAX, [0; 19])) };
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != now.as_secs() {
            let at = time::OffsetDateTime::UNIX_EPOCH
                + time::Duration::seconds(now.as_secs().min(i64::MAX as u64) as i64);
            let mut text = [0u8; 19];
            let formatted = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            );
            text.copy_from_slice(&formatted.as_bytes()[..19]);
            *cached = (now.as_secs(), text);
        }
        buffer.extend_from_slice(&cached.1);
    });
    let micros = now.subsec_micros();
    let mut digits = [b'0'; 6];
    let mut rest = micros;
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    buffer.push(b'.');
    buffer.extend_from_slice(&digits);
    buffer.push(b'Z');
}

/// How often the writer thread moves buffered lines to the sink.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

/// A thread's buffered bytes past which the writer is woken early.
const EARLY_FLUSH: usize = 256 * 1024;

/// A thread's buffered bytes past which its new lines are dropped.
pub const MAX_PENDING: usize = 4 * 1024 * 1024;

type Buffer = Arc<Mutex<Vec<u8>>>;

/// Hands each logging thread its buffer; see the module docs.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

struct Shared {
    /// Tells this writer's buffers apart from another's in the thread-local list.
    id: usize,
    /// Every thread's buffer. Locked only when a thread logs its first line, and by the writer.
    buffers: Mutex<Vec<Buffer>>,
    /// Wakes the writer early (a buffer passed [`EARLY_FLUSH`]) or to stop.
    wake: Condvar,
    wake_lock: Mutex<()>,
    /// Set by a thread whose buffer passed [`EARLY_FLUSH`], cleared by the writer before it
    /// flushes: a wake-up asked for while the writer is busy is never lost.
    flush_requested: AtomicBool,
    stopping: AtomicBool,
    dropped: AtomicU64,
}

/// Stops the writer thread when dropped, after a last flush.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's buffer in each writer (there is one writer per process but in tests).
    static BUFFERS: RefCell<Vec<(usize, Buffer)>> = const { RefCell::new(Vec::new()) };
}

impl BatchedWriter {
    /// A writer whose thread writes to `sink`; keep the guard for as long as lines should be
    /// written, and drop it to flush the rest.
    pub fn new(sink: impl Write + Send + 'static) -> (BatchedWriter, FlushGuard) {
        let shared = Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            buffers: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            wake_lock: Mutex::new(()),
            flush_requested: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("atoll-log".to_owned())
            .spawn(move || worker.run(sink))
            .expect("spawning the log writer thread");
        let guard = FlushGuard {
            shared: shared.clone(),
            thread: Some(thread),
        };
        (BatchedWriter { shared }, guard)
    }

    /// Appends `line` to this thread's buffer, or counts it as dropped when the buffer is full.
    fn append(&self, line: &[u8]) {
        self.append_with(|pending| pending.extend_from_slice(line));
    }

    /// Lets `write` append one line to this thread's buffer; the line is taken back and counted
    /// as dropped when it takes the buffer past [`MAX_PENDING`].
    fn append_with(&self, write: impl FnOnce(&mut Vec<u8>)) {
        let buffer = self.thread_buffer();
        let mut pending = buffer.lock().unwrap_or_else(PoisonError::into_inner);
        let before = pending.len();
        write(&mut pending);
        if pending.len() > MAX_PENDING {
            pending.truncate(before);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if pending.len() >= EARLY_FLUSH && !self.shared.flush_requested.load(Ordering::Relaxed) {
            drop(pending);
            self.shared.request_flush();
        }
    }

    fn thread_buffer(&self) -> Buffer {
        BUFFERS.with(|buffers| {
            let mut buffers = buffers.borrow_mut();
            if let Some((_, buffer)) = buffers.iter().find(|(id, _)| *id == self.shared.id) {
                return buffer.clone();
            }
            let buffer = Buffer::default();
            self.shared
                .buffers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(buffer.clone());
            buffers.push((self.shared.id, buffer.clone()));
            buffer
        })
    }
}

impl Shared {
    /// Wakes the writer to flush now (once per full buffer: under the wake lock, so the writer
    /// is either about to see the request or already waiting for the notification).
    fn request_flush(&self) {
        let _lock = self
            .wake_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !self.flush_requested.swap(true, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    fn run(&self, mut sink: impl Write) {
        let mut spare = Vec::new();
        loop {
            let stopping = self.stopping.load(Ordering::Acquire);
            self.flush_requested.store(false, Ordering::Release);
            self.flush_into(&mut sink, &mut spare);
            if stopping {
                return;
            }
            let idle = self
                .wake_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !self.stopping.load(Ordering::Acquire)
                && !self.flush_requested.load(Ordering::Acquire)
            {
                let _ = self.wake.wait_timeout(idle, FLUSH_INTERVAL);
            }
        }
    }

    /// Moves every thread's lines to `sink`, swapping each buffer with `spare`.
    fn flush_into(&self, sink: &mut impl Write, spare: &mut Vec<u8>) {
        let buffers = self
            .buffers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for buffer in buffers {
            {
                let mut pending = buffer.lock().unwrap_or_else(PoisonError::into_inner);
                if pending.is_empty() {
                    continue;
                }
                std::mem::swap(&mut *pending, spare);
            }
            // A sink that fails (a closed pipe) loses the lines; the gateway goes on.
            let _ = sink.write_all(spare);
            spare.clear();
            if spare.capacity() > 4 * EARLY_FLUSH {
                spare.shrink_to(EARLY_FLUSH);
            }
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let _ = writeln!(
                sink,
                "atoll: {dropped} log lines dropped: the log sink did not keep up"
            );
        }
        let _ = sink.flush();
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        {
            let _lock = self
                .shared
                .wake_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            self.shared.stopping.store(true, Ordering::Release);
        }
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One event's line on its way to its thread's buffer.
pub struct LineWriter<'a> {
    writer: &'a BatchedWriter,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.writer.append(bytes);
        Ok(bytes.len())
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.append(bytes);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter { writer: self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Sink {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn every_line_of_every_thread_is_written_in_its_order_by_the_end() {
        let sink = Sink::default();
        let (writer, guard) = BatchedWriter::new(sink.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        // One write per line, as the fmt layer writes each event.
                        let line = format!("thread {t} line {i}\n");
                        writer.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let text = sink.text();
        assert_eq!(text.lines().count(), 4000);
        for t in 0..4 {
            let prefix = format!("thread {t} ");
            let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&prefix)).collect();
            let expected: Vec<String> = (0..1000).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(lines, expected);
        }
    }

    #[test]
    fn lines_reach_the_sink_without_a_flush_from_the_logger() {
        let sink = Sink::default();
        let (writer, _guard) = BatchedWriter::new(sink.clone());
        writeln!(writer.make_writer(), "hello").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.text().is_empty() {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(FLUSH_INTERVAL / 5);
        }
        assert_eq!(sink.text(), "hello\n");
    }

    #[test]
    fn a_full_buffer_drops_new_lines_and_says_how_many() {
        /// A sink that blocks until released, as a stuck pipe does.
        struct Stuck(Arc<(Mutex<bool>, Condvar)>, Sink);
        impl Write for Stuck {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                let (released, changed) = &*self.0;
                let mut released = released.lock().unwrap();
                while !*released {
                    released = changed.wait(released).unwrap();
                }
                self.1.write(bytes)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let sink = Sink::default();
        let (writer, guard) = BatchedWriter::new(Stuck(gate.clone(), sink.clone()));
        // The writer takes what is buffered when woken and blocks on the sink; this thread's
        // buffer then fills up.
        let mut line = vec![b'x'; 1023];
        line.push(b'\n');
        let lines = 2 * MAX_PENDING / line.len();
        for _ in 0..lines {
            writer.make_writer().write_all(&line).unwrap();
        }
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        drop(guard);
        let text = sink.text();
        let kept = text.lines().filter(|l| l.starts_with('x')).count();
        let report = text
            .lines()
            .find(|l| l.contains("log lines dropped"))
            .unwrap();
        let dropped: usize = report
            .strip_prefix("atoll: ")
            .and_then(|r| r.split(' ').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            dropped > 0 && kept >= MAX_PENDING / line.len(),
            "{kept} kept"
        );
        assert_eq!(kept + dropped, lines, "every line written or counted");
    }
}
