"""Signing: content security before any write, Idempotency-Key, the approving market, templates."""
from sqlalchemy import func, select

from app.core.audit import AuditEntry
from app.core.idempotency import IdempotencyRecord
from app.markets.models import Stall
from app.pledges.models import Pledge
from tests.conftest import error_code
from tests.pledges.factories import make_merchant, make_stall, make_template


def _counts(db):
    return tuple(db.session.scalar(select(func.count()).select_from(model))
                 for model in (Pledge, AuditEntry, IdempotencyRecord))


def test_risky_extra_commitments_are_refused_before_anything_is_stored(world, db, wechat_sim):
    db.session.expire_all()
    versions_before = db.session.get(Stall, world.stall.id).badge_version
    before = _counts(db)
    response = world.sign(extra_commitments="本店保证违禁词绝不出现", headers={"Idempotency-Key": "risky-1"})
    assert response.status_code == 422
    assert error_code(response) == "CONTENT_RISKY"
    assert response.get_json()["error"]["details"] == {"field": "extra_commitments"}
    assert wechat_sim.sim_state.received("/wxa/msg_sec_check")
    db.session.expire_all()
    assert _counts(db) == before
    assert db.session.get(Stall, world.stall.id).badge_version == versions_before
    assert db.session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == "risky-1")) is None

    # The same key with safe text is a fresh request, not a replay of the refusal.
    safe = world.sign(extra_commitments="节假日不涨价", headers={"Idempotency-Key": "risky-1"})
    assert safe.status_code == 201, safe.get_json()


def test_safe_extra_commitments_are_checked_and_kept(world, wechat_sim):
    response = world.sign(extra_commitments="  节假日不涨价，坏果包换  ")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["extra_commitments"] == "节假日不涨价，坏果包换"
    checks = wechat_sim.sim_state.received("/wxa/msg_sec_check")
    # (a stale access token from an earlier test may cost one refused try before this one)
    # Every public text of the pledge goes through the gate (the signer's name too).
    extra = [c["body"] for c in checks if c["body"]["content"] == "节假日不涨价，坏果包换"]
    assert extra and extra[-1]["openid"] == "merchant-li" and extra[-1]["scene"] == 1


def test_same_idempotency_key_twice_gives_one_pledge_and_the_same_body(world, db):
    headers = {"Idempotency-Key": "sign-0001"}
    first = world.sign(headers=headers, extra_commitments="不缺斤短两")
    second = world.sign(headers=headers, extra_commitments="不缺斤短两")
    assert first.status_code == second.status_code == 201
    assert second.get_data() == first.get_data()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert db.session.scalar(select(func.count()).select_from(Pledge)) == 1
    # A new key is a new request: the entity already has a pledge under review.
    third = world.sign(headers={"Idempotency-Key": "sign-0002"}, extra_commitments="不缺斤短两")
    assert third.status_code == 409 and error_code(third) == "PLEDGE_ALREADY_ACTIVE"


def test_status_owner_or_validity_cannot_be_mass_assigned(world, db):
    response = world.sign(status="approved", valid_until="2099-01-01T00:00:00", signed_by_id=1)
    assert response.status_code == 422 and error_code(response) == "VALIDATION_ERROR"
    assert db.session.scalar(select(func.count()).select_from(Pledge)) == 0


def test_signer_name_is_required_and_trimmed(world):
    blank = world.sign(signer_name="   ")
    assert blank.status_code == 422 and error_code(blank) == "VALIDATION_ERROR"
    ok = world.sign(signer_name=" 李小兰 ")
    assert ok.status_code == 201 and ok.get_json()["signer_name"] == "李小兰"


def test_no_stall_means_claim_one_first(world, auth, client):
    owner = auth.login("merchant-new", role="merchant")
    merchant = make_merchant(owner.user_id, name="新店")
    response = world.sign(who=owner, merchant_id=merchant.id)
    assert response.status_code == 409 and error_code(response) == "PLEDGE_NO_STALL"
    assert "认领摊位" in response.get_json()["error"]["message"]


def test_stalls_in_two_markets_require_a_choice(world):
    make_stall(world.other_market, "B-08", world.merchant)
    response = world.sign()
    assert response.status_code == 422 and error_code(response) == "PLEDGE_MARKET_REQUIRED"
    offered = {m["id"] for m in response.get_json()["error"]["details"]["markets"]}
    assert offered == {world.market.id, world.other_market.id}

    chosen = world.sign(market_id=world.other_market.id)
    assert chosen.status_code == 201 and chosen.get_json()["market_id"] == world.other_market.id


def test_a_market_where_the_entity_holds_no_stall_is_refused(world):
    response = world.sign(market_id=world.other_market.id)
    assert response.status_code == 422 and error_code(response) == "PLEDGE_MARKET_NOT_HELD"


def test_only_the_owner_signs_for_or_reads_an_entity(world, auth, client):
    stranger = auth.login("merchant-other", role="merchant")
    response = world.sign(who=stranger)
    assert response.status_code == 404 and error_code(response) == "MERCHANT_NOT_FOUND"
    history = client.get(f"/api/v1/merchants/{world.merchant.id}/pledges", headers=stranger.headers)
    assert history.status_code == 404
    pledge = world.sign().get_json()
    assert client.get(f"/api/v1/pledges/{pledge['id']}", headers=stranger.headers).status_code == 404
    missing = world.sign(merchant_id=999999)
    assert missing.status_code == 404 and error_code(missing) == "MERCHANT_NOT_FOUND"


def test_a_template_of_another_region_or_an_unknown_one_cannot_be_signed(world):
    hunan = make_template("430000", title="湖南诚信经营承诺书")
    response = world.sign(template_id=hunan.id)
    assert response.status_code == 422 and error_code(response) == "PLEDGE_TEMPLATE_NOT_APPLICABLE"
    unknown = world.sign(template_id=424242)
    assert unknown.status_code == 404 and error_code(unknown) == "PLEDGE_TEMPLATE_NOT_FOUND"
    national = make_template(None, title="全国通用诚信经营承诺书")
    assert world.sign(template_id=national.id).status_code == 201


def test_every_pledge_route_needs_a_token(world, client):
    routes = [
        ("post", f"/api/v1/merchants/{world.merchant.id}/pledges"),
        ("get", f"/api/v1/merchants/{world.merchant.id}/pledges"),
        ("get", "/api/v1/pledges/1"), ("post", "/api/v1/pledges/1/review"),
        ("post", "/api/v1/pledges/1/revoke"), ("get", f"/api/v1/markets/{world.market.id}/pledges"),
        ("get", f"/api/v1/markets/{world.market.id}/pledges.xlsx"),
        ("post", "/api/v1/pledge-templates"), ("put", f"/api/v1/pledge-templates/{world.template.id}"),
    ]
    for method, path in routes:
        response = getattr(client, method)(path, json={})
        assert response.status_code == 401, (method, path)
        assert error_code(response) == "UNAUTHORIZED"
