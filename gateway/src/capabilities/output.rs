//! Output capture: what a guest writes to stdout and stderr during one request, captured in
//! memory up to a bound and handed to the [`GuestObserver`](crate::runtime::GuestObserver)
//! when the guest's task ends. Nothing to grant; each request's state is a fresh capture,
//! which the guest's WASI context writes into.
//!
//! Each request has its own capture, so lines of concurrent requests never mix. Writes past the
//! bound are accepted and dropped (a guest's `println!` must never fail because it talked too
//! much); the dropped byte count marks the truncation.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::Capability;

/// Output capture.
pub struct Output;

impl Capability for Output {
    type Grant = ();
    type State = OutputCapture;

    fn prepare(_: &()) -> OutputCapture {
        OutputCapture::default()
    }
}

/// The most bytes of stdout and stderr together kept per request.
pub const GUEST_OUTPUT_LIMIT: usize = 64 * 1024;

/// The largest write permit a capture stream grants at once.
const WRITE_PERMIT: usize = 64 * 1024;

/// One of a guest's two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestStream {
    /// `wasi:cli/stdout`.
    Stdout,
    /// `wasi:cli/stderr`.
    Stderr,
}

impl GuestStream {
    /// `"stdout"` or `"stderr"`.
    pub fn as_str(self) -> &'static str {
        match self {
            GuestStream::Stdout => "stdout",
            GuestStream::Stderr => "stderr",
        }
    }
}

/// What a guest wrote during one request, up to [`GUEST_OUTPUT_LIMIT`] bytes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GuestOutput {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    dropped: u64,
}

impl GuestOutput {
    /// Whether the guest wrote nothing.
    pub fn is_empty(&self) -> bool {
        self.stdout.is_empty() && self.stderr.is_empty() && self.dropped == 0
    }

    /// Bytes written past the limit and dropped: non-zero means the output was truncated.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped
    }

    /// The bytes kept from `stream`.
    pub fn bytes(&self, stream: GuestStream) -> &[u8] {
        match stream {
            GuestStream::Stdout => &self.stdout,
            GuestStream::Stderr => &self.stderr,
        }
    }

    /// The lines kept from `stream`, without their line endings; invalid UTF-8 is replaced. A
    /// last line without a newline is still a line.
    pub fn lines(&self, stream: GuestStream) -> impl Iterator<Item = std::borrow::Cow<'_, str>> {
        let bytes = self.bytes(stream);
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        bytes
            .split(|&b| b == b'\n')
            .filter(move |_| !bytes.is_empty())
            .map(|line| String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)))
    }

    fn push(&mut self, stream: GuestStream, bytes: &[u8]) {
        let room = GUEST_OUTPUT_LIMIT.saturating_sub(self.stdout.len() + self.stderr.len());
        let kept = bytes.len().min(room);
        match stream {
            GuestStream::Stdout => self.stdout.extend_from_slice(&bytes[..kept]),
            GuestStream::Stderr => self.stderr.extend_from_slice(&bytes[..kept]),
        }
        self.dropped += (bytes.len() - kept) as u64;
    }
}

/// The capture shared by one request's two streams and the code that reads it at the end.
#[derive(Debug, Clone, Default)]
pub struct OutputCapture(Arc<Mutex<GuestOutput>>);

impl OutputCapture {
    /// A stream writing into this capture as `stream`, for the guest's WASI context.
    pub(crate) fn stream(&self, stream: GuestStream) -> CaptureStream {
        CaptureStream {
            capture: self.clone(),
            stream,
        }
    }

    /// Everything captured so far, leaving the capture empty.
    pub(crate) fn take(&self) -> GuestOutput {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn push(&self, stream: GuestStream, bytes: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(stream, bytes);
    }
}

/// stdout or stderr of one guest, writing into its request's [`OutputCapture`]. Always ready and
/// never fails.
#[derive(Debug, Clone)]
pub(crate) struct CaptureStream {
    capture: OutputCapture,
    stream: GuestStream,
}

impl IsTerminal for CaptureStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CaptureStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for CaptureStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.capture.push(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

#[async_trait::async_trait]
impl Pollable for CaptureStream {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CaptureStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.capture.push(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_on_newlines_and_keep_a_last_partial_line() {
        let capture = OutputCapture::default();
        capture.push(GuestStream::Stdout, b"one\r\ntwo\n");
        capture.push(GuestStream::Stdout, b"three");
        capture.push(GuestStream::Stderr, b"oops\n");
        let output = capture.take();
        let stdout: Vec<_> = output.lines(GuestStream::Stdout).collect();
        assert_eq!(stdout, ["one", "two", "three"]);
        let stderr: Vec<_> = output.lines(GuestStream::Stderr).collect();
        assert_eq!(stderr, ["oops"]);
        assert_eq!(output.dropped_bytes(), 0);
        assert!(capture.take().is_empty(), "take empties the capture");
    }

    #[test]
    fn both_streams_share_one_bound_and_the_rest_is_counted() {
        let capture = OutputCapture::default();
        let half = vec![b'a'; GUEST_OUTPUT_LIMIT / 2];
        capture.push(GuestStream::Stdout, &half);
        capture.push(GuestStream::Stderr, &half);
        capture.push(GuestStream::Stderr, b"past the limit");
        capture.push(GuestStream::Stdout, b"!");
        let output = capture.take();
        assert_eq!(
            output.bytes(GuestStream::Stdout).len() + output.bytes(GuestStream::Stderr).len(),
            GUEST_OUTPUT_LIMIT
        );
        assert_eq!(output.dropped_bytes(), 15);
        assert!(!output.is_empty());
    }

    #[test]
    fn an_empty_stream_has_no_lines() {
        let output = GuestOutput::default();
        assert_eq!(output.lines(GuestStream::Stdout).count(), 0);
        assert!(output.is_empty());
    }
}
