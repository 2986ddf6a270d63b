//! Integration tests: one binary, one module per area.

mod apply;
mod catalog;
mod compose;
mod config;
mod diff;
mod forge;
mod git;
mod kubernetes;
mod never_wedged;
mod pipes;
mod preview;
mod prism;
mod release;
mod render;
mod secrets;
mod selection;
mod serve;
mod support;
mod validate;
