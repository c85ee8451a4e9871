"""R7, the rest of the matrix: over the demo data, a logged-in outsider (a rider and merchant with
no relation to any of it) calls every protected route on real objects. Nothing answers with
their data: every answer is a refusal, except the self-service routes any user may call."""
import re

import pytest
from sqlalchemy import select

from tests.core.test_route_auth import PUBLIC, PUBLIC_PREFIXES

# Routes where any logged-in user acts on their own behalf (their profile, their inbox, claiming a
# membership or registering, reporting a problem, creating their own business entity).
SELF_SERVICE = {
    ("GET", "/api/v1/me"), ("PUT", "/api/v1/me"), ("POST", "/api/v1/auth/phone"), ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/me/notifications"),
    ("POST", "/api/v1/me/notifications/read-all"), ("GET", "/api/v1/me/subscriptions"),
    ("POST", "/api/v1/me/subscriptions"), ("GET", "/api/v1/me/points"),
    ("POST", "/api/v1/merchants"), ("POST", "/api/v1/orgs/<int:org_id>/memberships"),
    ("POST", "/api/v1/orgs/<int:org_id>/riders"),
    ("POST", "/api/v1/public/stalls/<token>/feedback"),
    # An organisation's card (name, kind, region) is what a member looks up to claim membership.
    ("GET", "/api/v1/orgs/<int:org_id>"), ("GET", "/api/v1/orgs"),
    # Without ?region= a regulator gets their own region's figures (another region: tests/stats).
    ("GET", "/api/v1/stats/overview"), ("GET", "/api/v1/stats/overview.xlsx"), ("GET", "/api/v1/stats/trend"),
    ("POST", "/api/v1/stats/overview-exports"),  # the export of their own region (another: tests/stats)
    ("GET", "/api/v1/reports/stats"), ("GET", "/api/v1/reports/heatmap"),
}
# Lists filtered by the caller's own records or scope: they answer, with nothing in them.
FILTERED_LISTS = {("GET", "/api/v1/merchants"), ("GET", "/api/v1/activities")}
# Lists of what the caller covers: an outsider sees only their own (or is refused by role). Each
# names what in an answer would be the demo's data.
SCOPED_LISTS = {
    ("GET", "/api/v1/markets"): lambda item, demo: item["id"] == demo["market_id"],
    ("GET", "/api/v1/audit-log"): lambda item, demo: (item.get("region_code") or "").startswith("4504"),
    ("GET", "/api/v1/reports"): lambda item, demo: True,  # the outsider filed none and handles none
}


@pytest.fixture
def demo(app, db):
    result = app.test_cli_runner().invoke(args=["seed", "demo"])
    assert result.exit_code == 0, result.output
    from app.activities.models import Activity
    from app.credentials.models import Credential
    from app.markets.models import Market, Merchant, Stall
    from app.orgs.models import PartyOrg
    from app.activities.models import CareStation, LeaveRequest
    from app.markets.models import Feedback
    from app.orgs.models import Membership, StationJoinRequest
    from app.pledges.models import Pledge, PledgeTemplate
    from app.reports.models import Report

    first = lambda model: db.session.scalar(select(model).order_by(model.id))  # noqa: E731
    stall = first(Stall)
    ids = {"market_id": first(Market).id, "merchant_id": first(Merchant).id, "token": stall.token,
           "credential_id": first(Credential).id, "pledge_id": first(Pledge).id,
           "template_id": first(PledgeTemplate).id, "org_id": first(PartyOrg).id,
           "activity_id": first(Activity).id}
    for name, model in (("feedback_id", Feedback), ("leave_id", LeaveRequest), ("membership_id", Membership),
                        ("request_id", StationJoinRequest), ("station_id", CareStation),
                        ("report_id", Report)):
        row = first(model)
        if row is not None:
            ids[name] = row.id
    return ids


def _concrete(rule: str, ids: dict) -> str:
    def value(match):
        name = match.group(2)
        if name in ids:
            return str(ids[name])
        if name.endswith("_id"):
            return "1"
        return ids["token"] if name in ("token",) else "abcdefghijkl"
    return re.sub(r"<(?:(\w+):)?(\w+)>", value, rule)


@pytest.mark.parametrize("elsewhere", ["rider+merchant", "manager of another market",
                                       "regulator of another region", "secretary of another org"])
