"""R13 for rider reports: handlers deciding one report at once give one winner, the others 409;
one audit row, one notice to the rider, one points award (SQLite here, PostgreSQL under make test)."""
from sqlalchemy import func, select

from tests.conftest import at
from tests.core.test_review_races import RACERS, race
from tests.reports.conftest import inbox


def test_parallel_decisions_on_one_report_have_one_winner(app, desk, db, clock):
    from app.activities.models import PointsEntry
    from app.core.audit import AuditEntry
    from app.reports.models import ReportAward

    clock.set(at("2026-03-02 10:00"))
    rider, regulator = desk.rider(), desk.regulator()
    report_id = desk.file(rider).get_json()["id"]
    accepted = race(app, f"/api/v1/reports/{report_id}/accept", regulator.headers, [{}] * RACERS)
    assert sorted(accepted) == [200] + [409] * (RACERS - 1), accepted
    bodies = [{"decision": "upheld" if i % 2 else "unfounded", "note": "现场核实"} for i in range(RACERS)]
    statuses = race(app, f"/api/v1/reports/{report_id}/decide", regulator.headers, bodies)
    assert sorted(statuses) == [200] + [409] * (RACERS - 1), statuses
    db.session.expire_all()
    actions = list(db.session.scalars(select(AuditEntry.action).where(
        AuditEntry.target_type == "report", AuditEntry.target_id == str(report_id))))
    assert sorted(actions) in (["report.accept", "report.submit", "report.upheld"],
                               ["report.accept", "report.submit", "report.unfounded"])
    assert len(inbox(db, rider.user_id, "report_progress")) == 2  # accepted, decided
    upheld = "report.upheld" in actions
    assert db.session.scalar(select(func.count()).select_from(ReportAward)) == int(upheld)
    assert db.session.scalar(select(func.count()).select_from(PointsEntry)) == int(upheld)
