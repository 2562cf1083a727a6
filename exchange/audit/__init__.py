"""Append-only audit trail: per-aggregate hash chains sealed by periodic checkpoints."""
