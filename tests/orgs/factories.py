"""Factories for organisations, members and activities (shared by tests/orgs and tests/activities)."""
from __future__ import annotations

from datetime import timedelta

from tests.conftest import at


def create_org(name="东中市场党支部", kind="branch", sector="market", region_code="450403", parent=None, **kwargs):
    from app.extensions import db
    from app.orgs.models import PartyOrg

    org = PartyOrg(name=name, kind=kind, sector=sector, region_code=region_code,
                   parent_id=parent.id if parent else None, **kwargs)
    db.session.add(org)
    db.session.commit()
    return org


def add_member(openid, org, status="verified", standing="formal"):
    from app.extensions import db
    from app.identity.services import find_or_create_user
    from app.orgs.models import Membership

    user = find_or_create_user(openid)
    db.session.add(Membership(org_id=org.id, user_id=user.id, standing=standing, status=status))
    db.session.commit()
    return user


def add_station_rider(openid, org):
    from app.extensions import db
    from app.identity.services import find_or_create_user
    from app.orgs.models import StationRider

    user = find_or_create_user(openid)
    db.session.add(StationRider(org_id=org.id, user_id=user.id))
    db.session.commit()
    return user


def create_activity(org, starts="2026-03-01 09:00", hours=2, **kwargs):
    """An activity starting at `starts` (Asia/Shanghai); check-in from 30 min before to the end."""
    from app.activities.models import Activity
    from app.extensions import db

    starts_at = at(starts)
    ends_at = starts_at + timedelta(hours=hours)
    values = dict(org_id=org.id, type="主题党日", title="三月主题党日", starts_at=starts_at, ends_at=ends_at,
                  checkin_opens_at=starts_at - timedelta(minutes=30), checkin_closes_at=ends_at,
                  points=5, audience="members", status="scheduled")
    values.update(kwargs)
    activity = Activity(**values)
    db.session.add(activity)
    db.session.commit()
    return activity
