"""Demo: the demo people have subscribe-message consents and a welcome entry in their inbox,
and the sweeps have run once over the demo data. Idempotent: consents are topped up to a floor
(never added on every run), reminders are deduplicated by their key."""
from __future__ import annotations

from app.core.db import insert_ignore
from app.core.time import utcnow
from app.identity.models import User
from app.extensions import db
from app.reminders.models import SubscriptionConsent
from app.reminders.outbox import Reminder, enqueue

DEMO_CONSENTS = {
    "demo-merchant": ("credential_expiry", "pledge_renewal", "activity_start"),
    "demo-rider": ("activity_start",),
    "demo-secretary": ("branch_duty", "activity_start"),
    "demo-rider-secretary": ("branch_duty",),
    "demo-manager": ("review_digest", "credential_expiry"),
}
CONSENTS_EACH = 2
SWEEPS = ("credential_expiry", "pledge_renewal", "activity_start", "theme_day_due", "general_meeting_due",
          "review_digest")


def seed(ctx: dict) -> None:
    now = utcnow()
    users = {user.openid: user for user in db.session.query(User).filter(User.openid.in_(DEMO_CONSENTS))}
    for openid, keys in DEMO_CONSENTS.items():
        user = users.get(openid)
        if user is None:
            continue
        insert_ignore(SubscriptionConsent, [
            {"user_id": user.id, "template_key": key, "remaining": CONSENTS_EACH, "updated_at": now}
            for key in keys], ["user_id", "template_key"])
        enqueue([Reminder(user_id=user.id, kind="welcome", subject=f"user:{user.id}", period="demo",
                          title="欢迎使用小个专党建小程序",
                          body="证照到期、承诺续签、活动开始和待审核事项都会在这里提醒您；"
                               "同意订阅消息后，也会通过微信服务通知送达。",
                          page="pages/index/index", channel="inbox")], now)
    db.session.commit()
    from app.reminders.jobs import run_job

    for name in SWEEPS:
        run_job(name, now)
