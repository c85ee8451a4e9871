"""The demo template is seeded once, however often the seed runs."""
from app.pledges import demo
from app.pledges.models import PledgeTemplate


def test_demo_template_is_idempotent(db, regions):
    for _ in range(2):
        ctx = {}
        demo.seed(ctx)
        db.session.commit()
    templates = db.session.query(PledgeTemplate).all()
    assert len(templates) == 1 and ctx["pledge_template"].id == templates[0].id
    template = templates[0]
    assert template.title == "诚信经营承诺书" and template.region_code == "450000" and template.active
    assert [item.split("：")[0] for item in template.items] == [
        "亮照亮证经营", "明码标价", "不售假冒伪劣商品", "计量准确足量", "文明诚信服务", "门前三包"]
