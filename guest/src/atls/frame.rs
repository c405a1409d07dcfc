//! The frames of the evidence exchange: postcard-encoded [`Frame`]s in
//! the protocol's framing (`accord_core::protocol`: a u32 big-endian
//! length, then the body; read and written by [`crate::wire`]), at most
//! [`MAX_FRAME`] bytes.
//!
//! The first frame each side sends that is not a refusal carries
//! [`PROTOCOL_VERSION`]; a peer speaking another version is refused.

use accord_core::evidence::Evidence;
use accord_core::protocol::{self, Message};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

use super::AtlsError;
use crate::wire::{self, WireError};

/// The version of the evidence-exchange protocol this code speaks, also
/// in its ALPN (`accord-atls/2`).
///
/// - 1: the first release.
/// - 2: SEV-SNP evidence carries its CRL (`SnpEvidence::crl`), which
///   changes the bytes of every SEV-SNP `Evidence` frame. A peer of
///   version 1 negotiates ALPN `accord-atls/1` and is refused by version
///   before any frame is decoded (a server sends it a `Refused` frame,
///   whose bytes did not change, naming both versions).
pub const PROTOCOL_VERSION: u16 = 2;

/// The largest frame body accepted or sent. TDX evidence with its
/// collateral is about 25 KiB today (quote with PCK chain, TCB info, QE
/// identity, CRLs); the limit leaves room without letting a peer make us
/// allocate much.
pub const MAX_FRAME: usize = 128 * 1024;

/// Longest refusal reason sent or kept, in bytes.
pub const MAX_REASON: usize = 1024;

/// One message of the evidence exchange.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// The sender's evidence, bound to this session and its key.
    Evidence {
        /// [`PROTOCOL_VERSION`].
        version: u16,
        /// The evidence.
        evidence: Evidence,
    },
    /// The sender (a client) is not attested.
    NoEvidence {
        /// [`PROTOCOL_VERSION`].
        version: u16,
    },
    /// The server verified the client: application data may flow.
    Verified,
    /// The sender refuses the connection and closes it.
    Refused {
        /// Why, for the peer's log.
        reason: String,
    },
}

impl Frame {
    /// A refusal whose reason is cut to [`MAX_REASON`] bytes.
    pub fn refused(reason: &str) -> Self {
        Self::Refused {
            reason: clean_reason(reason),
        }
    }

    /// The frame's name, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Evidence { .. } => "Evidence",
            Self::NoEvidence { .. } => "NoEvidence",
            Self::Verified => "Verified",
            Self::Refused { .. } => "Refused",
        }
    }

    /// Length prefix and postcard body.
    pub fn encode(&self) -> Result<Vec<u8>, AtlsError> {
        protocol::encode(self, MAX_FRAME)
            .map_err(|err| AtlsError::Protocol(format!("own {} frame: {err}", self.name())))
    }

    /// Decodes one frame body (without its length prefix); trailing bytes
    /// are refused.
    pub fn decode(body: &[u8]) -> Result<Self, AtlsError> {
        protocol::decode::<Self>(body)
            .map(Self::cleaned)
            .map_err(|err| refused_frame(WireError::Protocol(err)))
    }

    /// A received frame with its refusal reason cleaned.
    fn cleaned(self) -> Self {
        match self {
            Self::Refused { reason } => Self::refused(&reason),
            other => other,
        }
    }
}

impl Message for Frame {
    const NAME: &'static str = "attested-TLS";
}

const RECEIVING: &str = "receiving an attested-TLS frame";

/// Why a received frame is refused, with a hint at the common cause.
fn refused_frame(err: WireError) -> AtlsError {
    match err {
        WireError::Io(source) => AtlsError::Io {
            action: RECEIVING,
            source,
        },
        other => AtlsError::Protocol(format!(
            "{other}; did the peer send application data before the evidence exchange finished?"
        )),
    }
}

/// Cuts `reason` to [`MAX_REASON`] bytes (on a character boundary) and
/// replaces control characters, so a hostile peer cannot flood or forge
/// log lines.
fn clean_reason(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len().min(MAX_REASON));
    for ch in reason.chars() {
        let ch = if ch.is_control() { ' ' } else { ch };
        if out.len() + ch.len_utf8() > MAX_REASON {
            break;
        }
        out.push(ch);
    }
    out
}

/// Writes one frame and flushes.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &Frame,
) -> Result<(), AtlsError> {
    wire::write_message_untimed(writer, frame, MAX_FRAME)
        .await
        .map_err(|err| match err {
            WireError::Io(source) => AtlsError::Io {
                action: "sending an attested-TLS frame",
                source,
            },
            other => AtlsError::Protocol(format!("own {} frame: {other}", frame.name())),
        })
}

