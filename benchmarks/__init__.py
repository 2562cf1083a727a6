"""``make bench``: measured figures with their targets, as a table and in results.json."""
