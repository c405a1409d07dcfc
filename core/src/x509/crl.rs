//! A borrowed view of an X.509 certificate revocation list.

use crate::crypto::CryptoProvider;
use crate::der::{self, DerReader, tag};
use crate::time::UnixTime;

use super::X509Error;
use super::algorithm::SignatureAlgorithm;
use super::cert::Certificate;

/// A CRL, parsed without copying. Every revoked entry is checked for shape
/// when the CRL is parsed, so lookups cannot fail later.
#[derive(Clone, Copy, Debug)]
pub struct Crl<'a> {
    tbs: &'a [u8],
    issuer: &'a [u8],
    this_update: UnixTime,
    next_update: Option<UnixTime>,
    revoked: &'a [u8],
    crl_number: Option<&'a [u8]>,
    signature_algorithm: SignatureAlgorithm,
    signature: &'a [u8],
}

/// Iterates the serial numbers (big-endian magnitudes) a CRL revokes.
#[derive(Clone, Debug)]
pub struct RevokedSerials<'a> {
    reader: DerReader<'a>,
}

fn parse_entry(contents: &[u8]) -> Result<&[u8], X509Error> {
    let mut entry = DerReader::new(contents);
    let serial = der::uint_bytes(entry.expect(tag::INTEGER)?)?;
    der::time(&entry.read()?)?;
    entry.optional(tag::SEQUENCE)?;
    entry.finish()?;
    Ok(serial)
}

/// cRLNumber, 2.5.29.20.
const OID_CRL_NUMBER: &[u64] = &[2, 5, 29, 20];

/// Reads `crlExtensions` (the contents of `[0]`): each extension is
/// checked for shape, a duplicate cRLNumber and any critical extension
/// (a delta-CRL indicator or an issuing distribution point would narrow
/// what the list covers; RFC 5280 5.2 forbids using a CRL with a critical
/// extension the reader does not process) are refused, and the number's
/// magnitude is returned.
fn crl_number(explicit: &[u8]) -> Result<Option<&[u8]>, X509Error> {
    let mut outer = DerReader::new(explicit);
    let extensions = outer.expect(tag::SEQUENCE)?;
    outer.finish()?;
    let mut reader = DerReader::new(extensions);
    let mut number = None;
    while !reader.is_empty() {
        let mut extension = DerReader::new(reader.expect(tag::SEQUENCE)?);
        let oid = extension.expect(tag::OID)?;
        der::oid_valid(oid)?;
        if let Some(critical) = extension.optional(tag::BOOLEAN)?
            && der::boolean(critical)?
        {
            return Err(X509Error::UnknownCriticalExtension);
        }
        let value = extension.expect(tag::OCTET_STRING)?;
        extension.finish()?;
        if der::oid_is(oid, OID_CRL_NUMBER) {
            if number.is_some() {
                return Err(X509Error::DuplicateExtension);
            }
            let integer = der::single(value, tag::INTEGER)?;
            number = Some(der::uint_bytes(integer.contents)?);
        }
    }
    Ok(number)
}

impl<'a> Iterator for RevokedSerials<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<Self::Item> {
        // Entries were validated in `Crl::from_der`; a failure here is
        // impossible, and ending the iteration is the safe reading anyway.
        let contents = self.reader.expect(tag::SEQUENCE).ok()?;
        parse_entry(contents).ok()
    }
}

