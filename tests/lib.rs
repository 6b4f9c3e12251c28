//! End-to-end tests of Civitas live in `e2e/`; this package also builds the registry
//! binary they start.
