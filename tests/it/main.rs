//! Integration tests: one binary, one module per area.

mod catalog;
mod support;
mod validate;
