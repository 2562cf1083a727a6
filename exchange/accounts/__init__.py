"""Companies, their sites, users, memberships and administrator verification."""
