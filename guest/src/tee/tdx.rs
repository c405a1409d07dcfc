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

    /// core's synthetic quote (garbage signatures) of `version` 4 or 5
    /// (v5: body type 2) with `report_data` as REPORTDATA.
    fn quote(version: u16, report_data: &[u8; 64]) -> Vec<u8> {
        accord_core::internal::synthetic_tdx_quote(version, 2, Some(report_data), &[])
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