/// The largest frame a client that takes part without evidence
/// (`NoEvidence`, or a `Refused` with its reason) can need: what a server
/// that takes no client evidence accepts.
pub const MAX_FRAME_WITHOUT_EVIDENCE: usize = MAX_REASON + 64;

/// Reads one frame of at most [`MAX_FRAME`] bytes.
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Frame, AtlsError> {
    read_frame_limited(reader, MAX_FRAME).await
}

/// Reads one frame of at most `max` bytes. The length is checked before
/// anything is allocated, and the buffer grows with the bytes that arrive,
/// not with the announced length (a peer cannot make us hold 128 KiB with
/// four bytes). The caller sets the time limit.
pub async fn read_frame_limited<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Frame, AtlsError> {
    wire::read_message_untimed::<Frame, R>(reader, max)
        .await
        .map(Frame::cleaned)
        .map_err(refused_frame)
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    /// Golden bytes: the wire form of the frames without evidence is fixed.
    #[test]
    fn golden_frames() {
        assert_eq!(
            Frame::NoEvidence {
                version: PROTOCOL_VERSION
            }
            .encode()
            .unwrap(),
            [0, 0, 0, 2, 1, 2]
        );
        assert_eq!(Frame::Verified.encode().unwrap(), [0, 0, 0, 1, 2]);
        assert_eq!(
            Frame::refused("no").encode().unwrap(),
            [0, 0, 0, 4, 3, 2, b'n', b'o']
        );
        let evidence = Frame::Evidence {
            version: PROTOCOL_VERSION,
            evidence: Evidence::Snp(accord_core::evidence::SnpEvidence {
                report: vec![0xaa],
                vcek: None,
                ask: None,
                ark: None,
                crl: None,
            }),
        };
        // variant 0, version 2, Evidence::Snp (0), report len 1, 0xaa,
        // 4 × None (vcek, ask, ark, crl). Version 1 had no crl: its frame
        // was `0, 1, 0, 1, 0xaa, 0, 0, 0`, which version 2 cannot decode,
        // hence the new version (and ALPN).
        assert_eq!(PROTOCOL_VERSION, 2);
        assert_eq!(
            evidence.encode().unwrap(),
            [0, 0, 0, 9, 0, 2, 0, 1, 0xaa, 0, 0, 0, 0]
        );
        assert!(Frame::decode(&[0, 1, 0, 1, 0xaa, 0, 0, 0]).is_err());
    }

    #[tokio::test]
    async fn round_trip_through_a_pipe() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let frame = Frame::refused("bad\nline");
        write_frame(&mut a, &frame).await.unwrap();
        write_frame(&mut a, &Frame::Verified).await.unwrap();
        assert_eq!(read_frame(&mut b).await.unwrap(), frame);
        assert_eq!(read_frame(&mut b).await.unwrap(), Frame::Verified);
        assert_eq!(
            frame,
            Frame::Refused {
                reason: "bad line".to_string()
            }
        );
    }

    #[tokio::test]
    async fn oversized_and_empty_lengths_are_refused_before_allocating() {
        for prefix in [[0xff, 0xff, 0xff, 0xff], [0, 0, 0, 0], *b"GET "] {
            let (mut a, mut b) = tokio::io::duplex(64);
            a.write_all(&prefix).await.unwrap();
            let err = read_frame(&mut b).await.unwrap_err();
            assert!(matches!(err, AtlsError::Protocol(_)), "{err}");
        }
    }

    #[tokio::test]
    async fn a_lower_limit_refuses_evidence_sized_frames() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0x10, 0]).await.unwrap();
        let err = read_frame_limited(&mut b, MAX_FRAME_WITHOUT_EVIDENCE)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("frame of 4096 bytes exceeds the 1088-byte limit"),
            "{err}"
        );
        // The largest refusal a client can send fits.
        let (mut a, mut b) = tokio::io::duplex(4096);
        let refusal = Frame::refused(&"x".repeat(2 * MAX_REASON));
        write_frame(&mut a, &refusal).await.unwrap();
        assert_eq!(
            read_frame_limited(&mut b, MAX_FRAME_WITHOUT_EVIDENCE)
                .await
                .unwrap(),
            refusal
        );
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for body in [&[9u8][..], &[3, 200], &[2, 0], &[0, 1, 5], &[1]] {
            assert!(matches!(Frame::decode(body), Err(AtlsError::Protocol(_))));
        }
    }

    #[tokio::test]
    async fn truncated_frame_is_an_io_error() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 9, 3]).await.unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b).await,
            Err(AtlsError::Io { .. })
        ));
    }

    #[test]
    fn long_reasons_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_REASON);
        let Frame::Refused { reason } = Frame::refused(&long) else {
            unreachable!()
        };
        assert!(reason.len() <= MAX_REASON);
        assert!(reason.chars().all(|c| c == 'é'));
    }
}
