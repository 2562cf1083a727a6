"""Reporting: utilization against the action plan's targets, carbon, price index, anomaly flags,
company oversight and exports. The highest context: it reads every context below it."""
