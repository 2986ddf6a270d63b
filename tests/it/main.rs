//! Integration tests: one binary, one module per area.

mod apply;
mod catalog;
mod compose;
mod concurrent;
mod diff;
mod forge;
mod forged_approvals;
mod git;
mod kubernetes;
mod preview;
mod prism;
mod render;
mod serve;
mod signers;
mod support;
mod teams;
mod validate;
