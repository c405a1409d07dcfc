//! Owner key files: `accord keys new` and `accord keys public`, and the
//! loading code later commands (`set`, `sign`, `recover`) share.
//!
//! A key file is an unencrypted PEM PKCS#8 private key
//! (`-----BEGIN PRIVATE KEY-----`), written with mode 0600:
//!
//! - workload owner: Ed25519 (default) or ECDSA P-384 (`--p384`); the
//!   manifest lists its public key in `WorkloadOwnerPubKeys`;
//! - seed-share owner: X25519 (RFC 8410, OID 1.3.101.110); the manifest
//!   lists its public key in `SeedshareOwnerPubKeys`.
//!
//! Public keys are printed as the manifest writes them: hex of the
//! SubjectPublicKeyInfo DER. OpenSSL reads and writes the same files
//! (`openssl genpkey -algorithm ed25519|x25519`, `openssl pkey`).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use accord_core::hex;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::input;

/// PKCS#8 (RFC 5208/8410) of an X25519 private key, up to the 32 key bytes:
/// `SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.110 }, OCTET STRING {
/// OCTET STRING (32) } }`.
const X25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
];

/// PKCS#8 v1 of an Ed25519 private key, up to the 32 seed bytes (as
/// X25519 with OID 1.3.101.112). Written instead of the v2 form with the
/// public key, which OpenSSL 3.0 does not read.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// SubjectPublicKeyInfo of an X25519 public key, up to the 32 key bytes:
/// `SEQUENCE { SEQUENCE { OID 1.3.101.110 }, BIT STRING (0 unused bits) }`.
const X25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
];

/// Default file name of a workload owner's key.
pub const WORKLOAD_OWNER_FILE: &str = "workload-owner.pem";
/// Default file name of a seed-share owner's key.
pub const SEEDSHARE_OWNER_FILE: &str = "seedshare-owner.pem";

/// An X25519 secret scalar: zeroized on drop, never printed.
#[derive(Clone, ZeroizeOnDrop)]
pub struct X25519Secret([u8; 32]);

impl X25519Secret {
    /// Wraps raw secret bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw secret bytes (for HPKE decapsulation).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The public key (X25519 of the base point).
    pub fn public_key(&self) -> [u8; 32] {
        let secret = x25519_dalek::StaticSecret::from(self.0);
        x25519_dalek::PublicKey::from(&secret).to_bytes()
    }
}

impl fmt::Debug for X25519Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("X25519Secret(<redacted>)")
    }
}

/// A private key loaded from a key file.
pub enum PrivateKey {
    /// A workload owner's Ed25519 signing key.
    Ed25519(ed25519_dalek::SigningKey),
    /// A workload owner's ECDSA P-384 signing key.
    P384(p384::SecretKey),
    /// A seed-share owner's X25519 key.
    X25519(X25519Secret),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the kind and public key: never secret material.
        write!(
            f,
            "PrivateKey::{}({})",
            self.kind(),
            hex::encode(&self.public_spki_der())
        )
    }
}

/// What a key is for (the `--workload-owner` / `--seedshare-owner` choice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRole {
    /// Signs manifest updates (`WorkloadOwnerPubKeys`).
    WorkloadOwner,
    /// Receives seed shares (`SeedshareOwnerPubKeys`).
    SeedshareOwner,
}

impl PrivateKey {
    /// Generates a fresh key from the operating system's randomness.
    pub fn generate(role: KeyRole, p384: bool) -> anyhow::Result<Self> {
        let mut seed = Zeroizing::new([0u8; 48]);
        match role {
            KeyRole::SeedshareOwner => {
                getrandom::fill(&mut seed[..32]).context("no randomness")?;
                let mut bytes = [0u8; 32];
                bytes.copy_from_slice(&seed[..32]);
                let secret = X25519Secret::new(bytes);
                zeroize::Zeroize::zeroize(&mut bytes);
                Ok(Self::X25519(secret))
            }
            KeyRole::WorkloadOwner if p384 => {
                // A uniformly random 48-byte string is a valid scalar except
                // with negligible probability; retry in that case.
                for _ in 0..16 {
                    getrandom::fill(&mut seed[..]).context("no randomness")?;
                    if let Ok(key) = p384::SecretKey::from_slice(&seed[..]) {
                        return Ok(Self::P384(key));
                    }
                }
                bail!("could not generate a P-384 key")
            }
            KeyRole::WorkloadOwner => {
                getrandom::fill(&mut seed[..32]).context("no randomness")?;
                let mut bytes = Zeroizing::new([0u8; 32]);
                bytes.copy_from_slice(&seed[..32]);
                Ok(Self::Ed25519(ed25519_dalek::SigningKey::from_bytes(&bytes)))
            }
        }
    }

