"""Bids, buy-now, ascending auctions, sealed tenders, allocation at close and the award ladder."""
