//! Shared harness for accord's integration tests: locating the real
//! hardware vectors in `../shared/testdata`.
