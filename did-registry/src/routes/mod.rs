//! HTTP routes, one module per resource.

pub(crate) mod log;
pub(crate) mod ops;
pub(crate) mod resolve;
pub(crate) mod trust;
pub(crate) mod write;
