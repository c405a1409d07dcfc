//! Reading and writing `accord_core::protocol` frames on async streams,
//! with the length checked before the body is read and a time limit on
//! every read. The `_untimed` forms leave the time limit to the caller
//! (the attested-TLS evidence exchange, which has one for its whole
//! exchange); they are the same framing.

use std::time::Duration;

use accord_core::protocol::{self, Message, ProtocolError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How much of a frame body is allocated before any of it arrived.
const INITIAL_BODY_CAPACITY: usize = 64 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug)]
pub enum WireError {
    /// The connection failed or closed (including mid-frame).
    Io(std::io::Error),
    /// The peer sent nothing for this long.
    Timeout(Duration),
    /// The frame is refused (too large, malformed, trailing bytes).
    Protocol(ProtocolError),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
                f.write_str("the connection closed (mid-frame or before a frame)")
            }
            Self::Io(err) => write!(f, "connection: {err}"),
            Self::Timeout(limit) => write!(f, "nothing received for {} s", limit.as_secs()),
            Self::Protocol(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for WireError {}

/// Limits for reading one frame.
#[derive(Clone, Copy, Debug)]
pub struct ReadLimits {
    /// Largest body accepted.
    pub max: usize,
    /// How long to wait for the length prefix (idle time).
    pub idle: Duration,
    /// How long the body may take once the prefix arrived.
    pub body: Duration,
}

/// Reads the 4-byte length prefix of a frame and checks it (before any of
/// the body is read).
pub async fn read_len<R: AsyncRead + Unpin>(
    reader: &mut R,
    limits: ReadLimits,
) -> Result<usize, WireError> {
    tokio::time::timeout(limits.idle, read_len_untimed(reader, limits.max))
        .await
        .map_err(|_| WireError::Timeout(limits.idle))?
}

/// [`read_len`] without a time limit (the caller sets one).
async fn read_len_untimed<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<usize, WireError> {
    let mut prefix = [0u8; 4];
    reader
        .read_exact(&mut prefix)
        .await
        .map_err(WireError::Io)?;
    protocol::frame_len(prefix, max).map_err(WireError::Protocol)
}

/// Reads a body of exactly `len` bytes within the body time limit.
pub async fn read_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    len: usize,
    limits: ReadLimits,
) -> Result<Vec<u8>, WireError> {
    let mut body = Vec::new();
    tokio::time::timeout(limits.body, fill_body(reader, &mut body, len))
        .await
        .map_err(|_| WireError::Timeout(limits.body))??;
    Ok(body)
}

/// Reads one byte (the first of a body), without a time limit.
pub async fn read_byte<R: AsyncRead + Unpin>(reader: &mut R) -> Result<u8, WireError> {
    reader.read_u8().await.map_err(WireError::Io)
}

/// Reads until `body` holds `len` bytes, without a time limit (the caller
/// sets one). Memory grows with what actually arrives, not with what the
/// prefix announces (a peer cannot make us allocate 16 MiB with four
/// bytes), doubling from 64 KiB and never past `len`.
pub async fn fill_body<R: AsyncRead + Unpin>(
    reader: &mut R,
    body: &mut Vec<u8>,
    len: usize,
) -> Result<(), WireError> {
    while body.len() < len {
        if body.len() == body.capacity() {
            let grown = body
                .capacity()
                .saturating_mul(2)
                .max(INITIAL_BODY_CAPACITY)
                .min(len);
            body.reserve_exact(grown - body.len());
        }
        let remaining = u64::try_from(len - body.len()).unwrap_or(u64::MAX);
        let read = (&mut *reader)
            .take(remaining)
            .read_buf(body)
            .await
            .map_err(WireError::Io)?;
        if read == 0 {
            return Err(WireError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the frame ended after {} of {len} bytes", body.len()),
            )));
        }
    }
    Ok(())
}

/// Reads and decodes one frame.
pub async fn read_message<M: Message, R: AsyncRead + Unpin>(
    reader: &mut R,
    limits: ReadLimits,
) -> Result<M, WireError> {
    let len = read_len(reader, limits).await?;
    let body = read_body(reader, len, limits).await?;
    protocol::decode::<M>(&body).map_err(WireError::Protocol)
}

/// Reads and decodes one frame of at most `max` body bytes, without a time
/// limit (the caller sets one).
pub async fn read_message_untimed<M: Message, R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<M, WireError> {
    let len = read_len_untimed(reader, max).await?;
    let mut body = Vec::new();
    fill_body(reader, &mut body, len).await?;
    protocol::decode::<M>(&body).map_err(WireError::Protocol)
}

/// Encodes and writes one frame (and flushes), within `limit`.
pub async fn write_message<M: Message, W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &M,
    max: usize,
    limit: Duration,
) -> Result<(), WireError> {
    let frame = protocol::encode(message, max).map_err(WireError::Protocol)?;
    tokio::time::timeout(limit, write_frame(writer, &frame))
        .await
        .map_err(|_| WireError::Timeout(limit))?
}

/// Encodes and writes one frame (and flushes), without a time limit (the
/// caller sets one).
pub async fn write_message_untimed<M: Message, W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &M,
    max: usize,
) -> Result<(), WireError> {
    let frame = protocol::encode(message, max).map_err(WireError::Protocol)?;
    write_frame(writer, &frame).await
}

async fn write_frame<W: AsyncWrite + Unpin>(writer: &mut W, frame: &[u8]) -> Result<(), WireError> {
    writer.write_all(frame).await.map_err(WireError::Io)?;
    writer.flush().await.map_err(WireError::Io)
}
