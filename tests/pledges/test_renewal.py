"""Issue 11 item 5: renewal without a dark day. In the 30 days before a pledge ends the entity
may sign the renewal; once approved it begins when the current one ends; the badge shows the
诚信承诺 mark throughout; the renewal reminder is not sent to someone who has renewed."""
from datetime import timedelta

from app.pledges.reminders import pledge_renewal
from app.reminders.models import Notification
from tests.conftest import at, error_code


def _badge_pledge(world, token):
    """The badge's 诚信承诺 item's detail (None when no pledge is in force)."""
    items = world.client.get(f"/api/v1/public/stalls/{token}").get_json()["items"]
    return next(item for item in items if item["key"] == "pledge").get("detail")


def test_a_renewal_signed_before_the_end_takes_over_at_the_end(world, clock, db):
    clock.set(at("2026-03-01 09:00"))
    first = world.sign().get_json()
    assert world.review(first["id"]).status_code == 200  # in force through 2027-03-01
    token = world.stall.token
    too_early = world.sign()
    assert error_code(too_early) == "PLEDGE_ALREADY_ACTIVE"
    assert too_early.get_json()["error"]["details"]["renewable_from"] == "2027-01-30"

    clock.set(at("2027-02-10 09:00"))  # within 30 days of the end
    pledge_renewal(clock.now())
    db.session.commit()
    assert db.session.query(Notification).filter_by(kind="pledge_renewal").count() == 1
    renewal = world.sign(signer_name="李小兰")
    assert renewal.status_code == 201, renewal.get_json()
    assert error_code(world.sign()) == "PLEDGE_ALREADY_ACTIVE"  # one renewal at a time
    approved = world.review(renewal.get_json()["id"])
    assert approved.status_code == 200
    body = approved.get_json()
    assert body["status"] == "upcoming" and body["status_label"] == "已通过，待生效"
    assert body["valid_from"].startswith("2027-03-02T00:00:00+08:00") and body["valid_through"] == "2028-03-02"
    assert error_code(world.sign()) == "PLEDGE_ALREADY_ACTIVE"  # nothing more to sign

    # The badge shows the first pledge now, the renewal from the first instant after it.
    assert _badge_pledge(world, token)["valid_through"] == "2027-03-01"
    clock.set(at("2027-03-01 23:59:59"))
    assert _badge_pledge(world, token)["valid_through"] == "2027-03-01"
    clock.set(at("2027-03-02 00:00:00"))
    assert _badge_pledge(world, token)["valid_through"] == "2028-03-02"
    statuses = {p["id"]: p["status"] for p in world.client.get(
        f"/api/v1/merchants/{world.merchant.id}/pledges", headers=world.owner.headers).get_json()["items"]}
    assert statuses == {first["id"]: "expired", body["id"]: "approved"}


def test_no_renewal_reminder_once_the_renewal_is_signed(world, clock, db):
    clock.set(at("2026-03-01 09:00"))
    first = world.sign().get_json()
    world.review(first["id"])
    clock.set(at("2027-02-10 09:00"))
    assert world.sign().status_code == 201
    assert pledge_renewal(clock.now())["due"] == 0


def test_a_lapsed_pledge_is_not_in_force_and_a_late_signature_starts_now(world, clock, db):
    clock.set(at("2026-03-01 09:00"))
    first = world.sign().get_json()
    world.review(first["id"])
    clock.set(at("2027-03-05 09:00"))  # lapsed four days ago, nobody renewed
    assert _badge_pledge(world, world.stall.token) is None
    late = world.sign().get_json()
    approved = world.review(late["id"]).get_json()
    assert approved["status"] == "approved" and approved["valid_from"].startswith("2027-03-05T09:00")
    clock.advance(timedelta(minutes=1))
    assert _badge_pledge(world, world.stall.token)["valid_through"] == "2028-03-05"
