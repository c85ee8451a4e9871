import pytest

from tests.markets.factories import Shop


@pytest.fixture(autouse=True)
def _fresh_badge_cache(app):
    from app.markets.badge_cache import local_cache

    # tests/conftest.py cleans kv outside the app context, which misses this app's store once
    # another test has created a second app: clear ours here (rate-limit counters, tokens).
    app.extensions["kv"].local.clear()
    local_cache.clear()
    yield
    local_cache.clear()


@pytest.fixture
def shop(client, auth, make_market):
    return Shop(client, auth, make_market)


@pytest.fixture
def pledge_in_force(monkeypatch):
    """Stand-in for the pledges feature until it lands: an approved pledge until a given moment."""
    state = {"until": None}

    def entry(merchant_id, now):
        until = state["until"]
        if until is None or now >= until:
            return None
        return {"items": ["明码标价", "计量准确"], "signer": "李明", "approved_at": "2026-01-01T09:00:00+08:00",
                "valid_until": "2026-12-31T23:59:59+08:00", "market": "东中农贸市场", "changes_at": until}

    import app.pledges.queries as queries

    monkeypatch.setattr(queries, "pledge_badge_entry", entry)
    return state
