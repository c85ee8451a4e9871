"""The demo data set carries two rider reports, once however often it is loaded."""
from sqlalchemy import func, select


def test_demo_seed_adds_two_reports_once(app, db, client):
    from app.reports.models import Report

    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(args=["seed", "demo"])
        assert result.exit_code == 0, result.output
    assert db.session.scalar(select(func.count()).select_from(Report)) == 2
    statuses = sorted(db.session.scalars(select(Report.status)))
    assert statuses == ["accepted", "open"]
    login = client.post("/api/v1/auth/login", json={"code": "sim-demo-county-regulator"}).get_json()
    queue = client.get("/api/v1/reports", headers={"Authorization": f"Bearer {login['token']}"}).get_json()
    assert queue["total"] == 2  # the stall's report (market in 万秀区) and the shop's
    assert len(client.get("/api/v1/report-categories").get_json()) == 6
