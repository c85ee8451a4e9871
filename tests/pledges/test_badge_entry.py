"""The 诚信承诺 entry of the public badge: on while in force, off at once after revocation or expiry."""
from datetime import timedelta

from app.pledges.queries import pledge_badge_entry
from tests.conftest import at


def test_entry_is_on_while_in_force_and_off_after_the_expiry_moment(world, clock):
    clock.set(at("2026-03-01 09:00"))
    pledge = world.sign(signer_name="李小兰").get_json()
    assert pledge_badge_entry(world.merchant.id, at("2026-03-01 09:00")) is None  # pending
    world.review(pledge["id"], "approve")

    entry = pledge_badge_entry(world.merchant.id, at("2026-03-01 09:00"))
    assert entry is not None
    assert entry["items"] == world.template.items
    assert entry["signer"] == "李*"
    assert entry["market"] == "梧州市新兴农贸市场"
    assert entry["approved_at"].startswith("2026-03-01T09:00:00+08:00")
    assert entry["valid_until"].startswith("2027-03-02T00:00:00+08:00")
    assert entry["valid_through"] == "2027-03-01"
    expiry = at("2027-03-02 00:00")
    assert entry["changes_at"] == expiry

    assert pledge_badge_entry(world.merchant.id, expiry - timedelta(seconds=1)) is not None
    assert pledge_badge_entry(world.merchant.id, expiry) is None
    assert pledge_badge_entry(world.merchant.id, expiry + timedelta(seconds=1)) is None


def test_entry_is_off_right_after_revocation(world, clock):
    clock.set(at("2026-03-01 09:00"))
    pledge = world.sign().get_json()
    world.review(pledge["id"], "approve")
    assert pledge_badge_entry(world.merchant.id, at("2026-03-01 10:00")) is not None
    clock.set(at("2026-03-01 10:00"))
    assert world.revoke(pledge["id"]).status_code == 200
    assert pledge_badge_entry(world.merchant.id, at("2026-03-01 10:00")) is None


def test_entry_is_absent_for_rejected_pledges_and_unknown_entities(world):
    pledge = world.sign().get_json()
    world.review(pledge["id"], "reject", reason="签名不清")
    assert pledge_badge_entry(world.merchant.id, at("2026-03-01 10:00")) is None
    assert pledge_badge_entry(424242, at("2026-03-01 10:00")) is None


def test_signer_names_are_masked_to_the_first_character():
    from app.identity.services import surname_only as mask_name

    assert mask_name("张三丰") == "张*"
    assert mask_name("李") == "李*"
    assert mask_name("  ") == ""


def test_public_badge_follows_approval_revocation_and_expiry(world, clock):
    """Through the public badge endpoint (another feature's cache in front): each change shows at once."""
    def pledge_item():
        response = world.client.get(f"/api/v1/public/stalls/{world.stall.token}")
        assert response.status_code == 200, response.get_json()
        return next(item for item in response.get_json()["items"] if item["key"] == "pledge")

    clock.set(at("2026-03-01 09:00"))
    assert pledge_item()["ok"] is False
    pledge = world.sign().get_json()
    world.review(pledge["id"], "approve")
    shown = pledge_item()
    assert shown["ok"] is True and shown["detail"]["signer"] == "李*"
    assert "李小兰" not in str(shown)

    clock.set(at("2027-03-01 23:59"))
    assert pledge_item()["ok"] is True
    clock.set(at("2027-03-02 00:00"))
    assert pledge_item()["ok"] is False

    clock.set(at("2027-03-02 09:00"))
    renewed = world.sign().get_json()
    world.review(renewed["id"], "approve")
    assert pledge_item()["ok"] is True
    world.revoke(renewed["id"])
    assert pledge_item()["ok"] is False
