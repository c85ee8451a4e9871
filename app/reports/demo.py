"""Demo rider reports: the demo rider's report on a stall of the demo market (waiting for its
managers) and one on a shop outside any market, accepted by 万秀区's regulators, plus a 万秀区
regulator to handle it. Idempotent: a report is added only if the rider has none with its text."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.core.time import to_local, utcnow
from app.extensions import db
from app.identity.services import find_or_create_user, grant_role
from app.reports.models import Report, ReportEvent, cell_of
from app.reports.services import ACCEPT_WITHIN_WORKING_DAYS, CLOSE_WITHIN, add_working_days, install_default_categories

REPORTS = (
    {"category_code": "kitchen_hygiene", "stall": "B-01", "lat": 23.47712, "lng": 111.30468, "hours_ago": 3,
     "description": "取餐时看到后厨地面积水，生熟食材混放在同一个案板上。"},
    {"category_code": "price_fraud", "shop_name": "万秀区鸿记烧腊", "shop_address": "梧州市万秀区大中路 18 号",
     "lat": 23.47391, "lng": 111.31277, "hours_ago": 30, "accepted": True,
     "description": "店内价目表标价 28 元一份，结账时按 35 元收取，未另行告知。"},
)


def _photo() -> str:
    import io

    from PIL import Image

    from app.core import storage

    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (180, 160, 120)).save(buffer, format="JPEG")
    return storage.store_photo(buffer.getvalue())


def seed(ctx: dict) -> None:
    from app.markets.models import Stall

    install_default_categories()
    regulator = find_or_create_user("demo-county-regulator")
    regulator.nickname = regulator.nickname or "万秀区市场监管局"
    grant_role(regulator, "regulator", "region:450403", reason="演示数据")
    rider = ctx.get("demo-rider") or find_or_create_user("demo-rider")
    market = ctx.get("market")
    now = utcnow()
    for spec in REPORTS:
        if db.session.scalar(select(Report.id).where(Report.reporter_id == rider.id,
                                                     Report.description == spec["description"])):
            continue
        filed = now - timedelta(hours=spec["hours_ago"])
        place = {"shop_name": spec.get("shop_name"), "shop_address": spec.get("shop_address"),
                 "region_code": "450403", "stall_id": None, "market_id": None}
        if "stall" in spec:
            stall = market and db.session.scalar(select(Stall).where(Stall.market_id == market.id,
                                                                     Stall.number == spec["stall"]))
            if stall is None:
                continue
            place.update(stall_id=stall.id, market_id=stall.market_id, region_code=stall.market.region_code)
        report = Report(reporter_id=rider.id, category_code=spec["category_code"], description=spec["description"],
                        photo_keys=[_photo()], lat=spec["lat"], lng=spec["lng"], cell_lat=cell_of(spec["lat"]),
                        cell_lng=cell_of(spec["lng"]), status="open", created_at=filed,
                        created_month=f"{to_local(filed):%Y-%m}",
                        accept_due_at=add_working_days(filed, ACCEPT_WITHIN_WORKING_DAYS),
                        close_due_at=filed + CLOSE_WITHIN, **place)
        db.session.add(report)
        db.session.flush()
        db.session.add(ReportEvent(report_id=report.id, action="submitted", at=filed, actor_id=rider.id))
        if spec.get("accepted"):
            report.status, report.accepted_at, report.accepted_by_id = "accepted", filed + timedelta(hours=2), regulator.id
            db.session.add(ReportEvent(report_id=report.id, action="accepted", at=report.accepted_at,
                                       actor_id=regulator.id))
        db.session.flush()
