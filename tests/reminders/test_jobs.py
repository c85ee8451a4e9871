"""The sweeps against the source models: who is reminded when, once per dedupe key."""
from datetime import date, datetime, timedelta

import pytest

from app.reminders.engine import all_series


class _DeclaredSeries:
    """The series the features declare, by name, as the scheduler runs them."""

    def __getattr__(self, name: str):
        return all_series()[name].run


jobs = _DeclaredSeries()
from app.reminders.models import Notification
from app.reminders.scheduler import build_scheduler, execute
from tests.conftest import at


@pytest.fixture
def world(db, make_market, make_user):
    """A market with a manager, a merchant holding a stall there, and a party branch with a
    secretary."""
    from app.identity.services import grant_role
    from app.markets.models import Merchant, Stall
    from app.orgs.models import PartyOrg

    market = make_market()
    owner = make_user("owner")
    manager = make_user("manager")
    grant_role(manager, "market_manager", f"market:{market.id}", reason="测试")
    merchant = Merchant(owner_id=owner.id, name="老王水果店", kind="个体工商户",
                        uscc="92450403MA5L000000", operator_name="王五")
    db.session.add(merchant)
    db.session.flush()
    db.session.add(Stall(market_id=market.id, number="A-01", token="tok0000000001", merchant_id=merchant.id))
    branch = PartyOrg(name="万秀区综合市场党支部", kind="branch", sector="market", region_code="450403")
    db.session.add(branch)
    db.session.flush()
    secretary = make_user("secretary")
    grant_role(secretary, "branch_secretary", f"org:{branch.id}", reason="测试")
    db.session.commit()
    return {"market": market, "owner": owner, "manager": manager, "merchant": merchant,
            "branch": branch, "secretary": secretary}


def _credential(db, world, valid_until, status="verified", kind="food_business", n=[0]):
    from app.credentials.models import Credential

    n[0] += 1
    credential = Credential(merchant_id=world["merchant"].id, kind=kind, number=f"JY{n[0]:012d}",
                            issuer="梧州市万秀区市场监督管理局", valid_until=valid_until,
                            long_term=valid_until is None, photo_key=f"photo-{n[0]}-{id(world)}",
                            status=status, submitted_by_id=world["owner"].id)
    db.session.add(credential)
    db.session.commit()
    return credential


def _reminders(db, **filters):
    return db.session.query(Notification).filter_by(**filters).order_by(Notification.id).all()


def test_credential_expiry_at_30_7_1_days_and_on_the_day(db, world, clock):
    credential = _credential(db, world, date(2026, 3, 31))
    _credential(db, world, date(2026, 6, 30), kind="tobacco_retail")  # far off
    _credential(db, world, None, kind="business_licence")  # 长期
    _credential(db, world, date(2026, 3, 20), status="pending", kind="measuring_instrument")

    periods = []
    for day in ("2026-02-28", "2026-03-01", "2026-03-24", "2026-03-25", "2026-03-30", "2026-03-31", "2026-04-01"):
        jobs.credential_expiry(at(f"{day} 09:00"))
        periods.append(sorted(n.period for n in _reminders(db, user_id=world["owner"].id)))
    assert periods[0] == []  # 31 days left
    assert periods[1] == ["2026-03-31:d30"]
    assert periods[2] == ["2026-03-31:d30", "2026-03-31:d7"]
    assert periods[3] == periods[2]  # 6 days left: still the 7-day reminder, not a new one
    assert periods[4] == ["2026-03-31:d1", "2026-03-31:d30", "2026-03-31:d7"]
    assert set(periods[5]) == {"2026-03-31:d30", "2026-03-31:d7", "2026-03-31:d1", "2026-03-31:d0"}
    assert periods[6] == periods[5]  # expired: nothing more

    manager = _reminders(db, user_id=world["manager"].id)
    assert [(n.subject, n.period) for n in manager] == [(f"credential:{credential.id}", "2026-03-31:d0")]
    assert "老王水果店" in manager[0].body
    owner_d7 = _reminders(db, user_id=world["owner"].id, period="2026-03-31:d7")[0]
    assert owner_d7.template_key == "credential_expiry"
    assert owner_d7.wx_data == {"thing1": "食品经营许可证", "time2": "2026年03月31日", "thing3": "还有 7 天到期，请及时办理延续"}
    assert owner_d7.page == f"pages/credentials/detail?id={credential.id}"


