"""Contracts from awards: hashed terms, signatures, deliveries with re-assay, disputes."""
