"""The demo data of organisations and activities loads, is idempotent, and switches the demo
merchant's stall to 共产党员经营户."""


def test_demo_seed_is_idempotent_and_marks_the_merchant(app, db, regions):
    from app.activities.models import Activity, CareStation
    from app.demo import seed_demo
    from app.identity.models import User
    from app.orgs.models import Membership, PartyOrg, StationRider
    from app.orgs.queries import party_member_operator

    seed_demo()
    counts = [db.session.query(m).count() for m in (PartyOrg, Membership, StationRider, Activity, CareStation)]
    seed_demo()
    assert [db.session.query(m).count() for m in (PartyOrg, Membership, StationRider, Activity, CareStation)] == counts
    assert counts[0] == 3 and counts[3] == 2 and counts[4] >= 3
    merchant = db.session.query(User).filter_by(openid="demo-merchant").one()
    assert party_member_operator(merchant.id) == {"org": "东中市场党支部"}
    branch = db.session.query(PartyOrg).filter_by(name="东中市场党支部").one()
    assert branch.market_id is not None
