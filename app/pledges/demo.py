"""Demo pledge template: the 广西 诚信经营承诺书 that 梧州's market merchants sign."""
from sqlalchemy import select

from app.extensions import db
from app.core.regions import Region
from app.pledges.models import Pledge, PledgeTemplate

DEMO_TEMPLATE = {
    "title": "诚信经营承诺书",
    "region_code": "450000",
    "term_months": 12,
    "items": [
        "亮照亮证经营：在经营场所醒目位置公示营业执照和许可证件，主动接受社会监督",
        "明码标价：商品和服务价格标示清楚、真实，不虚假标价，不价格欺诈",
        "不售假冒伪劣商品：严把进货关，索证索票，不销售假冒伪劣、过期变质和“三无”商品",
        "计量准确足量：使用检定合格的计量器具，足斤足两，不缺斤短两",
        "文明诚信服务：礼貌待客，公平交易，积极妥善处理消费者投诉",
        "门前三包：落实门前卫生、秩序、绿化“三包”责任，保持经营场所整洁有序",
    ],
}


def seed(ctx: dict) -> None:
    """Idempotent: the template is looked up by region and title before it is added."""
    if db.session.get(Region, DEMO_TEMPLATE["region_code"]) is None:
        return
    template = db.session.scalar(select(PledgeTemplate).where(
        PledgeTemplate.region_code == DEMO_TEMPLATE["region_code"],
        PledgeTemplate.title == DEMO_TEMPLATE["title"]).order_by(PledgeTemplate.version.desc()))
    if template is None:
        regulator = ctx.get("demo-regulator")
        template = PledgeTemplate(**DEMO_TEMPLATE, version=1, active=True,
                                  created_by_id=getattr(regulator, "id", None))
        db.session.add(template)
        db.session.flush()
    ctx["pledge_template"] = template
    _approved_pledge_for_demo_merchant(ctx, template)


def _approved_pledge_for_demo_merchant(ctx: dict, template: PledgeTemplate) -> None:
    """The demo merchant signs and the market manager approves, through the same services the
    API uses, so stall A-01 shows 放心摊位 with 诚信承诺 on."""
    from app.pledges.services import review_pledge, sign_pledge

    merchant, owner, manager = ctx.get("merchant"), ctx.get("demo-merchant"), ctx.get("demo-manager")
    if not (merchant and owner and manager):
        return
    if db.session.scalar(select(Pledge.id).where(Pledge.merchant_id == merchant.id)) is not None:
        return
    pledge = sign_pledge(owner, merchant.id, {"template_id": template.id, "signer_name": merchant.operator_name})
    review_pledge(manager, pledge.id, "approve", None)
