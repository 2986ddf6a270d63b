//! Integration tests: one binary, one module per area.

mod catalog;
mod compose;
mod support;
mod validate;
