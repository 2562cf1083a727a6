"""Lots of red mud and red-mud products: assays, certificates, moderation, the catalogue."""
