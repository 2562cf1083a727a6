"""Outgoing e-mail: written to an outbox in the same transaction, delivered after commit."""
