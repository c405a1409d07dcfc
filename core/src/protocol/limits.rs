//! How large a request frame may be, by API and request type.
//!
//! On the mesh API every frame is at most [`MAX_MESH_FRAME`]. On the user
//! API only `SetManifest` carries bulk data (a manifest and its policies),
//! so only it may be as large as [`MAX_USER_FRAME`]; every other request
//! is at most [`MAX_USER_SMALL_FRAME`]. postcard writes an enum's variant
//! index first, as a varint, so the first body byte names the request:
//! `SetManifest` is variant 0 and its body starts with `0x00`, and no other
//! variant's does (indices 1–127 are one byte equal to the index, larger
//! ones start with a byte ≥ `0x80`). A server can therefore read the
//! length prefix and one body byte, apply [`check_user_frame`], and only
//! then accept (and buffer) the rest of a large body.

use super::{
    GetManifests, GetRecoveryState, MAX_USER_FRAME, ProtocolError, Recover, SetManifest, UserCall,
};

/// Largest frame body on the user API for every request except
/// `SetManifest` (whose limit is [`MAX_USER_FRAME`]). Those requests are a
/// few hundred bytes at most (a `Recover` submission is about 250 bytes,
/// `GetManifests` a few varints per index asked for).
pub const MAX_USER_SMALL_FRAME: usize = 64 * 1024;

const _: () = assert!(MAX_USER_SMALL_FRAME < MAX_USER_FRAME);

/// The first body byte of a `SetManifest` frame (its variant index).
pub const SET_MANIFEST_TAG: u8 = 0x00;

/// The names of the `UserRequest` variants, by index (the first body
/// byte): each request's [`UserCall::NAME`], in the enum's order (checked
/// by this module's tests).
const USER_REQUEST_NAMES: [&str; 4] = [
    SetManifest::NAME,
    GetManifests::NAME,
    Recover::NAME,
    GetRecoveryState::NAME,
];

/// The largest body a user-API frame whose body starts with `first_byte`
/// may have: [`MAX_USER_FRAME`] for `SetManifest`, [`MAX_USER_SMALL_FRAME`]
/// for everything else (unknown variants included).
pub const fn user_frame_limit(first_byte: u8) -> usize {
    if first_byte == SET_MANIFEST_TAG {
        MAX_USER_FRAME
    } else {
        MAX_USER_SMALL_FRAME
    }
}

/// The name of the user request whose body starts with `first_byte`, for
/// errors and logs (`None` for an index this code does not know).
pub fn user_request_name(first_byte: u8) -> Option<&'static str> {
    USER_REQUEST_NAMES.get(usize::from(first_byte)).copied()
}