def test_a_replaced_credential_is_not_reminded(db, world):
    _credential(db, world, date(2026, 3, 31))
    _credential(db, world, date(2029, 3, 31), status="pending")
    assert jobs.credential_expiry(at("2026-03-25 09:00"))["added"] == 0


def test_a_second_sweep_adds_nothing(db, world):
    kinds = ("business_licence", "food_business", "tobacco_retail", "drug_business", "measuring_instrument")
    for i, kind in enumerate(kinds):
        _credential(db, world, date(2026, 3, 10) + timedelta(days=i), kind=kind)
    first = jobs.credential_expiry(at("2026-03-09 09:00"))
    second = jobs.credential_expiry(at("2026-03-09 09:00"))
    assert (first["added"], second["added"]) == (5, 0)


def test_the_nine_oclock_run_in_shanghai_is_one_oclock_utc(app, db, world):
    """The scheduler's own trigger fires at 01:00 UTC; running the job then finds the reminders."""
    _credential(db, world, date(2026, 3, 8))
    trigger = build_scheduler(app).get_job("credential_expiry").trigger
    from datetime import timezone

    fire = trigger.get_next_fire_time(None, datetime(2026, 3, 1, 0, 0, tzinfo=timezone.utc))
    fire_utc = fire.astimezone(timezone.utc).replace(tzinfo=None)
    assert fire_utc == datetime(2026, 3, 1, 1, 0)
    result = execute(app, "credential_expiry", now=fire_utc)
    assert result["added"] == 1
    assert [n.period for n in _reminders(db)] == ["2026-03-08:d7"]


def test_pledge_renewal_thirty_days_before(db, world):
    from app.pledges.models import Pledge, PledgeTemplate

    template = PledgeTemplate(title="诚信经营承诺书", items=["明码标价"], term_months=12)
    db.session.add(template)
    db.session.flush()
    pledge = Pledge(merchant_id=world["merchant"].id, market_id=world["market"].id, template_id=template.id,
                    template_version=1, title=template.title, items=template.items, term_months=12,
                    signer_name="王五", signed_by_id=world["owner"].id, status="approved",
                    valid_from=at("2025-04-01 00:00"), valid_until=at("2026-04-01 00:00"))
    db.session.add(pledge)
    db.session.commit()
    assert jobs.pledge_renewal(at("2026-03-01 09:00"))["added"] == 0  # 31 days
    assert jobs.pledge_renewal(at("2026-03-02 09:00"))["added"] == 1
    assert jobs.pledge_renewal(at("2026-03-20 09:00"))["added"] == 0
    [reminder] = _reminders(db)
    assert (reminder.user_id, reminder.kind, reminder.period) == (world["owner"].id, "pledge_renewal", "2026-03-31:d30")
    assert "2026年03月31日" in reminder.body


def _activity(db, world, starts_local, type_="主题党日", status="scheduled"):
    from app.activities.models import Activity

    starts = at(starts_local)
    activity = Activity(org_id=world["branch"].id, type=type_, title="三月主题党日：学习身边榜样",
                        starts_at=starts, ends_at=starts + timedelta(hours=2),
                        checkin_opens_at=starts - timedelta(minutes=30), checkin_closes_at=starts + timedelta(hours=1),
                        place_name="市场党群服务站", status=status)
    db.session.add(activity)
    db.session.commit()
    return activity


def test_activity_start_24h_and_1h_before_to_registrants_not_on_leave(db, world, make_user):
    from app.activities.models import LeaveRequest, Registration

    activity = _activity(db, world, "2026-03-10 15:00")
    going, away = make_user("going"), make_user("away")
    make_user("not-registered")
    db.session.add_all([Registration(activity_id=activity.id, user_id=going.id),
                        Registration(activity_id=activity.id, user_id=away.id),
                        LeaveRequest(activity_id=activity.id, user_id=away.id, reason="出车", status="approved")])
    db.session.commit()

    assert jobs.activity_start(at("2026-03-09 14:55"))["added"] == 0  # 24 h 5 min before
    assert jobs.activity_start(at("2026-03-09 15:00"))["added"] == 1
    assert jobs.activity_start(at("2026-03-10 13:55"))["added"] == 0
    assert jobs.activity_start(at("2026-03-10 14:00"))["added"] == 1
    assert jobs.activity_start(at("2026-03-10 15:00"))["added"] == 0  # started
    rows = _reminders(db)
    assert [(n.user_id, n.period[-3:]) for n in rows] == [(going.id, "h24"), (going.id, ":h1")]
    assert "2026年03月10日 15:00" in rows[0].body  # shown in Shanghai time


