"""The database, not a read in Python, decides that an entity has one pledge under review (a pledge
in force and its approved renewal may coexist: the renewal begins when the other ends)."""
import pytest
from sqlalchemy.exc import IntegrityError

from app.pledges import services
from app.pledges.models import Pledge
from tests.conftest import error_code


def _row(world, status):
    return Pledge(merchant_id=world.merchant.id, market_id=world.market.id, template_id=world.template.id,
                  template_version=1, title="t", items=["明码标价"], term_months=12, signer_name="李小兰",
                  signed_by_id=world.owner.user_id, status=status)


def test_partial_unique_index_allows_history_but_one_pending(world, db):
    db.session.add_all([_row(world, "rejected"), _row(world, "revoked"), _row(world, "expired"),
                        _row(world, "rejected"), _row(world, "approved"), _row(world, "pending")])
    db.session.commit()
    db.session.add(_row(world, "pending"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_a_submission_that_loses_the_race_is_a_clean_409(world, db, monkeypatch):
    assert world.sign().status_code == 201
    # Simulate the race: the second request's read saw no active pledge.
    monkeypatch.setattr(services, "blocking_pledge", lambda merchant_id, now: None)
    response = world.sign()
    assert response.status_code == 409 and error_code(response) == "PLEDGE_ALREADY_ACTIVE"
    assert db.session.query(Pledge).count() == 1
