"""Blueprint of this feature (filled in by its issue)."""

blp = None
