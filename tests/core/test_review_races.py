"""Issue 9 item 2: reviewers deciding the same thing at once. Every review route goes through
app.core.review's compare-and-set: exactly one decision wins (200), every other is 409, and
exactly one audit row is written. Runs on SQLite and, under `make test`, on PostgreSQL."""
import threading

import pytest
from sqlalchemy import select

from app.core.audit import AuditEntry
from tests.orgs import factories

RACERS = 6


def race(app, url: str, headers: dict, bodies: list[dict]) -> list[int]:
    barrier = threading.Barrier(len(bodies))
    statuses: list = [None] * len(bodies)

    def reviewer(index: int) -> None:
        own_client = app.test_client()
        barrier.wait()
        try:
            statuses[index] = own_client.post(url, json=bodies[index], headers=headers).status_code
        except Exception as exc:  # surfaced by the assertion below
            statuses[index] = repr(exc)

    threads = [threading.Thread(target=reviewer, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


def approve_and_refuse(approve: str, refuse: str) -> list[dict]:
    """Half approve, half refuse (with a reason): both directions race each other."""
    return [{"decision": approve if i % 2 else refuse, "reason": "核对材料"} for i in range(RACERS)]


def assert_one_winner(db, statuses, target_type: str, target_id: int) -> None:
    assert sorted(statuses) == [200] + [409] * (RACERS - 1), statuses
    db.session.expire_all()
    entries = db.session.scalars(select(AuditEntry).where(
        AuditEntry.target_type == target_type, AuditEntry.target_id == str(target_id))).all()
    decisions = [e for e in entries if not e.action.endswith((".sign", ".upload", ".submit"))]
    assert len(decisions) == 1, [e.action for e in entries]


def test_credential_review(app, db, shop):
    market, manager, stalls, login, merchant_id = shop.held_stall()
    credential_id = shop.credential(login, merchant_id, long_term=True)
    statuses = race(app, f"/api/v1/credentials/{credential_id}/review", manager.headers,
                    approve_and_refuse("approve", "reject"))
    assert_one_winner(db, statuses, "credential", credential_id)


def test_stall_claim_review(app, db, shop):
    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["B-01"])[0]["token"]
    login, merchant_id = shop.merchant()
    claim_id = shop.claim(login, merchant_id, token).get_json()["id"]
    statuses = race(app, f"/api/v1/stalls/{token}/claim/review", manager.headers,
                    approve_and_refuse("approve", "reject"))
    assert_one_winner(db, statuses, "stall_claim", claim_id)


def test_feedback_review(app, db, shop):
    from app.markets.models import Feedback, Stall

    market, manager, stalls, login, merchant_id = shop.held_stall()
    stall = db.session.scalar(select(Stall).where(Stall.token == stalls[0]["token"]))
    feedback = Feedback(stall_id=stall.id, user_id=login.user_id, category="价格", text="价格标签不清")
    db.session.add(feedback)
    db.session.commit()
    statuses = race(app, f"/api/v1/feedback/{feedback.id}/review", manager.headers,
                    approve_and_refuse("uphold", "dismiss"))
    assert_one_winner(db, statuses, "feedback", feedback.id)


def test_membership_review(app, db, auth, regions):
    from app.orgs.models import Membership

    org = factories.create_org()
    applicant = factories.add_member("applicant", org, status="pending")
    secretary = auth.login("secretary", role="branch_secretary", scope=f"org:{org.id}")
    membership = db.session.scalar(select(Membership).where(Membership.user_id == applicant.id))
    statuses = race(app, f"/api/v1/memberships/{membership.id}/review", secretary.headers,
                    approve_and_refuse("approve", "reject"))
    assert_one_winner(db, statuses, "membership", membership.id)


def test_leave_review(app, db, auth, regions):
    from app.activities.models import LeaveRequest

    org = factories.create_org()
    activity = factories.create_activity(org)
    absent = factories.add_member("absent", org)
    secretary = auth.login("secretary", role="branch_secretary", scope=f"org:{org.id}")
    leave = LeaveRequest(activity_id=activity.id, user_id=absent.id, reason="出车送货", status="pending")
    db.session.add(leave)
    db.session.commit()
    statuses = race(app, f"/api/v1/leave-requests/{leave.id}/review", secretary.headers,
                    approve_and_refuse("approve", "reject"))
    assert_one_winner(db, statuses, "leave_request", leave.id)


def test_pledge_review(app, db, shop):
    from app.pledges.models import PledgeTemplate

    market, manager, stalls, login, merchant_id = shop.held_stall()
    template = PledgeTemplate(title="诚信经营承诺书", region_code="450000", term_months=12, version=1,
                              active=True, items=["明码标价"])
    db.session.add(template)
    db.session.commit()
    signed = shop.client.post(f"/api/v1/merchants/{merchant_id}/pledges", headers=login.headers,
                              json={"template_id": template.id, "signer_name": "李明"}).get_json()
    statuses = race(app, f"/api/v1/pledges/{signed['id']}/review", manager.headers,
                    approve_and_refuse("approve", "reject"))
    assert_one_winner(db, statuses, "pledge", signed["id"])


@pytest.mark.parametrize("expected, actual", [("pending", "verified")])
def test_compare_and_set_refuses_a_stale_expectation(app, db, regions, expected, actual):
    """The mechanism itself: a decision against a status the row no longer has is a 409 that
    reports the status it has now, and writes nothing."""
    from app.core.errors import APIError
    from app.core.review import compare_and_set
    from app.orgs.models import Membership

    org = factories.create_org()
    user = factories.add_member("someone", org, status=actual)
    membership = db.session.scalar(select(Membership).where(Membership.user_id == user.id))
    with pytest.raises(APIError) as refused:
        compare_and_set(membership, expected, {"status": "rejected"}, "MEMBERSHIP_ALREADY_DECIDED")
    assert refused.value.status == 409 and refused.value.details == {"status": actual}
    db.session.rollback()
    assert db.session.get(Membership, membership.id).status == actual


def test_station_join_review(app, db, auth, regions):
    org = factories.create_org(name="骑手党支部", sector="rider")
    rider = auth.login("rider-racer")
    secretary = auth.login("secretary", role="branch_secretary", scope=f"org:{org.id}")
    request_id = app.test_client().post(f"/api/v1/orgs/{org.id}/riders", headers=rider.headers).get_json()["request_id"]
    statuses = race(app, f"/api/v1/rider-requests/{request_id}/review", secretary.headers,
                    approve_and_refuse("approve", "reject"))
    assert_one_winner(db, statuses, "station_join_request", request_id)
