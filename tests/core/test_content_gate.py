"""Issue 9 item 5 (R12): every free text another person will read goes through one content
check before it is stored. The gate is on the columns (app.core.content), so these tests check
(1) that every text column of the schema has declared whether it is public, and (2) that risky
text is refused, with nothing stored, on routes that write such columns, including the ones
the review found unchecked."""
from sqlalchemy import JSON, String, Text, select

from tests.conftest import error_code
from tests.markets.factories import USCC_A
from tests.orgs import factories

RISKY = "这里有违禁词"

# Text columns nobody else reads as prose: codes and enums, keys and tokens, system-written
# text, copies of checked text, and imported reference data.
NOT_PUBLIC = {
    "activities": {"type", "audience", "status"},
    "activity_checkins": {"method", "status", "location_verdict"},
    "activity_checkin_refusals": {"code"},
    "points_ledger": {"reason"},
    "voided_tokens": {"jti"},
    "care_stations": {"amenities"},  # codes from a fixed list
    "activity_leave_requests": {"status"},
    "party_memberships": {"standing", "status"},
    "stall_feedback": {"category", "status"},
    "station_join_requests": {"status"},
    "idempotency_keys": {"key", "fingerprint"},
    "credentials": {"kind", "photo_key", "status"},
    "users": {"openid", "unionid", "phone"},
    "wechat_sessions": {"session_key"},
    "role_grants": {"role", "scope_type", "scope_id"},
    "markets": {"kind", "region_code", "token"},
    "merchants": {"kind", "uscc"},
    "stalls": {"token"},
    "stall_claims": {"status"},
    "voided_stall_tokens": {"token"},
    "stall_codes": {"token"},
    "feedback": {"category", "status"},
    "party_orgs": {"kind", "sector", "join_code"},
    "memberships": {"standing", "status"},
    "pledge_templates": {"family_id"},
    # a pledge's title and items are copied from its (checked) template when it is signed
    "pledges": {"title", "items", "status"},
    "notifications": {"kind", "subject", "period", "template_key", "title", "body", "page", "wx_data",
                      "channel", "status", "claim_token", "wx_msgid", "last_error"},
    "subscription_consents": {"template_key"},
    "audit_log": {"actor_role", "action", "target_type", "target_id", "before", "after", "reason", "request_id",
                  "region_code"},
    "regions": {"code", "name"},
    "idempotency_records": None,  # every column: the server's own replay store
    "scheduler_leases": None,
    "scheduler_heartbeats": None,  # the scheduler's own name and host:pid
    "market_coverage": None,  # counts and region codes the server computes
    "region_coverage": None,
    "merchant_scopes": None,
    "org_coverage": None,
    "rate_limits": None,
    "stall_badges": None,  # the server's rendering of checked data
    "exemplar_titles": {"kind", "title", "criteria", "active_key"},  # enums, the criteria's copy, a key
    "report_categories": {"code"},
    # codes, random photo keys, the server's month and history actions
    "rider_reports": {"photo_keys", "status", "created_month", "rectification_photo_key"},
    "rider_report_events": {"action", "region_code"},
    "jobs": None,  # the server's own bookkeeping: kinds, codes, keys, file names it made
    "console_login_tickets": None,  # random tickets, hashes, statuses and codes
    "console_sessions": None,
}


def test_every_text_column_declares_whether_others_read_it(app):
    from app.extensions import db

    undeclared, both = [], []
    for table in db.metadata.sorted_tables:
        exempt = NOT_PUBLIC.get(table.name, set())
        for column in table.columns:
            if not isinstance(column.type, (String, Text, JSON)) or column.foreign_keys:
                continue
            listed = exempt is None or column.name in exempt
            public = "public_text" in column.info
            if listed and public:
                both.append(f"{table.name}.{column.name}")  # a code checked as prose costs a WeChat call
            elif not listed and not public:
                undeclared.append(f"{table.name}.{column.name}")
    assert not undeclared, ("declare these columns public_text() or list them in NOT_PUBLIC with a reason: "
                            + ", ".join(undeclared))
    assert not both, "listed as not public yet declared public_text(): " + ", ".join(both)


