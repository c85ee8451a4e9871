"""Issue 11 item 7: GET /stats/trend, month by month, the state at each month's end: tenancies
that began and ended, pledges that started, lapsed or were revoked, member-operated stalls,
activities and attendance. The figures stay right when stalls change hands and pledges lapse."""
from datetime import date, timedelta

from app.credentials.models import Credential
from app.extensions import db as _db
from app.identity.services import find_or_create_user
from app.markets.models import StallClaim
from app.orgs.models import Membership, PartyOrg
from app.pledges.models import Pledge
from tests.conftest import at, error_code
from tests.pledges.factories import make_merchant, make_stall, make_template


def test_monthly_states_follow_tenancies_pledges_and_members(client, auth, make_market, clock):
    clock.set(at("2026-06-15 12:00"))
    market = make_market(region_code="450403")
    template = make_template("450000")
    owners = [find_or_create_user(f"owner-{i}") for i in range(3)]
    _db.session.commit()
    merchants = [make_merchant(owner.id, name=f"经营户{i}") for i, owner in enumerate(owners)]
    stalls = [make_stall(market, f"A-{i}") for i in range(3)]

    def tenancy(stall, merchant, confirmed, released=None):
        _db.session.add(StallClaim(stall_id=stall.id, merchant_id=merchant.id, requested_by_id=merchant.owner_id,
                                   status="released" if released else "confirmed",
                                   active_stall_id=None if released else stall.id,
                                   reviewed_at=at(confirmed), released_at=at(released) if released else None))

    tenancy(stalls[0], merchants[0], "2026-03-10 10:00")                        # from March on
    tenancy(stalls[1], merchants[1], "2026-04-10 10:00", "2026-05-20 10:00")    # April only
    tenancy(stalls[1], merchants[2], "2026-05-25 10:00")                        # May on: changed hands
    _db.session.add(Credential(merchant_id=merchants[0].id, kind="business_licence", number="x", issuer="局",
                               long_term=True, photo_key="k0", status="verified", reviewed_at=at("2026-04-02 10:00"),
                               submitted_by_id=owners[0].id))
    org = PartyOrg(name="支部", kind="branch", sector="market", region_code="450403")
    _db.session.add(org)
    _db.session.flush()
    _db.session.add(Membership(org_id=org.id, user_id=owners[2].id, standing="formal", status="verified",
                               reviewed_at=at("2026-06-01 10:00")))

    def pledge(merchant, start, end, status="approved", revoked=None):
        _db.session.add(Pledge(merchant_id=merchant.id, market_id=market.id, template_id=template.id,
                               template_version=1, title="t", items=["明码标价"], term_months=12, signer_name="x",
                               signed_by_id=merchant.owner_id, status=status, valid_from=at(start),
                               valid_until=at(end), revoked_at=at(revoked) if revoked else None))

    pledge(merchants[0], "2026-03-15 00:00", "2026-05-10 00:00")                 # lapses in May
    pledge(merchants[2], "2026-04-01 00:00", "2027-04-01 00:00", "revoked", "2026-06-10 00:00")
    _db.session.commit()

    reg = auth.login("reg", role="regulator", scope="region:450400")
    body = client.get("/api/v1/stats/trend?months=4", headers=reg.headers).get_json()
    months = {m["month"]: m for m in body["months"]}
    assert list(months) == ["2026-03", "2026-04", "2026-05", "2026-06"]
    assert [months[m]["stalls_claimed"] for m in months] == [1, 2, 2, 2]
    assert [months[m]["licences_shown"] for m in months] == [0, 1, 1, 1]
    assert [months[m]["pledges_in_force"] for m in months] == [1, 2, 1, 0]
    assert [months[m]["party_households"] for m in months] == [0, 0, 0, 1]
    assert months["2026-06"]["at"].startswith("2026-06-15T12:00")
    assert months["2026-03"]["activities"] == 0 and months["2026-03"]["attendance_rate"] is None
    assert client.get("/api/v1/stats/trend?months=0", headers=reg.headers).status_code == 422
    assert client.get("/api/v1/stats/trend?months=37", headers=reg.headers).status_code == 422
    assert error_code(client.get("/api/v1/stats/trend?region=430281", headers=reg.headers)) in ("OUT_OF_SCOPE",
                                                                                             "REGION_NOT_FOUND")
    assert date.fromisoformat(body["months"][0]["month"] + "-01") < date(2026, 6, 1) - timedelta(days=60)
