"""Who an activity is for, in one place: the verified members of its organisation, and for
open rider activities (audience "station_riders") also the riders of the organisation's station.
The organisation's roster (its leaderboard) is both, whatever the activity."""
from __future__ import annotations

from sqlalchemy import and_, or_, select

from app.activities.models import Activity
from app.extensions import db
from app.orgs.models import Membership, StationRider

OPEN_TO_RIDERS = "station_riders"


def _members(org_id):
    return select(Membership.user_id).where(Membership.org_id == org_id, Membership.status == "verified")


def _riders(org_id):
    return select(StationRider.user_id).where(StationRider.org_id == org_id)


def audience_user_ids(activity: Activity) -> set[int]:
    stmt = _members(activity.org_id)
    if activity.audience == OPEN_TO_RIDERS:
        stmt = stmt.union(_riders(activity.org_id))
    return set(db.session.scalars(stmt))


def org_roster_ids(org_id: int) -> set[int]:
    """Verified members and station riders of an organisation (points leaderboard)."""
    return set(db.session.scalars(_members(org_id).union(_riders(org_id))))


def eligibility_clause(user_id):
    """The rule as an SQL expression over Activity (one-query loads, e.g. a check-in scan)."""
    member = _members(Activity.org_id).where(Membership.user_id == user_id).correlate(Activity).exists()
    rider = _riders(Activity.org_id).where(StationRider.user_id == user_id).correlate(Activity).exists()
    return or_(member, and_(Activity.audience == OPEN_TO_RIDERS, rider))


def is_eligible(user_id: int, activity: Activity) -> bool:
    return bool(db.session.scalar(select(eligibility_clause(user_id)).where(Activity.id == activity.id)))
