//! A response body fed from a blocking thread: [`ChunkWriter`] is the `std::io::Write` end a
//! backup is written into, [`ChannelBody`] the body that sends its chunks as they come, so a
//! large archive is never held whole in memory or on disk.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 256 * 1024;

/// What the writer sends: a chunk, or the error that ends the body.
type Chunk = std::io::Result<Bytes>;

/// The writing end. Blocks while the client is slower than the writer (the channel is bounded).
pub struct ChunkWriter {
    tx: mpsc::Sender<Chunk>,
    buffer: Vec<u8>,
}

impl ChunkWriter {
    /// A writer into `tx`.
    pub fn new(tx: mpsc::Sender<Chunk>) -> ChunkWriter {
        ChunkWriter {
            tx,
            buffer: Vec::with_capacity(CHUNK),
        }
    }

    /// Sends what is buffered; the body ends when the writer and every sender are gone.
    pub fn finish(&mut self) -> std::io::Result<()> {
        self.send()
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The body: each chunk as a data frame; an error ends it abruptly.
pub struct ChannelBody {
    /// Where the chunks come from.
    pub rx: mpsc::Receiver<Chunk>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| chunk.map(http_body::Frame::data)))
    }
}
