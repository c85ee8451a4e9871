"""Deadlines: accept within one working day, close within seven days. The scheduler's series
remind the handlers once per stage and send the regulators a daily digest; lists flag overdue
reports. Time is passed in (frozen clock), never slept."""

from tests.conftest import at
from tests.reports.conftest import inbox


def _run(name: str, when: str) -> dict:
    from app.reminders.jobs import run_job

    return run_job(name, at(when))


def test_a_working_day_skips_the_weekend():
    from app.reports.services import add_working_days

    assert add_working_days(at("2026-03-06 15:00"), 1) == at("2026-03-09 15:00")  # Friday -> Monday
    assert add_working_days(at("2026-03-07 10:00"), 1) == at("2026-03-09 10:00")  # Saturday -> Monday
    assert add_working_days(at("2026-03-02 23:30"), 1) == at("2026-03-03 23:30")


def test_handlers_are_reminded_at_each_deadline_once(desk, shop, client, db, clock):
    clock.set(at("2026-03-06 15:00"))  # a Friday afternoon
    rider, regulator = desk.rider(), desk.regulator()
    report = desk.file(rider).get_json()
    assert report["accept_due_at"].startswith("2026-03-09T15:00")

    assert _run("report_deadlines", "2026-03-09 14:50")["added"] == 0  # not late yet
    assert _run("report_deadlines", "2026-03-09 15:05")["added"] == 1
    assert _run("report_deadlines", "2026-03-09 15:20")["added"] == 0  # once per stage
    clock.set(at("2026-03-09 15:30"))
    [item] = client.get("/api/v1/reports", headers=regulator.headers).get_json()["items"]
    assert item["overdue"] is True
    desk.act(regulator, report["id"], "accept")
    assert client.get("/api/v1/reports", headers=regulator.headers).get_json()["items"][0]["overdue"] is False

    assert _run("report_deadlines", "2026-03-12 15:10")["added"] == 1  # a day before the close deadline
    assert _run("report_deadlines", "2026-03-13 15:10")["added"] == 1  # past it
    reminders = inbox(db, regulator.user_id, "report_deadline")
    assert [n.period for n in reminders] == ["accept_overdue", "close_soon", "close_overdue"]
    assert all(n.template_key == "review_digest" and n.wx_data["number2"] == str(report["id"]) for n in reminders)
    clock.set(at("2026-03-13 15:30"))
    assert client.get("/api/v1/reports", headers=regulator.headers).get_json()["items"][0]["overdue"] is True

    desk.act(regulator, report["id"], "decide", decision="upheld")
    assert _run("report_deadlines", "2026-03-14 09:00")["due"] == 0  # closed: nothing more


def test_a_stall_report_reminds_the_market_managers_and_digests_reach_the_regulators(desk, shop, db, clock):
    clock.set(at("2026-03-02 10:00"))
    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["A-01"])[0]["token"]
    rider, county, city = desk.rider(), desk.regulator(), desk.regulator("city-regulator", "450400")
    desk.file(rider, stall_token=token)
    desk.file(rider)

    assert _run("report_deadlines", "2026-03-03 10:30")["added"] == 2
    assert [n.kind for n in inbox(db, manager.user_id)] == ["report_new", "report_deadline"]
    assert [n.kind for n in inbox(db, county.user_id)] == ["report_new", "report_deadline"]

    assert _run("report_digest", "2026-03-03 08:35")["added"] == 1  # the county's own regulator only
    assert _run("report_digest", "2026-03-03 12:00")["added"] == 0  # one a day
    [digest] = inbox(db, county.user_id, "report_digest")
    assert "待受理 2 件、办理中 0 件，其中超期 0 件" in digest.body and inbox(db, city.user_id) == []
    # the market's managers also find it in their daily review digest
    assert _run("review_digest", "2026-03-03 08:30")["added"] == 1
    assert "骑手随手拍 1 项" in inbox(db, manager.user_id, "review_digest")[0].body


def test_the_scheduler_runs_both_series(app):
    from app.reminders.scheduler import job_table

    jobs = {job.name: job for job in job_table(app)}
    assert jobs["report_deadlines"].misfire_grace_time == 600
    assert "report_digest" in jobs
