//! Intel TDX through configfs-tsm (provider `tdx_guest`): the outblob is a
//! DCAP quote. The guest reads the quote's REPORTDATA (to check the kernel
//! answered its request) with core's quote parser,
//! `accord_core::evidence::tdx::quote`, which also verifies nothing but
//! refuses a malformed quote; verification lives in
//! `accord_core::evidence::tdx`.

use accord_core::evidence::tdx::quote::Quote;

/// The REPORTDATA of a v4 or v5 quote, or why the quote does not parse.
pub fn quote_report_data(quote: &[u8]) -> Result<&[u8; 64], String> {
    Quote::parse(quote)
        .map(|parsed| parsed.body.report_data)
        .map_err(|err| format!("{} bytes are not a TDX quote: {err}", quote.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_core::evidence::tdx::quote::{
        HEADER_LEN, INTEL_QE_VENDOR_ID, QE_REPORT_LEN, TD_REPORT10_LEN,
    };

    /// A structurally valid quote (garbage signatures) of `version` 4 or 5
    /// (v5: body type 2) with `report_data` as REPORTDATA.
    fn quote(version: u16, report_data: &[u8; 64]) -> Vec<u8> {
        let mut q = Vec::new();
        q.extend_from_slice(&version.to_le_bytes());
        q.extend_from_slice(&2u16.to_le_bytes());
        q.extend_from_slice(&0x81u32.to_le_bytes());
        q.extend_from_slice(&[0; 4]);
        q.extend_from_slice(&INTEL_QE_VENDOR_ID);
        q.extend_from_slice(&[0; 20]);
        assert_eq!(q.len(), HEADER_LEN);
        if version == 5 {
            q.extend_from_slice(&2u16.to_le_bytes());
            q.extend_from_slice(&(TD_REPORT10_LEN as u32).to_le_bytes());
        }
        q.extend_from_slice(&[0; 520]);
        q.extend_from_slice(report_data);
        let pem = b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
        let mut cert = vec![0u8; QE_REPORT_LEN + 64];
        cert.extend_from_slice(&0u16.to_le_bytes());
        cert.extend_from_slice(&5u16.to_le_bytes());
        cert.extend_from_slice(&(pem.len() as u32).to_le_bytes());
        cert.extend_from_slice(pem);
        let mut sig = vec![0u8; 128];
        sig.extend_from_slice(&6u16.to_le_bytes());
        sig.extend_from_slice(&(cert.len() as u32).to_le_bytes());
        sig.extend_from_slice(&cert);
        q.extend_from_slice(&(sig.len() as u32).to_le_bytes());
        q.extend_from_slice(&sig);
        q
    }

    #[test]
    fn finds_report_data_in_v4_and_v5() {
        assert_eq!(
            quote_report_data(&quote(4, &[0xab; 64])).unwrap(),
            &[0xab; 64]
        );
        assert_eq!(
            quote_report_data(&quote(5, &[0xcd; 64])).unwrap(),
            &[0xcd; 64]
        );
        let mut trailing = quote(4, &[0xab; 64]);
        trailing.push(1);
        assert!(quote_report_data(&trailing).is_err());
    }

    #[test]
    fn refuses_short_or_unknown_quotes() {
        assert!(quote_report_data(&[]).is_err());
        assert!(quote_report_data(&[4]).is_err());
        assert!(
            quote_report_data(&[4, 0, 0])
                .unwrap_err()
                .contains("3 bytes are not a TDX quote")
        );
        let mut v3 = vec![0u8; 1000];
        v3[0] = 3;
        assert!(quote_report_data(&v3).unwrap_err().contains("version 3"));
    }
}
