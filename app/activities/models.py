"""Models of this feature (filled in by its issue)."""

__all__: list[str] = []
