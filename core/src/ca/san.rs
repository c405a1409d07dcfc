//! Classifying the manifest's subject alternative names: IP literal, URI or
//! DNS name, with the checks each kind needs before it goes into a
//! certificate.

use alloc::string::{String, ToString};
use core::net::IpAddr;
use core::str::FromStr;

use super::CaError;

/// Longest DNS name accepted (RFC 1035: 255 octets on the wire, 253 as text
/// without the trailing dot).
pub const MAX_DNS_NAME_LEN: usize = 253;
/// Longest DNS label (RFC 1035).
pub const MAX_DNS_LABEL_LEN: usize = 63;
/// Longest URI accepted (a sanity bound, not a standard one).
pub const MAX_URI_LEN: usize = 2048;

/// One subject alternative name, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubjectAltName {
    /// A DNS name, lower-cased, possibly starting with the wildcard label
    /// `*.` (dNSName).
    Dns(String),
    /// An IPv4 or IPv6 address (iPAddress).
    Ip(IpAddr),
    /// A URI such as `spiffe://trust-domain/workload` (uniformResourceIdentifier).
    Uri(String),
}

fn bad(san: &str, reason: &'static str) -> CaError {
    CaError::BadSan {
        san: san.to_string(),
        reason,
    }
}

/// RFC 3986 `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn check_label(san: &str, label: &str) -> Result<(), CaError> {
    if label.is_empty() {
        return Err(bad(san, "empty DNS label"));
    }
    if label.len() > MAX_DNS_LABEL_LEN {
        return Err(bad(san, "DNS label longer than 63 characters"));
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(bad(
            san,
            "DNS label with a character other than letters, digits and '-'",
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(bad(san, "DNS label starting or ending with '-'"));
    }
    Ok(())
}

/// Classifies one SAN from the manifest:
///
/// - an IPv4 or IPv6 literal (`10.0.0.1`, `::1`, `fd00::1`) is an
///   [`Ip`](SubjectAltName::Ip);
/// - text starting with an RFC 3986 scheme and `://` (`spiffe://…`,
///   `https://…`), or with `urn:`, is a [`Uri`](SubjectAltName::Uri); any
///   other text with a `:` is refused (it is likely a mistyped IPv6
///   address). A URI must be printable
///   ASCII without spaces, something after the scheme, at most
///   [`MAX_URI_LEN`] characters;
/// - anything else must be a DNS name: lower-cased, then at most
///   [`MAX_DNS_NAME_LEN`] characters of dot-separated LDH labels (letters,
///   digits, `-` not at either end, 1 to 63 characters each), optionally
///   starting with the wildcard label `*.` followed by at least one label.
///   No trailing dot.
///
/// Anything else is refused with [`CaError::BadSan`] and the reason.
pub fn classify_san(text: &str) -> Result<SubjectAltName, CaError> {
    if text.is_empty() {
        return Err(bad(text, "empty"));
    }
    if let Ok(ip) = IpAddr::from_str(text) {
        return Ok(SubjectAltName::Ip(ip));
    }
    if let Some((scheme, rest)) = text.split_once(':') {
        // A mistyped IPv6 address (`fd00::g`) must not become a URI, so a
        // URI needs `scheme://`, or the scheme `urn`.
        let hierarchical = rest.starts_with("//");
        if !is_scheme(scheme) || !(hierarchical || scheme.eq_ignore_ascii_case("urn")) {
            return Err(bad(
                text,
                "':' in a name that is neither an IP address nor a URI (scheme://...)",
            ));
        }
        if rest.trim_start_matches('/').is_empty() {
            return Err(bad(text, "URI with nothing after the scheme"));
        }
        if text.len() > MAX_URI_LEN {
            return Err(bad(text, "URI longer than 2048 characters"));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                text,
                "URI with spaces, control or non-ASCII characters",
            ));
        }
        return Ok(SubjectAltName::Uri(text.to_string()));
    }
    let name = text.to_ascii_lowercase();
    if name.len() > MAX_DNS_NAME_LEN {
        return Err(bad(text, "DNS name longer than 253 characters"));
    }
    let rest = match name.strip_prefix("*.") {
        Some("") => return Err(bad(text, "wildcard without a domain")),
        Some(rest) => rest,
        None => name.as_str(),
    };
    if name.ends_with('.') {
        return Err(bad(text, "DNS name with a trailing dot"));
    }
    for label in rest.split('.') {
        if label == "*" {
            return Err(bad(text, "wildcard other than a leading '*.'"));
        }
        check_label(text, label)?;
    }
    Ok(SubjectAltName::Dns(name))
}
