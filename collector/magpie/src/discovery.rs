//! File-based service discovery.