impl<'a> Crl<'a> {
    /// Parses one DER CRL (v1 or v2); trailing bytes are refused.
    pub fn from_der(input: &'a [u8]) -> Result<Self, X509Error> {
        let outer = der::single(input, tag::SEQUENCE)?;
        let mut crl = DerReader::new(outer.contents);
        let tbs = crl.expect_tlv(tag::SEQUENCE)?;
        let outer_algorithm = crl.expect_tlv(tag::SEQUENCE)?;
        let signature = der::bit_string_bytes(crl.expect(tag::BIT_STRING)?)?;
        crl.finish()?;

        let mut t = DerReader::new(tbs.contents);
        if let Some(version) = t.optional(tag::INTEGER)?
            && der::uint_u64(version)? != 1
        {
            return Err(X509Error::UnsupportedVersion);
        }
        let inner_algorithm = t.expect_tlv(tag::SEQUENCE)?;
        if inner_algorithm.raw != outer_algorithm.raw {
            return Err(X509Error::AlgorithmMismatch);
        }
        let signature_algorithm = SignatureAlgorithm::from_der(inner_algorithm.contents)?;
        let issuer = t.expect_tlv(tag::SEQUENCE)?.raw;
        let this_update = der::time(&t.read()?)?;
        let next_update = match t.peek_tag() {
            Some(tag::UTC_TIME | tag::GENERALIZED_TIME) => Some(der::time(&t.read()?)?),
            _ => None,
        };
        let revoked = t.optional(tag::SEQUENCE)?.unwrap_or(&[]);
        let crl_number = match t.optional(tag::context_constructed(0))? {
            Some(extensions) => crl_number(extensions)?,
            None => None,
        };
        t.finish()?;

        let mut entries = DerReader::new(revoked);
        while !entries.is_empty() {
            parse_entry(entries.expect(tag::SEQUENCE)?)?;
        }
        Ok(Self {
            tbs: tbs.raw,
            issuer,
            this_update,
            next_update,
            revoked,
            crl_number,
            signature_algorithm,
            signature,
        })
    }

    /// The cRLNumber extension (RFC 5280 5.2.3) as a big-endian magnitude
    /// without leading zeros, if present. Issuers number their CRLs in
    /// increasing order, so a verifier can refuse one older than the
    /// newest it has seen.
    pub fn crl_number(&self) -> Option<&'a [u8]> {
        self.crl_number
    }

    /// The signed part (`tbsCertList`).
    pub fn tbs(&self) -> &'a [u8] {
        self.tbs
    }

    /// The issuer Name's DER.
    pub fn issuer_raw(&self) -> &'a [u8] {
        self.issuer
    }

    /// When this CRL was issued.
    pub fn this_update(&self) -> UnixTime {
        self.this_update
    }

    /// When the next CRL is due, if stated.
    pub fn next_update(&self) -> Option<UnixTime> {
        self.next_update
    }

    /// Whether the CRL is current at `at`: `thisUpdate <= at <= nextUpdate`.
    /// A CRL without nextUpdate is refused.
    pub fn check_validity(&self, at: UnixTime) -> Result<(), X509Error> {
        let next_update = self.next_update.ok_or(X509Error::MissingNextUpdate)?;
        if at < self.this_update {
            return Err(X509Error::NotYetValid {
                not_before: self.this_update,
                at,
            });
        }
        if at > next_update {
            return Err(X509Error::Expired {
                not_after: next_update,
                at,
            });
        }
        Ok(())
    }

    /// The revoked serial numbers.
    pub fn revoked_serials(&self) -> RevokedSerials<'a> {
        RevokedSerials {
            reader: DerReader::new(self.revoked),
        }
    }

    /// Whether `serial` (a big-endian magnitude, as [`Certificate::serial`]
    /// returns) is revoked.
    pub fn is_revoked(&self, serial: &[u8]) -> bool {
        self.revoked_serials().any(|revoked| revoked == serial)
    }

    /// Checks that `issuer` signed this CRL (name chaining and signature).
    pub fn verify_issued_by(
        &self,
        issuer: &Certificate<'_>,
        provider: &dyn CryptoProvider,
    ) -> Result<(), X509Error> {
        if self.issuer != issuer.subject_raw() {
            return Err(X509Error::IssuerMismatch);
        }
        issuer
            .public_key()
            .verify(self.signature_algorithm, self.tbs, self.signature, provider)
    }
}
