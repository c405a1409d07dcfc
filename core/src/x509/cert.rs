//! A borrowed, validated view of one X.509 v3 certificate.

use crate::crypto::CryptoProvider;
use crate::der::{self, DerReader, Tlv, tag};
use crate::time::UnixTime;

use super::algorithm::{PublicKey, SignatureAlgorithm};
use super::{X509Error, oid};

/// One certificate extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The extension's OID contents (DER, without tag and length).
    pub oid: &'a [u8],
    /// Whether the extension is marked critical.
    pub critical: bool,
    /// The contents of `extnValue` (the DER of the extension's own value).
    pub value: &'a [u8],
}

/// Iterates a certificate's extensions in order.
#[derive(Clone, Debug)]
pub struct Extensions<'a> {
    reader: DerReader<'a>,
}

fn parse_extension<'a>(contents: &'a [u8]) -> Result<Extension<'a>, X509Error> {
    let mut r = DerReader::new(contents);
    let oid = r.expect(tag::OID)?;
    der::oid_valid(oid)?;
    // DER forbids encoding the default FALSE, but real certificates do it;
    // accept either form.
    let critical = match r.optional(tag::BOOLEAN)? {
        Some(value) => der::boolean(value)?,
        None => false,
    };
    let value = r.expect(tag::OCTET_STRING)?;
    r.finish()?;
    Ok(Extension {
        oid,
        critical,
        value,
    })
}

impl<'a> Iterator for Extensions<'a> {
    type Item = Result<Extension<'a>, X509Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.reader.is_empty() {
            return None;
        }
        Some(
            self.reader
                .expect(tag::SEQUENCE)
                .map_err(X509Error::from)
                .and_then(parse_extension),
        )
    }
}

/// An X.509 v3 certificate, parsed without copying.
///
/// Parsing checks the structure strictly (DER, v3, known algorithms,
/// matching inner/outer signature algorithm, well-formed extensions with no
/// duplicates); it does not check the signature or validity period: call
/// [`verify_issued_by`](Self::verify_issued_by) and
/// [`check_validity`](Self::check_validity).
#[derive(Clone, Copy, Debug)]
pub struct Certificate<'a> {
    der: &'a [u8],
    tbs: &'a [u8],
    serial: &'a [u8],
    issuer: &'a [u8],
    subject: &'a [u8],
    not_before: UnixTime,
    not_after: UnixTime,
    spki: &'a [u8],
    public_key: PublicKey<'a>,
    signature_algorithm: SignatureAlgorithm,
    signature: &'a [u8],
    extensions: &'a [u8],
}

fn common_name(name: &[u8]) -> Option<&str> {
    let mut rdns = DerReader::new(der::single(name, tag::SEQUENCE).ok()?.contents);
    let mut found = None;
    while !rdns.is_empty() {
        let mut set = DerReader::new(rdns.expect(tag::SET).ok()?);
        while !set.is_empty() {
            let mut attribute = DerReader::new(set.expect(tag::SEQUENCE).ok()?);
            let attribute_type = attribute.expect(tag::OID).ok()?;
            let value = attribute.read().ok()?;
            if der::oid_is(attribute_type, oid::COMMON_NAME) {
                found = der::string(&value).ok();
            }
        }
    }
    found
}

impl<'a> Certificate<'a> {
    /// Parses one DER certificate; trailing bytes are refused.
    pub fn from_der(input: &'a [u8]) -> Result<Self, X509Error> {
        let outer = der::single(input, tag::SEQUENCE)?;
        let mut cert = DerReader::new(outer.contents);
        let tbs = cert.expect_tlv(tag::SEQUENCE)?;
        let outer_algorithm = cert.expect_tlv(tag::SEQUENCE)?;
        let signature = der::bit_string_bytes(cert.expect(tag::BIT_STRING)?)?;
        cert.finish()?;

        let mut t = DerReader::new(tbs.contents);
        let version = t.expect(tag::context_constructed(0))?;
        if der::uint_u64(der::single(version, tag::INTEGER)?.contents)? != 2 {
            return Err(X509Error::UnsupportedVersion);
        }
        let serial = der::uint_bytes(t.expect(tag::INTEGER)?)?;
        let inner_algorithm = t.expect_tlv(tag::SEQUENCE)?;
        if inner_algorithm.raw != outer_algorithm.raw {
            return Err(X509Error::AlgorithmMismatch);
        }
        let signature_algorithm = SignatureAlgorithm::from_der(inner_algorithm.contents)?;
        let issuer = t.expect_tlv(tag::SEQUENCE)?.raw;
        let mut validity = DerReader::new(t.expect(tag::SEQUENCE)?);
        let not_before = der::time(&validity.read()?)?;
        let not_after = der::time(&validity.read()?)?;
        validity.finish()?;
        let subject = t.expect_tlv(tag::SEQUENCE)?.raw;
        let spki: Tlv<'a> = t.expect_tlv(tag::SEQUENCE)?;
        let public_key = PublicKey::from_spki(spki.contents)?;
        // issuerUniqueID / subjectUniqueID are not used by anyone we talk to.
        if t.optional(tag::context_primitive(1))?.is_some()
            || t.optional(tag::context_primitive(2))?.is_some()
        {
            return Err(X509Error::UnsupportedVersion);
        }
        let extensions = match t.optional(tag::context_constructed(3))? {
            Some(wrapped) => der::single(wrapped, tag::SEQUENCE)?.contents,
            None => &[],
        };
        t.finish()?;

        let parsed = Self {
            der: input,
            tbs: tbs.raw,
            serial,
            issuer,
            subject,
            not_before,
            not_after,
            spki: spki.raw,
            public_key,
            signature_algorithm,
            signature,
            extensions,
        };
        parsed.check_extensions()?;
        Ok(parsed)
    }

