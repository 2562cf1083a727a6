"""The demand context: buyers' specifications and matching them with published lots."""
