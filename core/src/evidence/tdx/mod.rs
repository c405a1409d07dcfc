//! Intel TDX quotes (placeholder).
