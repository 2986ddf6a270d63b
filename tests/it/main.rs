//! Integration tests: one binary, one module per area.

mod catalog;
mod compose;
mod diff;
mod render;
mod support;
mod validate;
