//! Intel TDX through configfs-tsm (provider `tdx_guest`): the outblob is a
//! DCAP quote. This module holds the little the guest needs to know about
//! the quote layout (where REPORT_DATA sits, to check the kernel answered
//! our request); full parsing and verification live in
//! `accord_core::evidence::tdx`.

/// Length of the quote header.
const HEADER_LEN: usize = 48;
/// Offset of REPORTDATA inside a TD report body (TDX 1.0 and 1.5).
const BODY_REPORT_DATA_OFFSET: usize = 520;
/// v5 quotes put a body type (u16) and body size (u32) before the body.
const V5_BODY_DESCRIPTOR_LEN: usize = 6;

/// The REPORTDATA of a v4 or v5 quote, or why it cannot be found.
pub fn quote_report_data(quote: &[u8]) -> Result<&[u8], String> {
    let version = quote
        .get(..2)
        .map(|v| u16::from_le_bytes([v[0], v[1]]))
        .ok_or_else(|| format!("{} bytes are too short for a TDX quote", quote.len()))?;
    let offset = match version {
        4 => HEADER_LEN + BODY_REPORT_DATA_OFFSET,
        5 => HEADER_LEN + V5_BODY_DESCRIPTOR_LEN + BODY_REPORT_DATA_OFFSET,
        other => return Err(format!("TDX quote version {other} is not 4 or 5")),
    };
    quote.get(offset..offset + 64).ok_or_else(|| {
        format!(
            "{} bytes are too short for a TDX v{version} quote (report data ends at {})",
            quote.len(),
            offset + 64
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_report_data_in_v4_and_v5() {
        let mut v4 = vec![0u8; 1000];
        v4[0] = 4;
        v4[568..632].fill(0xab);
        assert_eq!(quote_report_data(&v4).unwrap(), &[0xab; 64][..]);
        let mut v5 = vec![0u8; 1000];
        v5[0] = 5;
        v5[574..638].fill(0xcd);
        assert_eq!(quote_report_data(&v5).unwrap(), &[0xcd; 64][..]);
    }

    #[test]
    fn refuses_short_or_unknown_quotes() {
        assert!(quote_report_data(&[]).is_err());
        assert!(quote_report_data(&[4]).is_err());
        assert!(
            quote_report_data(&[4, 0, 0])
                .unwrap_err()
                .contains("too short")
        );
        let mut v3 = vec![0u8; 1000];
        v3[0] = 3;
        assert!(quote_report_data(&v3).unwrap_err().contains("version 3"));
    }
}
