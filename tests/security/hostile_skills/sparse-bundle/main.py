"""Harmless itself: the attack is the sparse file beside it."""

print("ran")
