"""The console's pages, one module per section of the navigation (see app/console/__init__.py)."""
