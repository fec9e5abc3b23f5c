"""Harmless itself: the attack is its SKILL.md, a symlink the server reads to publish docs."""

print("documentation comes from SKILL.md")
