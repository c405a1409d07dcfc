//! The wire protocol of the coordinator's APIs: postcard-encoded messages
//! in length-prefixed frames. The full specification, with golden byte
//! vectors, is `docs/protocol.md`; the vectors are checked by this
//! module's tests.
//!
//! A connection (inside attested TLS) starts with the client's [`Hello`]
//! naming the API and the protocol versions it speaks; the server answers
//! [`HelloReply`]. Then the client sends requests and the server answers
//! each in order with the request's own reply type: [`UserRequest`] →
//! [`SetManifestReply`], [`GetManifestsReply`], [`RecoverReply`] or
//! [`GetRecoveryStateReply`] on the user API ([`UserCall`] pairs each
//! request with its reply), [`MeshRequest`] → [`NewMeshCertReply`] or
//! [`PeerRecoverReply`] on the mesh API. The reply types keep the variant
//! indices of the one reply enum per API they replaced, so a frame
//! refused before its request is known is a [`UserError`] (or a mesh
//! `Error`), which decodes as any of that API's reply types.
//!
//! Each request has one path into the state machine: the wire request,
//! then its one conversion here ([`UserRequest::into_request`],
//! [`MeshRequest::into_request`], with what the transport proved), then
//! [`crate::coordinator::Request`]; the result goes back through one
//! function per reply ([`set_manifest_reply`], [`get_manifests_reply`],
//! [`recover_reply`], [`get_recovery_state_reply`],
//! [`new_mesh_cert_reply`], [`peer_recover_reply`]).
//!
//! Frames are a u32 big-endian body length, then the body. A frame longer
//! than the API's limit ([`MAX_USER_FRAME`], [`MAX_MESH_FRAME`]) is refused
//! before any of its body is read; on the user API only `SetManifest` may
//! exceed [`MAX_USER_SMALL_FRAME`], which a server checks with the body's
//! first byte ([`check_user_frame`]). A body with trailing bytes is
//! refused.
//! Nothing here does I/O: [`encode`], [`frame_len`] and [`decode`] are what
//! a transport calls around its reads and writes.

mod convert;
mod limits;
mod messages;
pub mod shim;

#[cfg(test)]
mod tests;

pub use convert::{
    RecoverySession, get_manifests_reply, get_recovery_state_reply, new_mesh_cert_reply,
    peer_recover_reply, recover_reply, set_manifest_reply,
};
pub use limits::{
    MAX_USER_SMALL_FRAME, SET_MANIFEST_TAG, check_user_frame, user_frame_limit, user_request_name,
};
pub use messages::*;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The user API's port.
pub const USER_API_PORT: u16 = 1313;

/// The mesh API's port (workload certificates and peer recovery).
pub const MESH_API_PORT: u16 = 7777;

/// The port where the shim listens for its agent's channel
/// ([`shim`]).
pub const SHIM_PORT: u16 = 9103;

/// The protocol version this code speaks. Version 2: tree heads name the
/// seed-share record, `Recover` is authenticated by the owner's key and
/// bound to a `GetRecoveryState` reply, updates are signed over an
/// `UpdateIntent`, mesh certificates come with a `DeploymentStatement`.
pub const VERSION: u16 = 2;

/// The TLS exporter label of a user-API session's recovery binding
/// (`seedshare::submission::SubmissionBinding::session`), 32 bytes, no
/// context.
pub const RECOVERY_EXPORTER_LABEL: &[u8] = b"EXPORTER-accord-recovery";

/// Largest frame body on the user API, allowed for `SetManifest` only: a
/// manifest with its policies (a policy is at most about 1.5 MiB when
/// stored in Kubernetes). Every other user request is limited to
/// [`MAX_USER_SMALL_FRAME`].
pub const MAX_USER_FRAME: usize = 16 * 1024 * 1024;

/// Largest frame body on the mesh API.
pub const MAX_MESH_FRAME: usize = 64 * 1024;

/// Why a frame was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The length prefix exceeds the limit.
    TooLarge {
        /// The announced or actual length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The frame is larger than its request type allows (the type is read
    /// from the body's first byte, before the rest of the body).
    TooLargeForRequest {
        /// The request's name (`None`: an index this code does not know).
        request: Option<&'static str>,
        /// The body's first byte (the variant index).
        tag: u8,
        /// The announced length.
        len: usize,
        /// That request's limit.
        max: usize,
    },
    /// The body does not decode as the expected message.
    Malformed {
        /// Which message was expected.
        expected: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// The body decodes but has bytes left over.
    TrailingBytes {
        /// Which message.
        expected: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// The message could not be encoded.
    Encode(String),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the {max}-byte limit")
            }
            Self::TooLargeForRequest {
                request,
                tag,
                len,
                max,
            } => {
                match request {
                    Some(name) => write!(f, "a {name} frame")?,
                    None => write!(f, "a frame of an unknown request (first byte {tag:#04x})")?,
                }
                write!(
                    f,
                    " of {len} bytes exceeds the {max}-byte limit for that request \
                     (only SetManifest may be up to {MAX_USER_FRAME} bytes)"
                )
            }
            Self::Malformed { expected, reason } => {
                write!(f, "malformed {expected} frame: {reason}")
            }
            Self::TrailingBytes { expected, count } => {
                write!(f, "{count} trailing bytes after a {expected} frame")
            }
            Self::Encode(why) => write!(f, "cannot encode the frame: {why}"),
        }
    }
}

impl core::error::Error for ProtocolError {}

/// A message type with a name for errors.
pub trait Message: Serialize + DeserializeOwned {
    /// The message's name, for errors and logs.
    const NAME: &'static str;
}

/// The whole frame for `message`: length prefix, then postcard body.
pub fn encode<M: Message>(message: &M, max: usize) -> Result<Vec<u8>, ProtocolError> {
    let mut out = alloc::vec![0u8; 4];
    let body =
        postcard::to_extend(message, out).map_err(|e| ProtocolError::Encode(e.to_string()))?;
    out = body;
    let len = out.len().saturating_sub(4);
    if len > max {
        return Err(ProtocolError::TooLarge { len, max });
    }
    let prefix = u32::try_from(len)
        .map_err(|_| ProtocolError::TooLarge { len, max })?
        .to_be_bytes();
    if let Some(head) = out.get_mut(..4) {
        head.copy_from_slice(&prefix);
    }
    Ok(out)
}

/// The body length a 4-byte prefix announces, refused above `max`.
pub fn frame_len(prefix: [u8; 4], max: usize) -> Result<usize, ProtocolError> {
    let len = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
    if len > max {
        return Err(ProtocolError::TooLarge { len, max });
    }
    Ok(len)
}

/// Decodes one frame body (without its prefix); trailing bytes are refused.
pub fn decode<M: Message>(body: &[u8]) -> Result<M, ProtocolError> {
    let (message, rest) =
        postcard::take_from_bytes::<M>(body).map_err(|e| ProtocolError::Malformed {
            expected: M::NAME,
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(ProtocolError::TrailingBytes {
            expected: M::NAME,
            count: rest.len(),
        });
    }
    Ok(message)
}
