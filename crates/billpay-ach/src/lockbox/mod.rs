//! Lockbox files (placeholder).
