//! Integration tests: one binary, one module per area.

mod catalog;
mod compose;
mod render;
mod support;
mod validate;
