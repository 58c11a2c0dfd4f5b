//! Metric relabeling.
