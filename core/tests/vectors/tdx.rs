//! TDX vectors (to be written).
