"""A live server for the browser test of the market page (the same as tests/web's)."""
from tests.web.conftest import live_server  # noqa: F401