def test_cancelled_activities_are_not_reminded(db, world, make_user):
    from app.activities.models import Registration

    activity = _activity(db, world, "2026-03-10 15:00", status="cancelled")
    db.session.add(Registration(activity_id=activity.id, user_id=make_user("r").id))
    db.session.commit()
    assert jobs.activity_start(at("2026-03-10 14:30"))["added"] == 0


def test_theme_day_reminder_from_the_fifth_when_none_is_scheduled(db, world):
    assert jobs.theme_day_due(at("2026-03-04 09:00"))["added"] == 0
    assert jobs.theme_day_due(at("2026-03-05 09:00"))["added"] == 1
    assert jobs.theme_day_due(at("2026-03-06 09:00"))["added"] == 0  # once a month
    [reminder] = _reminders(db)
    assert (reminder.user_id, reminder.period, reminder.template_key) == (world["secretary"].id, "2026-03", "branch_duty")
    assert reminder.title == "本月主题党日尚未安排" and "2026年3月" in reminder.body

    _activity(db, world, "2026-04-12 09:00")
    assert jobs.theme_day_due(at("2026-04-05 09:00"))["added"] == 0  # April's is scheduled


def test_general_meeting_reminder_in_the_quarters_last_month(db, world):
    assert jobs.general_meeting_due(at("2026-02-20 09:00"))["added"] == 0  # not the last month
    assert jobs.general_meeting_due(at("2026-03-01 09:00"))["added"] == 1
    assert _reminders(db)[0].period == "2026Q1"
    assert "2026年第1季度" in _reminders(db)[0].body
    _activity(db, world, "2026-05-20 09:00", type_="支部党员大会")
    assert jobs.general_meeting_due(at("2026-06-01 09:00"))["added"] == 0  # held this quarter


def test_review_digest_counts_what_waits_in_the_managers_market(db, world, make_user):
    from app.markets.models import Merchant, Stall, StallClaim

    assert jobs.review_digest(at("2026-03-01 08:30"))["added"] == 0  # nothing waiting
    _credential(db, world, date(2027, 1, 1), status="pending")
    other = Merchant(owner_id=make_user("other-owner").id, name="小李干货", kind="个体工商户",
                     uscc="92450403MA5L000001", operator_name="李四")
    db.session.add(other)
    db.session.flush()
    stall = Stall(market_id=world["market"].id, number="A-02", token="tok0000000002")
    db.session.add(stall)
    db.session.flush()
    db.session.add(StallClaim(stall_id=stall.id, merchant_id=other.id, active_stall_id=stall.id,
                              status="pending", requested_by_id=other.owner_id))
    db.session.commit()

    assert jobs.review_digest(at("2026-03-01 08:30"))["added"] == 1
    assert jobs.review_digest(at("2026-03-01 12:00"))["added"] == 0  # one a day
    [digest] = _reminders(db)
    assert digest.user_id == world["manager"].id
    assert "摊位认领 1 项、证照 1 项、诚信承诺 0 项" in digest.body
    assert jobs.review_digest(at("2026-03-02 08:30"))["added"] == 1


def test_nightly_purges(db, clock, auth):
    from app.identity.models import VoidedToken

    user_id = auth.login("alice").user_id
    db.session.add_all([VoidedToken(jti="gone", user_id=user_id, expires_at=at("2026-03-01 03:00")),
                        VoidedToken(jti="kept", user_id=user_id, expires_at=at("2026-03-02 03:00"))])
    db.session.commit()
    assert jobs.purge(at("2026-03-01 03:30")) == {"idempotency_keys": 0, "voided_tokens": 1}
    assert [t.jti for t in db.session.query(VoidedToken)] == ["kept"]
    assert set(jobs.purge_coordinates(at("2026-03-01 03:31"))) == {"raw_coordinates"}


def test_every_job_runs_from_the_cli(app, db, world):
    runner = app.test_cli_runner()
    for name in all_series():
        result = runner.invoke(args=["reminders", "run", name, "--now", "2026-03-31T09:00"])
        assert result.exit_code == 0, (name, result.output)
        assert "skipped" not in result.output, (name, result.output)
    result = runner.invoke(args=["reminders", "run", "nope"])
    assert result.exit_code != 0 and "未知任务" in result.output
