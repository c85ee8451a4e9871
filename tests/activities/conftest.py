import pytest

from tests.orgs import factories


@pytest.fixture
def make_org(db, regions):
    return factories.create_org


@pytest.fixture
def make_activity(db):
    return factories.create_activity


@pytest.fixture
def member(db):
    """add_member(openid, org, status=...)"""
    return factories.add_member


@pytest.fixture
def station_rider(db):
    return factories.add_station_rider
