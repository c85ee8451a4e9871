"""The demo data set confers one 示范摊位 and one 示范市场, both shown (their criteria hold)."""
from sqlalchemy import select

from app.markets.models import Market, Stall


def test_demo_confers_a_model_stall_and_market(app, db, client, regions):
    from app.demo import seed_demo

    seed_demo()
    seed_demo()  # idempotent
    first = db.session.scalar(select(Stall).order_by(Stall.number))
    badge = client.get(f"/api/v1/public/stalls/{first.token}").get_json()
    title = next(item for item in badge["items"] if item["key"] == "exemplar")
    assert title["ok"] is True and title["label"] == "示范摊位", title
    market = db.session.scalar(select(Market).where(Market.id == first.market_id))
    page = client.get(f"/m/{market.token}").get_data(as_text=True)
    assert "示范市场" in page and "称号暂停显示" not in page and "示范摊位" in page
