//! SEV-SNP vectors (to be written).
