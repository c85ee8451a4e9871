from sqlalchemy import func, select

from app.markets.models import Stall


def test_demo_seed_is_idempotent_and_first_stall_is_trusted(app, db, client, regions):
    from app.demo import seed_demo

    seed_demo()
    count = db.session.scalar(select(func.count()).select_from(Stall))
    seed_demo()
    assert db.session.scalar(select(func.count()).select_from(Stall)) == count == 24
    first = db.session.scalar(select(Stall).order_by(Stall.number))
    assert first.number == "A-01"
    badge = client.get(f"/api/v1/public/stalls/{first.token}").get_json()
    assert badge["stall"]["market"] == "梧州市万秀区东中农贸市场"
    assert badge["items"][0]["ok"] and badge["items"][1]["ok"]
    assert badge["verdict"] in ("放心摊位", "部分公示")  # 放心 once the pledges demo adds a pledge
    assert client.get(f"/s/{first.token}").status_code == 200
