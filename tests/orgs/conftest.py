import pytest

from tests.orgs import factories


@pytest.fixture
def make_org(db, regions):
    return factories.create_org