def test_an_outsider_gets_nothing_from_any_protected_route(app, client, auth, db, demo, elsewhere):
    from app.markets.models import Market
    from app.orgs.models import PartyOrg

    other_market = Market(name="醴陵市陶瓷市场", region_code="430281", kind="综合市场")
    other_org = PartyOrg(name="醴陵市陶瓷市场党支部", kind="branch", sector="market", region_code="430281")
    db.session.add_all([other_market, other_org])
    db.session.commit()
    role, scope = {
        "rider+merchant": ("rider", None),
        "manager of another market": ("market_manager", f"market:{other_market.id}"),
        "regulator of another region": ("regulator", "region:430281"),
        "secretary of another org": ("branch_secretary", f"org:{other_org.id}"),
    }[elsewhere]
    outsider = auth.login("outsider", role=role, scope=scope)
    auth.grant("outsider", "merchant")
    leaks, checked = [], 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            key = (method, rule.rule)
            if key in PUBLIC or key in SELF_SERVICE or (method == "GET" and rule.rule.startswith(PUBLIC_PREFIXES)):
                continue
            response = client.open(_concrete(rule.rule, demo), method=method, json={}, headers=outsider.headers)
            checked += 1
            if key in SCOPED_LISTS:
                items = response.get_json().get("items", []) if response.status_code == 200 else []
                if response.status_code >= 500 or any(SCOPED_LISTS[key](item, demo) for item in items):
                    leaks.append((method, rule.rule, response.status_code, "listed someone else's data"))
            elif key in FILTERED_LISTS:
                body = response.get_json()
                items = body.get("items") if isinstance(body, dict) else body
                if response.status_code != 200 or items:
                    leaks.append((method, rule.rule, response.status_code, "listed someone else's data"))
            elif response.status_code < 400 or response.status_code >= 500:
                leaks.append((method, rule.rule, response.status_code))
    assert leaks == [], leaks
    assert checked >= 40


MISSING = {"token": "Zz9Zz9Zz9Zz9"}


@pytest.mark.parametrize("elsewhere", ["rider+merchant", "manager of another market",
                                       "regulator of another region", "secretary of another org"])
def test_an_outsider_cannot_tell_a_real_object_from_a_missing_one(app, client, auth, db, demo, elsewhere):
    """Issue 9 item 12: outside one's scope, existence is not disclosed. For every protected
    route that names an object, the outsider's answer for a real one (from the demo data) is
    the answer for an id that does not exist: same status, same code."""
    role, scope = {
        "rider+merchant": ("rider", None),
        "manager of another market": ("market_manager", "market:2147483000"),
        "regulator of another region": ("regulator", "region:430281"),
        "secretary of another org": ("branch_secretary", "org:2147483000"),
    }[elsewhere]
    from app.core.regions import upsert_regions

    upsert_regions([("430000", "湖南省"), ("430200", "株洲市"), ("430281", "醴陵市")])
    db.session.commit()
    outsider = auth.login("outsider", role=role, scope=scope)
    auth.grant("outsider", "merchant")
    missing = {name: (2147483000 if name.endswith("_id") else MISSING.get(name, "Zz9Zz9Zz9Zz9")) for name in demo}
    oracles, compared = [], 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or "<" not in rule.rule:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            key = (method, rule.rule)
            if key in PUBLIC or key in SELF_SERVICE or (method == "GET" and rule.rule.startswith(PUBLIC_PREFIXES)):
                continue
            names = re.findall(r"<(?:\w+:)?(\w+)>", rule.rule)
            if any(name not in demo for name in names):
                continue
            real = client.open(_concrete(rule.rule, demo), method=method, json={}, headers=outsider.headers)
            absent = client.open(_concrete(rule.rule, missing), method=method, json={}, headers=outsider.headers)
            compared += 1
            seen = (real.status_code, real.get_json()["error"]["code"] if real.status_code >= 400 else None)
            unseen = (absent.status_code, absent.get_json()["error"]["code"] if absent.status_code >= 400 else None)
            if seen != unseen:
                oracles.append((method, rule.rule, seen, unseen))
    assert oracles == [], "\n".join(map(str, oracles))
    assert compared >= 25


def test_the_public_template_list_does_not_tell_which_market_ids_exist(client, demo):
    real = client.get(f"/api/v1/pledge-templates?market_id={demo['market_id']}")
    missing = client.get("/api/v1/pledge-templates?market_id=2147483000")
    assert real.status_code == missing.status_code == 200
    assert missing.get_json() == {"items": [], "total": 0, "page": 1, "per_page": 20}
