//! Kata init-data: the pod annotation that carries a workload's policy, and
//! the policy hash the hardware binds.
//!
//! The annotation `io.katacontainers.config.hypervisor.cc_init_data` holds
//! base64 (standard alphabet, padded) of the gzip of a TOML document
//! (`version = "0.1.0"`, `algorithm = "sha256"`, `[data]` …). The policy
//! hash is SHA-256 over the **decompressed** TOML bytes; the hypervisor puts
//! it in SEV-SNP `HOST_DATA` / TDX `MRCONFIGID`, and the manifest's
//! `Policies` are keyed by its hex.

use std::fmt;
use std::io::{Read, Write};

use base64ct::{Base64, Encoding};
use sha2::{Digest, Sha256};

/// The Kata annotation holding a pod's init-data.
pub const ANNOTATION: &str = "io.katacontainers.config.hypervisor.cc_init_data";

/// Largest decompressed init-data accepted (a gzip bomb is refused).
pub const MAX_DECOMPRESSED: u64 = 16 * 1024 * 1024;

/// Why an annotation value is not usable init-data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitdataError {
    /// Not standard base64.
    Base64(String),
    /// Not a gzip stream (or a corrupt one).
    Gzip(String),
    /// Decompresses to more than [`MAX_DECOMPRESSED`] bytes.
    TooLarge,
    /// The decompressed bytes are not UTF-8.
    Utf8,
    /// The decompressed text is not a TOML document.
    Toml(String),
    /// The document names a digest algorithm other than SHA-256.
    Algorithm(String),
}

impl fmt::Display for InitdataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Base64(e) => write!(f, "init-data annotation is not base64: {e}"),
            Self::Gzip(e) => write!(f, "init-data annotation is not gzip-compressed: {e}"),
            Self::TooLarge => write!(
                f,
                "init-data decompresses to more than {} MiB: refused",
                MAX_DECOMPRESSED / (1024 * 1024)
            ),
            Self::Utf8 => write!(f, "init-data is not UTF-8 text (expected a TOML document)"),
            Self::Toml(e) => write!(f, "init-data is not a TOML document: {e}"),
            Self::Algorithm(alg) => write!(
                f,
                "init-data names algorithm {alg:?}: accord binds policies by SHA-256 (set algorithm = \"sha256\")"
            ),
        }
    }
}

impl std::error::Error for InitdataError {}

/// The annotation value for an init-data TOML document: base64 of its gzip.
pub fn initdata_annotation(toml: &str) -> String {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(toml.as_bytes());
    let gz = encoder.finish().unwrap_or_default();
    Base64::encode_string(&gz)
}

/// Checks that `text` is a TOML document whose `algorithm` (if any) is
/// `sha256`.
pub fn check_toml(text: &str) -> Result<(), InitdataError> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| {
        InitdataError::Toml(e.to_string().lines().next().unwrap_or_default().into())
    })?;
    match doc.get("algorithm") {
        None => Ok(()),
        Some(toml::Value::String(alg)) if alg.eq_ignore_ascii_case("sha256") => Ok(()),
        Some(other) => Err(InitdataError::Algorithm(
            other
                .as_str()
                .map_or_else(|| format!("{other:?}"), str::to_owned),
        )),
    }
}

/// Decodes an annotation value: base64, then gzip (bounded), then checks
/// the result is a TOML document. Returns the TOML bytes.
pub fn decode_annotation(value: &str) -> Result<Vec<u8>, InitdataError> {
    // YAML block scalars may wrap the value or end it with a newline.
    let compact: String = value.split_ascii_whitespace().collect();
    let gz = Base64::decode_vec(&compact).map_err(|e| InitdataError::Base64(e.to_string()))?;
    // Multi-member, like Go's gzip.Reader (the Kata runtime): trailing bytes
    // that are not another gzip member are refused, not ignored.
    let decoder = flate2::read::MultiGzDecoder::new(gz.as_slice());
    let mut toml_bytes = Vec::new();
    decoder
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut toml_bytes)
        .map_err(|e| InitdataError::Gzip(e.to_string()))?;
    if toml_bytes.len() as u64 > MAX_DECOMPRESSED {
        return Err(InitdataError::TooLarge);
    }
    let text = std::str::from_utf8(&toml_bytes).map_err(|_| InitdataError::Utf8)?;
    check_toml(text)?;
    Ok(toml_bytes)
}

/// The policy hash: SHA-256 over the decompressed init-data.
pub fn policy_hash(toml_bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(toml_bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n\n[data]\n\"policy.rego\" = \"package agent_policy\"\n";

    #[test]
    fn annotation_round_trips() {
        let value = initdata_annotation(DOC);
        assert_eq!(decode_annotation(&value).unwrap(), DOC.as_bytes());
        // Wrapped over several lines, as a YAML folded scalar may be.
        let wrapped = format!("{}\n{}\n", &value[..10], &value[10..]);
        assert_eq!(decode_annotation(&wrapped).unwrap(), DOC.as_bytes());
    }

    #[test]
    fn refuses_bad_layers() {
        assert!(matches!(
            decode_annotation("not base64!"),
            Err(InitdataError::Base64(_))
        ));
        let plain = Base64::encode_string(DOC.as_bytes());
        assert!(matches!(
            decode_annotation(&plain),
            Err(InitdataError::Gzip(_))
        ));
        assert!(matches!(
            decode_annotation(&initdata_annotation("a = = 1")),
            Err(InitdataError::Toml(_))
        ));
        assert!(matches!(
            decode_annotation(&initdata_annotation("algorithm = \"sha384\"")),
            Err(InitdataError::Algorithm(_))
        ));
    }

    #[test]
    fn refuses_trailing_garbage_after_the_gzip_stream() {
        let mut gz = Base64::decode_vec(&initdata_annotation(DOC)).unwrap();
        gz.extend_from_slice(b"garbage");
        assert!(matches!(
            decode_annotation(&Base64::encode_string(&gz)),
            Err(InitdataError::Gzip(_))
        ));
    }

    #[test]
    fn refuses_gzip_bombs() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![b' '; 1024 * 1024];
        for _ in 0..17 {
            encoder.write_all(&zeros).unwrap();
        }
        let value = Base64::encode_string(&encoder.finish().unwrap());
        assert_eq!(decode_annotation(&value), Err(InitdataError::TooLarge));
    }

    #[test]
    fn refuses_non_utf8() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&[0xff, 0xfe, 0x00]).unwrap();
        let value = Base64::encode_string(&encoder.finish().unwrap());
        assert_eq!(decode_annotation(&value), Err(InitdataError::Utf8));
    }
}