    /// Every extension parses, and none appears twice.
    fn check_extensions(&self) -> Result<(), X509Error> {
        for (index, extension) in self.extensions().enumerate() {
            let extension = extension?;
            for earlier in self.extensions().take(index) {
                if earlier?.oid == extension.oid {
                    return Err(X509Error::DuplicateExtension);
                }
            }
        }
        Ok(())
    }

    /// The whole certificate's DER.
    pub fn der(&self) -> &'a [u8] {
        self.der
    }

    /// The signed part (`tbsCertificate`, tag and length included).
    pub fn tbs(&self) -> &'a [u8] {
        self.tbs
    }

    /// The serial number's big-endian magnitude (no leading zero byte).
    pub fn serial(&self) -> &'a [u8] {
        self.serial
    }

    /// The issuer Name's DER.
    pub fn issuer_raw(&self) -> &'a [u8] {
        self.issuer
    }

    /// The subject Name's DER.
    pub fn subject_raw(&self) -> &'a [u8] {
        self.subject
    }

    /// The subject's common name, if it has one.
    pub fn subject_common_name(&self) -> Option<&'a str> {
        common_name(self.subject)
    }

    /// The issuer's common name, if it has one.
    pub fn issuer_common_name(&self) -> Option<&'a str> {
        common_name(self.issuer)
    }

    /// Start of the validity period.
    pub fn not_before(&self) -> UnixTime {
        self.not_before
    }

    /// End of the validity period (inclusive).
    pub fn not_after(&self) -> UnixTime {
        self.not_after
    }

    /// Whether the certificate is valid at `at` (bounds inclusive).
    pub fn check_validity(&self, at: UnixTime) -> Result<(), X509Error> {
        if at < self.not_before {
            return Err(X509Error::NotYetValid {
                not_before: self.not_before,
                at,
            });
        }
        if at > self.not_after {
            return Err(X509Error::Expired {
                not_after: self.not_after,
                at,
            });
        }
        Ok(())
    }

    /// The subject public key.
    pub fn public_key(&self) -> &PublicKey<'a> {
        &self.public_key
    }

    /// The whole SubjectPublicKeyInfo's DER.
    pub fn spki_der(&self) -> &'a [u8] {
        self.spki
    }

    /// The algorithm the issuer signed with.
    pub fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.signature_algorithm
    }

    /// The signatureValue bytes (DER ECDSA-Sig-Value or an RSA signature).
    pub fn signature(&self) -> &'a [u8] {
        self.signature
    }

    /// The extensions, in order.
    pub fn extensions(&self) -> Extensions<'a> {
        Extensions {
            reader: DerReader::new(self.extensions),
        }
    }

    /// The extension with the OID `arcs`, if present.
    pub fn extension(&self, arcs: &[u64]) -> Result<Option<Extension<'a>>, X509Error> {
        for extension in self.extensions() {
            let extension = extension?;
            if der::oid_is(extension.oid, arcs) {
                return Ok(Some(extension));
            }
        }
        Ok(None)
    }

    /// `Some(cA)` from basicConstraints, `None` when the extension is absent.
    pub fn basic_constraints_ca(&self) -> Result<Option<bool>, X509Error> {
        let Some(extension) = self.extension(oid::BASIC_CONSTRAINTS)? else {
            return Ok(None);
        };
        let mut r = DerReader::new(der::single(extension.value, tag::SEQUENCE)?.contents);
        let ca = match r.optional(tag::BOOLEAN)? {
            Some(value) => der::boolean(value)?,
            None => false,
        };
        // pathLenConstraint is allowed and not enforced: our chains are fixed.
        r.optional(tag::INTEGER)?;
        r.finish()?;
        Ok(Some(ca))
    }

    /// Refuses the certificate if any critical extension is neither one of
    /// the generally understood ones (basicConstraints, keyUsage) nor listed
    /// in `also_understood`.
    pub fn check_critical_extensions(&self, also_understood: &[&[u64]]) -> Result<(), X509Error> {
        for extension in self.extensions() {
            let extension = extension?;
            let understood = der::oid_is(extension.oid, oid::BASIC_CONSTRAINTS)
                || der::oid_is(extension.oid, oid::KEY_USAGE)
                || also_understood
                    .iter()
                    .any(|arcs| der::oid_is(extension.oid, arcs));
            if extension.critical && !understood {
                return Err(X509Error::UnknownCriticalExtension);
            }
        }
        Ok(())
    }

    /// Verifies this certificate's signature with `key`.
    pub fn verify_signature(
        &self,
        key: &PublicKey<'_>,
        provider: &dyn CryptoProvider,
    ) -> Result<(), X509Error> {
        key.verify(self.signature_algorithm, self.tbs, self.signature, provider)
    }

    /// Checks that `issuer` issued this certificate: the issuer name equals
    /// the issuer's subject byte for byte, the issuer is not marked as a
    /// non-CA, and the signature verifies under the issuer's key. Validity
    /// periods are not checked here.
    pub fn verify_issued_by(
        &self,
        issuer: &Certificate<'_>,
        provider: &dyn CryptoProvider,
    ) -> Result<(), X509Error> {
        if self.issuer != issuer.subject {
            return Err(X509Error::IssuerMismatch);
        }
        if issuer.basic_constraints_ca()? == Some(false) {
            return Err(X509Error::IssuerNotCa);
        }
        self.verify_signature(issuer.public_key(), provider)
    }
}