    /// `ed25519`, `p384` or `x25519`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "ed25519",
            Self::P384(_) => "p384",
            Self::X25519(_) => "x25519",
        }
    }

    /// What the key is for.
    pub fn role(&self) -> KeyRole {
        match self {
            Self::Ed25519(_) | Self::P384(_) => KeyRole::WorkloadOwner,
            Self::X25519(_) => KeyRole::SeedshareOwner,
        }
    }

    /// The public key as SubjectPublicKeyInfo DER (what the manifest lists,
    /// hex-encoded).
    pub fn public_spki_der(&self) -> Vec<u8> {
        match self {
            Self::Ed25519(key) => key
                .verifying_key()
                .to_public_key_der()
                .map(|doc| doc.as_bytes().to_vec())
                .unwrap_or_default(),
            Self::P384(key) => key
                .public_key()
                .to_public_key_der()
                .map(|doc| doc.as_bytes().to_vec())
                .unwrap_or_default(),
            Self::X25519(secret) => {
                let mut der = X25519_SPKI_PREFIX.to_vec();
                der.extend_from_slice(&secret.public_key());
                der
            }
        }
    }

    /// The public key as the manifest writes it: hex of the SPKI DER.
    pub fn public_hex(&self) -> String {
        hex::encode(&self.public_spki_der())
    }

    /// The key as PEM PKCS#8 (`PRIVATE KEY`).
    pub fn to_pem(&self) -> anyhow::Result<Zeroizing<String>> {
        let pem = match self {
            Self::Ed25519(key) => {
                let mut der = Zeroizing::new(ED25519_PKCS8_PREFIX.to_vec());
                der.extend_from_slice(key.as_bytes());
                pem_encode("PRIVATE KEY", &der)
            }
            Self::P384(key) => key
                .to_pkcs8_pem(p384::pkcs8::LineEnding::LF)
                .map_err(|e| anyhow::anyhow!("encoding the P-384 key: {e}"))?,
            Self::X25519(secret) => {
                let mut der = Zeroizing::new(X25519_PKCS8_PREFIX.to_vec());
                der.extend_from_slice(secret.as_bytes());
                pem_encode("PRIVATE KEY", &der)
            }
        };
        Ok(pem)
    }

    /// Parses a PEM (`PRIVATE KEY`, or `EC PRIVATE KEY` for P-384) or DER
    /// PKCS#8 private key.
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        if let Ok(text) = std::str::from_utf8(bytes)
            && text.contains("-----BEGIN EC PRIVATE KEY-----")
        {
            let key = p384::SecretKey::from_sec1_pem(text)
                .map_err(|_| anyhow::anyhow!("not a P-384 SEC1 private key"))?;
            return Ok(Self::P384(key));
        }
        let der = Zeroizing::new(
            accord_core::x509::pem::der_or_pem(bytes, "PRIVATE KEY")
                .map_err(|e| anyhow::anyhow!("not a PEM or DER PKCS#8 private key ({e})"))?,
        );
        if der.len() == 48 && der[..16] == X25519_PKCS8_PREFIX {
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(&der[16..]);
            let secret = X25519Secret::new(bytes);
            zeroize::Zeroize::zeroize(&mut bytes);
            return Ok(Self::X25519(secret));
        }
        if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_der(&der) {
            return Ok(Self::Ed25519(key));
        }
        if let Ok(key) = p384::SecretKey::from_pkcs8_der(&der) {
            return Ok(Self::P384(key));
        }
        bail!("unsupported private key (expected Ed25519, ECDSA P-384 or X25519 PKCS#8)")
    }
}

/// PEM-encodes `der` under `label`, lines of 64 characters.
fn pem_encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    use base64ct::{Base64, Encoding};
    let b64 = Zeroizing::new(Base64::encode_string(der));
    let mut out = Zeroizing::new(format!("-----BEGIN {label}-----\n"));
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Loads a private key file written by `accord keys new` (or OpenSSL).
pub fn load_private_key(path: &Path) -> anyhow::Result<PrivateKey> {
    let bytes = Zeroizing::new(input::read(path)?);
    PrivateKey::from_bytes(&bytes).with_context(|| path.display().to_string())
}

