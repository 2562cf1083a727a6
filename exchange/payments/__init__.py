"""Payments: invoices, a double-entry ledger, bank transfers and Stripe, deposits, settlement,
disposal fees and refunds. ``exchange.payments.services`` is what other contexts call."""
