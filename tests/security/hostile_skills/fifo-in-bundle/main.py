"""Harmless itself: the attack is the named pipe beside it."""

print("ran")