/// Writes a key file with mode 0600; refuses to replace an existing file
/// unless `force`.
pub fn write_private_key(path: &Path, key: &PrivateKey, force: bool) -> anyhow::Result<()> {
    let pem = key.to_pem()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    if force {
        // Replace, rather than truncate, so an existing file's wider mode is
        // not kept.
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot replace {}", path.display())),
        }
    }
    let mut file = options.create_new(true).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists: refusing to overwrite a key (pass --force to replace it)",
                path.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot create {}", path.display()))
        }
    })?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Subcommands of `accord keys`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate an owner key and write it as a PEM PKCS#8 file (mode 0600).
    ///
    /// --workload-owner: an Ed25519 key (ECDSA P-384 with --p384) that
    /// signs manifest updates; default file workload-owner.pem.
    /// --seedshare-owner: an X25519 key that receives the encrypted seed
    /// shares for recovery; default file seedshare-owner.pem.
    ///
    /// Prints the public key as hex of its SubjectPublicKeyInfo DER, the
    /// form the manifest's WorkloadOwnerPubKeys / SeedshareOwnerPubKeys
    /// list (`accord manifest generate --workload-owner-key FILE` adds it).
    /// Never overwrites an existing file unless --force.
    #[command(verbatim_doc_comment)]
    New(NewArgs),

    /// Print the public key of a private key file (hex SubjectPublicKeyInfo DER).
    Public {
        /// The private key file (PEM or DER PKCS#8).
        file: PathBuf,
        /// Print {"file", "kind", "public_key"} as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Arguments of `accord keys new`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("role").required(true).args(["workload_owner", "seedshare_owner"]))]
pub struct NewArgs {
    /// A workload owner's signing key (Ed25519; ECDSA P-384 with --p384).
    #[arg(long)]
    workload_owner: bool,

    /// A seed-share owner's X25519 key.
    #[arg(long)]
    seedshare_owner: bool,

    /// With --workload-owner: ECDSA P-384 instead of Ed25519.
    #[arg(long, requires = "workload_owner")]
    p384: bool,

    /// Where to write the key. Default: workload-owner.pem or
    /// seedshare-owner.pem in the current directory.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,

    /// Replace an existing file.
    #[arg(long)]
    force: bool,

    /// Print {"file", "kind", "public_key"} as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs an `accord keys` subcommand.
pub fn run(command: KeysCommand) -> ExitCode {
    let outcome = match command {
        KeysCommand::New(args) => new(&args),
        KeysCommand::Public { file, json } => {
            load_private_key(&file).map(|key| print_public(&file, &key, json))
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn new(args: &NewArgs) -> anyhow::Result<()> {
    let role = if args.seedshare_owner {
        KeyRole::SeedshareOwner
    } else {
        KeyRole::WorkloadOwner
    };
    let path = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(match role {
            KeyRole::WorkloadOwner => WORKLOAD_OWNER_FILE,
            KeyRole::SeedshareOwner => SEEDSHARE_OWNER_FILE,
        })
    });
    let key = PrivateKey::generate(role, args.p384)?;
    write_private_key(&path, &key, args.force)?;
    if !args.json {
        eprintln!("wrote {} ({} private key)", path.display(), key.kind());
    }
    print_public(&path, &key, args.json);
    Ok(())
}

fn print_public(path: &Path, key: &PrivateKey, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "file": path.display().to_string(),
                "kind": key.kind(),
                "public_key": key.public_hex(),
            })
        );
    } else {
        println!("{}", key.public_hex());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_core::manifest::{OwnerKey, SeedshareKey};

    #[test]
    fn generated_keys_round_trip_through_pem_and_parse_as_manifest_keys() {
        for (role, p384) in [
            (KeyRole::WorkloadOwner, false),
            (KeyRole::WorkloadOwner, true),
            (KeyRole::SeedshareOwner, false),
        ] {
            let key = PrivateKey::generate(role, p384).unwrap();
            let pem = key.to_pem().unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            let back = PrivateKey::from_bytes(pem.as_bytes()).unwrap();
            assert_eq!(back.kind(), key.kind());
            assert_eq!(back.public_spki_der(), key.public_spki_der());
            match role {
                KeyRole::WorkloadOwner => {
                    OwnerKey::from_hex(&key.public_hex()).unwrap();
                }
                KeyRole::SeedshareOwner => {
                    SeedshareKey::from_hex(&key.public_hex()).unwrap();
                }
            }
        }
    }

    #[test]
    fn x25519_public_key_matches_rfc7748_vector() {
        // RFC 7748 §6.1, Alice.
        let secret: [u8; 32] =
            hex::decode_array("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap();
        let key = PrivateKey::X25519(X25519Secret::new(secret));
        assert_eq!(
            key.public_hex(),
            "302a300506032b656e032100\
             8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }

    #[test]
    fn debug_never_prints_secrets() {
        let secret = [0x42u8; 32];
        let key = PrivateKey::X25519(X25519Secret::new(secret));
        let text = format!("{key:?} {:?}", X25519Secret::new(secret));
        assert!(!text.contains(&hex::encode(&secret)), "{text}");
        assert!(text.contains("redacted"));
    }
}
