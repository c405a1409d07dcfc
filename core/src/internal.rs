//! Hidden entry points for the fuzz targets. Not a stable API.
