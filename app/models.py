"""Imports every model module so that metadata (create_all, Alembic autogenerate) sees all tables."""
from app.core.audit import AuditEntry  # noqa: F401
from app.core.idempotency import IdempotencyRecord  # noqa: F401
from app.identity.models import RoleGrant, User, WechatSession  # noqa: F401
from app.core.regions import Region  # noqa: F401
from app.markets.models import *  # noqa: F401,F403
from app.credentials.models import *  # noqa: F401,F403
from app.pledges.models import *  # noqa: F401,F403
from app.orgs.models import *  # noqa: F401,F403
from app.activities.models import *  # noqa: F401,F403
from app.badge.models import *  # noqa: F401,F403
from app.reminders.models import *  # noqa: F401,F403
from app.jobs.models import *  # noqa: F401,F403
from app.stats.models import *  # noqa: F401,F403
from app.reports.models import *  # noqa: F401,F403
from app.exemplars.models import *  # noqa: F401,F403
from app.console.models import *  # noqa: F401,F403
