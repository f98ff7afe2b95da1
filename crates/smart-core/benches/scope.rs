//! Criterion benchmark: parse a typical 20-scope grant and query it.
#![allow(missing_docs)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use smart_core::scope::{Interaction, ScopeContext, ScopeSet};

fn main_bench(_c: &mut Criterion) {}
criterion_group!(benches, main_bench);
criterion_main!(benches);