def test_a_checkin_sends_nothing_to_wechat(app, client, auth, db, regions, wechat_sim, clock):
    """The busiest write carries no public text: it must never wait on WeChat."""
    from app.activities.checkin import make_payload, slot_of
    from tests.conftest import at

    org = factories.create_org()
    activity = factories.create_activity(org)
    factories.add_member("scanner", org)
    user = auth.login("scanner")
    clock.set(at("2026-03-01 08:55"))
    before = len(wechat_sim.sim_state.received("/wxa/msg_sec_check"))
    response = client.post(f"/api/v1/activities/{activity.id}/checkins",
                           json={"payload": make_payload(activity.id, slot_of(clock.now()))}, headers=user.headers)
    assert response.status_code == 201, response.get_json()
    assert len(wechat_sim.sim_state.received("/wxa/msg_sec_check")) == before


def _refused(response):
    assert response.status_code == 422 and error_code(response) == "CONTENT_RISKY", response.get_json()


def test_trading_rules_are_checked(shop, db):
    from app.markets.models import Stall

    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["A-01"])[0]["token"]
    _refused(shop.client.put(f"/api/v1/stalls/{token}/rules", json={"returns": "七天无理由", "pricing": RISKY},
                             headers=manager.headers))
    db.session.expire_all()
    assert db.session.scalar(select(Stall.trading_rules).where(Stall.token == token)) is None


def test_names_of_markets_stalls_merchants_and_orgs_are_checked(shop, auth, db, regions):
    from app.markets.models import Market, Merchant, Stall
    from app.orgs.models import PartyOrg

    regulator = auth.login("regulator", role="regulator", scope="region:450403")
    _refused(shop.client.post("/api/v1/markets", json={"name": RISKY + "市场", "region_code": "450403"},
                              headers=regulator.headers))
    market = shop.market()
    manager = shop.manager(market)
    _refused(shop.client.post(f"/api/v1/markets/{market.id}/stalls", json={"numbers": ["A-01", RISKY]},
                              headers=manager.headers))
    login = auth.login("merchant")
    _refused(shop.client.post("/api/v1/merchants", headers=login.headers, json={
        "name": RISKY, "kind": "个体工商户", "uscc": USCC_A, "operator_name": "李明"}))
    _refused(shop.client.post("/api/v1/orgs", headers=regulator.headers, json={
        "name": "骑手党支部", "kind": "branch", "sector": "rider", "region_code": "450403", "station": RISKY}))
    db.session.expire_all()
    assert db.session.scalar(select(Market).where(Market.name.contains("违禁"))) is None
    assert db.session.scalar(select(Stall).where(Stall.number == RISKY)) is None
    assert db.session.scalar(select(Stall).where(Stall.number == "A-01", Stall.market_id == market.id)) is None
    assert db.session.query(Merchant).count() == 0
    assert db.session.scalar(select(PartyOrg).where(PartyOrg.station == RISKY)) is None


def test_reasons_shown_to_others_are_checked(shop, db):
    """A refusal's reason is read by the person refused (and a feedback decision by the public)."""
    from app.credentials.models import Credential

    market, manager, stalls, login, merchant_id = shop.held_stall()
    credential_id = shop.credential(login, merchant_id, long_term=True)
    _refused(shop.client.post(f"/api/v1/credentials/{credential_id}/review",
                              json={"decision": "reject", "reason": RISKY}, headers=manager.headers))
    db.session.expire_all()
    assert db.session.get(Credential, credential_id).status == "pending"


def test_activity_text_and_care_station_names_are_checked(app, client, auth, db, regions):
    from app.activities.models import CareStation

    org = factories.create_org()
    secretary = auth.login("secretary", role="branch_secretary", scope=f"org:{org.id}")
    _refused(client.post("/api/v1/care-stations", headers=secretary.headers, json={
        "name": "暖心驿站", "region_code": "450403", "org_id": org.id, "lat": 23.47, "lng": 111.3,
        "hours": RISKY}))
    assert db.session.query(CareStation).count() == 0


def test_the_writer_is_the_one_checked_and_a_repeated_text_is_checked_once(shop, wechat_sim):
    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["C-01"])[0]["token"]
    before = len(wechat_sim.sim_state.received("/wxa/msg_sec_check"))
    response = shop.client.put(f"/api/v1/stalls/{token}/rules",
                               json={"returns": "七天包退", "pricing": "明码标价", "weighing": "公平秤复秤"},
                               headers=manager.headers)
    assert response.status_code == 200, response.get_json()
    checks = [c["body"] for c in wechat_sim.sim_state.received("/wxa/msg_sec_check")[before:]]
    rules = [c for c in checks if "七天包退" in c["content"]]
    assert len(rules) == 1 and rules[0]["openid"] == manager.openid
    assert "明码标价" in rules[0]["content"] and "公平秤复秤" in rules[0]["content"]
