"""The credential-expiry sweep writes its reminders in one INSERT … SELECT (a province has ~100,000
due documents a day): the rows it builds in SQL are exactly what the reminder texts say, each
dedupe key once, managers once per market grant."""
from datetime import date, timedelta

import pytest

from app.reminders.engine import all_series
from app.reminders.models import Notification
from tests.conftest import at

NOW = at("2026-03-24 09:00")  # 2026-03-31 is 7 days away


def sweep(now=NOW) -> dict:
    return all_series()["credential_expiry"].run(now)


@pytest.fixture
def entity(db, make_user, make_market):
    """An entity with two stalls in market A and one in market B; a manager for each market,
    and a former manager of A whose grant was revoked."""
    from app.identity.services import grant_role, revoke_role
    from app.markets.models import Merchant, Stall

    a, b = make_market("万秀区东中农贸市场"), make_market("长洲区综合市场", region_code="450405")
    owner, manager_a, manager_b, former = (make_user(name) for name in ("owner", "mgr-a", "mgr-b", "former"))
    grant_role(manager_a, "market_manager", f"market:{a.id}", reason="测试")
    grant_role(manager_b, "market_manager", f"market:{b.id}", reason="测试")
    revoke_role(grant_role(former, "market_manager", f"market:{a.id}", reason="测试"),
                actor=None, actor_role=None, reason="调离")
    merchant = Merchant(owner_id=owner.id, name="老王水果店", kind="个体工商户", uscc="92450403MA5L000000",
                        operator_name="王五")
    db.session.add(merchant)
    db.session.flush()
    db.session.add_all([Stall(market_id=a.id, number="A-01", token="tokA00000001", merchant_id=merchant.id),
                        Stall(market_id=a.id, number="A-02", token="tokA00000002", merchant_id=merchant.id),
                        Stall(market_id=b.id, number="B-01", token="tokB00000001", merchant_id=merchant.id)])
    db.session.commit()
    return {"merchant": merchant, "owner": owner, "managers": {manager_a.id, manager_b.id}, "former": former}


def _credential(db, entity, valid_until, kind="food_business", n=[0]):
    from app.credentials.models import Credential

    n[0] += 1
    credential = Credential(merchant_id=entity["merchant"].id, kind=kind, number=f"JY{n[0]:012d}",
                            issuer="梧州市万秀区市场监督管理局", valid_until=valid_until, long_term=False,
                            photo_key=f"sweep-photo-{n[0]}", status="verified",
                            submitted_by_id=entity["owner"].id)
    db.session.add(credential)
    db.session.commit()
    return credential


def _rows(db, **filters):
    db.session.expire_all()
    return db.session.query(Notification).filter_by(**filters).order_by(Notification.id).all()


def test_the_owner_reminder_reads_as_before(db, entity):
    credential = _credential(db, entity, date(2026, 3, 31))
    assert sweep() == {"owners": 1, "managers": 0, "added": 1}
    [row] = _rows(db)
    assert (row.user_id, row.kind, row.subject, row.period) == (
        entity["owner"].id, "credential_expiry", f"credential:{credential.id}", "2026-03-31:d7")
    assert row.title == "证照即将到期"
    assert row.body == ("老王水果店的食品经营许可证有效期至 2026年03月31日，还有 7 天到期。请及时办理延续，"
                        "并在小程序中上传新证照，以免摊位亮照亮证标识失效。")
    assert row.wx_data == {"thing1": "食品经营许可证", "time2": "2026年03月31日", "thing3": "还有 7 天到期，请及时办理延续"}
    assert (row.template_key, row.channel, row.status, row.attempts, row.sent_at) == (
        "credential_expiry", "wechat", "pending", 0, None)
    assert row.next_attempt_at == row.created_at == NOW
    assert row.page == f"pages/credentials/detail?id={credential.id}"


def test_on_the_last_day_each_active_manager_once(db, entity):
    """Two stalls in market A still make one reminder for its manager; the revoked grant none."""
    credential = _credential(db, entity, date(2026, 3, 24), kind="tobacco_retail")
    assert sweep() == {"owners": 1, "managers": 2, "added": 3}
    managers = [row for row in _rows(db) if row.user_id != entity["owner"].id]
    assert {row.user_id for row in managers} == entity["managers"]
    for row in managers:
        assert (row.subject, row.period, row.title) == (f"credential:{credential.id}", "2026-03-24:d0", "经营户证照今日到期")
        assert row.body == ("经营户「老王水果店」的烟草专卖零售许可证有效期至今天（2026年03月24日），明天起该摊位将不再"
                            "显示该证照，请督促其办理延续。")
        assert row.wx_data == {"thing1": "老王水果店烟草专卖零售许可证", "time2": "2026年03月24日",
                               "thing3": "今日到期，请督促经营户办理延续"}
    [owner] = _rows(db, user_id=entity["owner"].id)
    assert (owner.title, owner.period) == ("证照今日到期", "2026-03-24:d0")
    assert "今天是最后有效日" in owner.body


def test_reminders_already_in_the_outbox_are_skipped_and_not_counted(db, entity):
    """A key queued earlier (by a crashed run or another scheduler) stays as it was; only the
    missing ones are added and counted."""
    from app.reminders.outbox import Reminder, enqueue

    first = _credential(db, entity, date(2026, 3, 31))
    _credential(db, entity, date(2026, 4, 20), kind="tobacco_retail")
    enqueue([Reminder(user_id=entity["owner"].id, kind="credential_expiry", subject=f"credential:{first.id}",
                      period="2026-03-31:d7", title="先前的提醒", body="先前的提醒", template_key="credential_expiry")],
            NOW - timedelta(hours=1))
    db.session.commit()
    assert sweep()["added"] == 1
    assert sweep()["added"] == 0
    assert [row.title for row in _rows(db, subject=f"credential:{first.id}")] == ["先前的提醒"]
    assert len(_rows(db)) == 2


def test_every_kind_has_its_chinese_label(db, entity):
    from app.credentials.models import CREDENTIAL_KINDS

    for i, kind in enumerate(CREDENTIAL_KINDS):
        _credential(db, entity, date(2026, 3, 25) + timedelta(days=i), kind=kind)
    sweep()
    assert sorted(row.wx_data["thing1"] for row in _rows(db)) == sorted(CREDENTIAL_KINDS.values())
