//! Hidden entry points for the fuzz targets. Not a stable API.

/// Fuzz entry: the TDX quote parser.
pub use crate::evidence::tdx::fuzz_parse_quote as fuzz_tdx_quote;

/// Fuzz entry: the TDX collateral parsers.
pub use crate::evidence::tdx::fuzz_parse_collateral as fuzz_tdx_collateral;
