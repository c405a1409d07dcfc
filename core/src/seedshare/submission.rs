//! Authenticated share submission: how a seed-share owner hands its share
//! to a recovering coordinator so that the coordinator knows *which owner
//! key* sent it, and *what the owner agreed to recover*.
//!
//! A share alone proves nothing about its sender: it is checked against
//! commitments the (untrusted) store provides. So the coordinator accepts
//! a share only inside an HPKE (RFC 9180) **Auth mode** message whose
//! sender key is the owner's X25519 key listed in the manifest:
//!
//! - **Recipient**: a fresh X25519 key of the coordinator
//!   ([`RecoveryKey`]), made per attested session and sent to the owner
//!   inside it (the owner verified the coordinator's evidence for that
//!   session, so the key belongs to a genuine coordinator).
//! - **Sender**: the owner's static X25519 key. HPKE Auth mode mixes
//!   `DH(sender secret, recipient public)` into the key schedule, so only
//!   the holder of the owner's secret key can produce a ciphertext that
//!   opens under the owner's public key.
//! - **Suite**: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305
//!   (as for sealed shares), `info` = [`SUBMISSION_INFO`].
//! - **AAD** ([`SubmissionBinding::aad`]): `session (32) ‖ latest
//!   transition (32) ‖ seed-share record address (32) ‖ force (1)`. The
//!   session value is a TLS exporter of the attested session (no relay to
//!   another session); the transition and the record are what the owner's
//!   CLI checked against its own trust state and `seed-shares.json`; the
//!   coordinator refuses a submission bound to anything but what it would
//!   recover to.
//! - **Plaintext**: the 129-byte share encoding.

use alloc::vec::Vec;
use core::fmt;

use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use super::{Aead, Kdf, Kem, RngAdapter, SeedShareError, Share, owner_public_key};
use crate::crypto::SecureRandom;
use crate::manifest::SeedshareKey;

/// The HPKE `info` string of a submission.
pub const SUBMISSION_INFO: &[u8] = b"accord/v1 recovery submission";

/// Length of [`SubmissionBinding::aad`].
pub const BINDING_LEN: usize = 32 + 32 + 32 + 1;

/// What a submission is bound to (its AAD).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubmissionBinding {
    /// A TLS exporter value of the attested session the share travels in.
    pub session: [u8; 32],
    /// The latest transition the owner agreed to recover.
    pub latest_transition: [u8; 32],
    /// The address of the seed-share record the owner agreed to.
    pub seedshares: [u8; 32],
    /// Whether the owner asked to recover although ready peers exist.
    pub force: bool,
}

impl SubmissionBinding {
    /// `session ‖ latest_transition ‖ seedshares ‖ force`.
    pub fn aad(&self) -> [u8; BINDING_LEN] {
        crate::codec::concat(&[
            &self.session,
            &self.latest_transition,
            &self.seedshares,
            &[u8::from(self.force)],
        ])
    }
}

/// The coordinator's X25519 key for one session's submissions. Secret.
pub struct RecoveryKey {
    secret: Zeroizing<[u8; 32]>,
    public: SeedshareKey,
}

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryKey")
            .field("public", &crate::hex::Hex(&self.public.0))
            .finish_non_exhaustive()
    }
}

impl RecoveryKey {
    /// A fresh key.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, SeedShareError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill(secret.as_mut_slice())
            .map_err(|_| SeedShareError::Random)?;
        let public = owner_public_key(&secret);
        Ok(Self { secret, public })
    }

    /// The public key, to send to the owner.
    pub fn public(&self) -> SeedshareKey {
        self.public
    }
}

/// A share sealed by its owner to a coordinator's [`RecoveryKey`].
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSubmission {
    /// The sender: the owner's X25519 public key (as in the manifest).
    pub owner: SeedshareKey,
    /// The HPKE encapsulated key.
    pub encapsulated_key: [u8; 32],
    /// The HPKE ciphertext of the share (129 bytes) and its tag.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for SealedSubmission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSubmission")
            .field("owner", &crate::hex::Hex(&self.owner.0))
            .finish_non_exhaustive()
    }
}

/// The owner's side: seals `share` with the owner's secret key to the
/// coordinator's `recipient` key, bound to `binding`.
pub fn seal_submission(
    share: &Share,
    owner_secret: &[u8; 32],
    recipient: &SeedshareKey,
    binding: &SubmissionBinding,
    rng: &dyn SecureRandom,
) -> Result<SealedSubmission, SeedShareError> {
    let bad = SeedShareError::Malformed("the coordinator's recovery key is unusable");
    let recipient_key = <Kem as hpke::Kem>::PublicKey::from_bytes(&recipient.0).map_err(|_| bad)?;
    let owner = owner_public_key(owner_secret);
    let sender_secret = <Kem as hpke::Kem>::PrivateKey::from_bytes(owner_secret)
        .map_err(|_| SeedShareError::Malformed("the owner's key is unusable"))?;
    let sender_public = <Kem as hpke::Kem>::PublicKey::from_bytes(&owner.0)
        .map_err(|_| SeedShareError::Malformed("the owner's key is unusable"))?;
    let plaintext = share.to_bytes();
    let mut adapter = RngAdapter::new(rng);
    let sealed = hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
        &OpModeS::Auth((sender_secret, sender_public)),
        &recipient_key,
        SUBMISSION_INFO,
        plaintext.as_slice(),
        &binding.aad(),
        &mut adapter,
    );
    adapter.check()?;
    let (encapsulated, ciphertext) = sealed.map_err(|_| bad)?;
    let encapsulated_key: [u8; 32] = encapsulated
        .to_bytes()
        .as_slice()
        .try_into()
        .map_err(|_| SeedShareError::Malformed("encapsulated key length"))?;
    Ok(SealedSubmission {
        owner,
        encapsulated_key,
        ciphertext,
    })
}

