//! Criterion benchmarks of Ponte's hot paths; see `benches/` and BENCHMARKS.md.