/// Checks a user-API frame of `len` body bytes whose body starts with
/// `first_byte` against [`user_frame_limit`]. A length above
/// [`MAX_USER_FRAME`] is refused whatever the type.
pub fn check_user_frame(len: usize, first_byte: u8) -> Result<(), ProtocolError> {
    let max = user_frame_limit(first_byte);
    if len <= max {
        return Ok(());
    }
    if len > MAX_USER_FRAME {
        return Err(ProtocolError::TooLarge {
            len,
            max: MAX_USER_FRAME,
        });
    }
    Err(ProtocolError::TooLargeForRequest {
        request: user_request_name(first_byte),
        tag: first_byte,
        len,
        max,
    })
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    use super::*;
    use crate::protocol::{
        GetManifests, GetRecoveryState, MAX_USER_FRAME, Recover, SetManifest, UserRequest, encode,
    };

    /// One request of every variant, and its name. The match has no
    /// wildcard: a new variant does not compile until it is named here,
    /// and then `the_names_follow_the_enum` checks the table above.
    fn every_variant() -> Vec<(UserRequest, &'static str)> {
        let samples: Vec<UserRequest> = vec![
            SetManifest {
                manifest: vec![1; 10],
                policies: vec![],
                expected_previous_transition: None,
                signatures: vec![],
                reshare: false,
            }
            .into(),
            GetManifests {
                consistency_from: None,
                inclusion_of: vec![],
            }
            .into(),
            Recover {
                owner: [1; 32],
                encapsulated_key: [2; 32],
                ciphertext: vec![0; 145],
                latest_transition: [3; 32],
                seedshares: [4; 32],
                force: false,
            }
            .into(),
            GetRecoveryState {
                consistency_from: None,
            }
            .into(),
        ];
        samples
            .into_iter()
            .map(|request| {
                let name = match &request {
                    UserRequest::SetManifest(_) => "SetManifest",
                    UserRequest::GetManifests(_) => "GetManifests",
                    UserRequest::Recover(_) => "Recover",
                    UserRequest::GetRecoveryState(_) => "GetRecoveryState",
                };
                assert_eq!(request.name(), name);
                (request, name)
            })
            .collect()
    }

    #[test]
    fn the_names_follow_the_enum() {
        let variants = every_variant();
        assert_eq!(variants.len(), USER_REQUEST_NAMES.len());
        for (request, name) in variants {
            let frame = encode(&request, MAX_USER_FRAME).unwrap();
            let tag = frame[4];
            assert_eq!(user_request_name(tag), Some(name), "tag {tag:#04x}");
            let expected = if name == "SetManifest" {
                MAX_USER_FRAME
            } else {
                MAX_USER_SMALL_FRAME
            };
            assert_eq!(user_frame_limit(tag), expected, "{name}");
        }
    }

    #[test]
    fn only_set_manifest_may_be_large() {
        // (length, first byte, accepted)
        let cases = [
            (MAX_USER_FRAME, 0x00, true),
            (MAX_USER_SMALL_FRAME + 1, 0x00, true),
            (MAX_USER_SMALL_FRAME, 0x01, true),
            (MAX_USER_SMALL_FRAME + 1, 0x01, false),
            (MAX_USER_SMALL_FRAME + 1, 0x02, false),
            (MAX_USER_FRAME, 0x02, false),
            // Unknown variants, one-byte and multi-byte varints.
            (MAX_USER_SMALL_FRAME, 0x7f, true),
            (MAX_USER_SMALL_FRAME + 1, 0x03, false),
            (MAX_USER_SMALL_FRAME + 1, 0x80, false),
            (MAX_USER_FRAME + 1, 0x00, false),
            (0, 0x00, true),
        ];
        for (len, tag, accepted) in cases {
            assert_eq!(
                check_user_frame(len, tag).is_ok(),
                accepted,
                "{len} bytes, tag {tag:#04x}"
            );
        }
    }

    #[test]
    fn refusals_name_the_request_and_the_limit() {
        let err = check_user_frame(MAX_USER_SMALL_FRAME + 1, 0x01).unwrap_err();
        assert_eq!(
            err,
            ProtocolError::TooLargeForRequest {
                request: Some("GetManifests"),
                tag: 1,
                len: MAX_USER_SMALL_FRAME + 1,
                max: MAX_USER_SMALL_FRAME,
            }
        );
        assert_eq!(
            err.to_string(),
            "a GetManifests frame of 65537 bytes exceeds the 65536-byte limit for that request \
             (only SetManifest may be up to 16777216 bytes)"
        );
        let unknown = check_user_frame(1 << 20, 0x90).unwrap_err().to_string();
        assert_eq!(
            unknown,
            "a frame of an unknown request (first byte 0x90) of 1048576 bytes exceeds the \
             65536-byte limit for that request (only SetManifest may be up to 16777216 bytes)"
        );
        assert_eq!(
            check_user_frame(MAX_USER_FRAME + 1, 0x00),
            Err(ProtocolError::TooLarge {
                len: MAX_USER_FRAME + 1,
                max: MAX_USER_FRAME
            })
        );
    }
}