/// The coordinator's side: opens `sealed` with `recipient`, which proves
/// that the holder of `sealed.owner`'s secret key made it for exactly
/// `binding`. Returns the share (not yet checked against commitments).
/// Any failure is [`SeedShareError::Open`]: wrong sender key, another
/// session, another binding, or a tampered message.
pub fn open_submission(
    sealed: &SealedSubmission,
    recipient: &RecoveryKey,
    binding: &SubmissionBinding,
) -> Result<Share, SeedShareError> {
    let secret = <Kem as hpke::Kem>::PrivateKey::from_bytes(recipient.secret.as_slice())
        .map_err(|_| SeedShareError::Open)?;
    let sender = <Kem as hpke::Kem>::PublicKey::from_bytes(&sealed.owner.0)
        .map_err(|_| SeedShareError::Open)?;
    let encapsulated = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed.encapsulated_key)
        .map_err(|_| SeedShareError::Open)?;
    let plaintext = hpke::single_shot_open::<Aead, Kdf, Kem>(
        &OpModeR::Auth(sender),
        &secret,
        &encapsulated,
        SUBMISSION_INFO,
        &sealed.ciphertext,
        &binding.aad(),
    )
    .map_err(|_| SeedShareError::Open)?;
    let plaintext = Zeroizing::new(plaintext);
    Share::from_bytes(&plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::CryptoError;

    struct Counter(core::cell::Cell<u8>);

    impl SecureRandom for Counter {
        fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
            for byte in dest {
                let next = self.0.get().wrapping_add(37);
                self.0.set(next);
                *byte = next;
            }
            Ok(())
        }
    }

    fn share() -> Share {
        let mut bytes = [0u8; super::super::SHARE_LEN];
        bytes[0] = 2;
        for (i, b) in bytes.iter_mut().enumerate().skip(1) {
            // Canonical scalars: keep byte 31 of each value small.
            *b = if i % 32 == 0 { 0 } else { i as u8 };
        }
        Share::from_bytes(&bytes).unwrap()
    }

    fn binding() -> SubmissionBinding {
        SubmissionBinding {
            session: [1; 32],
            latest_transition: [2; 32],
            seedshares: [3; 32],
            force: false,
        }
    }

    #[test]
    fn a_submission_opens_only_for_its_owner_session_and_binding() {
        let rng = Counter(core::cell::Cell::new(9));
        let owner_secret = [7u8; 32];
        let other_secret = [8u8; 32];
        let coordinator = RecoveryKey::generate(&rng).unwrap();
        let sealed = seal_submission(
            &share(),
            &owner_secret,
            &coordinator.public(),
            &binding(),
            &rng,
        )
        .unwrap();
        assert_eq!(sealed.owner, owner_public_key(&owner_secret));
        let opened = open_submission(&sealed, &coordinator, &binding()).unwrap();
        assert_eq!(opened.to_bytes(), share().to_bytes());

        // Another owner's name on the same ciphertext: the sender check fails.
        let renamed = SealedSubmission {
            owner: owner_public_key(&other_secret),
            ..sealed.clone()
        };
        assert_eq!(
            open_submission(&renamed, &coordinator, &binding()).unwrap_err(),
            SeedShareError::Open
        );
        // Another session, transition, record or force flag.
        for changed in [
            SubmissionBinding {
                session: [9; 32],
                ..binding()
            },
            SubmissionBinding {
                latest_transition: [9; 32],
                ..binding()
            },
            SubmissionBinding {
                seedshares: [9; 32],
                ..binding()
            },
            SubmissionBinding {
                force: true,
                ..binding()
            },
        ] {
            assert_eq!(
                open_submission(&sealed, &coordinator, &changed).unwrap_err(),
                SeedShareError::Open
            );
        }
        // Another coordinator key (another session's).
        let other = RecoveryKey::generate(&rng).unwrap();
        assert_eq!(
            open_submission(&sealed, &other, &binding()).unwrap_err(),
            SeedShareError::Open
        );
        // A flipped ciphertext bit.
        let mut tampered = sealed.clone();
        tampered.ciphertext[5] ^= 1;
        assert_eq!(
            open_submission(&tampered, &coordinator, &binding()).unwrap_err(),
            SeedShareError::Open
        );
    }

    #[test]
    fn a_base_mode_seal_by_someone_without_the_owner_key_does_not_open() {
        // The attacker knows the owner's public key and the coordinator's
        // public key, and seals in Base mode (no sender key) or in Auth
        // mode with its own key while claiming to be the owner.
        let rng = Counter(core::cell::Cell::new(3));
        let coordinator = RecoveryKey::generate(&rng).unwrap();
        let owner = owner_public_key(&[7u8; 32]);
        let forged = seal_submission(
            &share(),
            &[5u8; 32],
            &coordinator.public(),
            &binding(),
            &rng,
        )
        .unwrap();
        let claimed = SealedSubmission { owner, ..forged };
        assert_eq!(
            open_submission(&claimed, &coordinator, &binding()).unwrap_err(),
            SeedShareError::Open
        );
    }
}
