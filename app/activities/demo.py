"""Demo activities and care stations: a 主题党日 of the market branch next week (geofenced at
the market), an open volunteering activity for the riders' station, and care stations around
梧州. Idempotent (activities by organisation and title, stations by name)."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from app.activities.models import Activity, CareStation
from app.core.time import local_midnight_utc, local_today
from app.extensions import db

CARE_STATIONS = [
    # name, address, lat, lng, hours, amenities
    ("东中暖心驿站", "万秀区东中路东中农贸市场东门", 23.4772, 111.3046, "07:00-22:00",
     ["water", "charging", "microwave", "rest", "toilet"]),
    ("万秀区小哥驿站（美团站）", "万秀区新兴二路 18 号", 23.4801, 111.2958, "全天开放",
     ["water", "charging", "rest", "first_aid"]),
    ("骑楼城暖心驿站", "万秀区大南路骑楼城游客中心旁", 23.4758, 111.3080, "09:00-21:00",
     ["water", "charging", "toilet"]),
    ("河东市场监管所爱心驿站", "万秀区西江一路 62 号", 23.4713, 111.2869, "08:00-18:00",
     ["water", "microwave", "rest", "toilet", "first_aid"]),
]


def _next_week_at(hour: int) -> datetime:
    return local_midnight_utc(local_today() + timedelta(days=7)) + timedelta(hours=hour)


def _activity(org, title: str, **values) -> None:
    if db.session.scalar(select(Activity.id).where(Activity.org_id == org.id, Activity.title == title)):
        return
    starts = values.pop("starts_at")
    ends = starts + timedelta(hours=values.pop("hours", 2))
    db.session.add(Activity(org_id=org.id, title=title, starts_at=starts, ends_at=ends,
                            checkin_opens_at=starts - timedelta(minutes=30), checkin_closes_at=ends,
                            status="scheduled", **values))


def seed(ctx: dict) -> None:
    market_branch, rider_branch = ctx.get("market_branch"), ctx.get("rider_branch")
    market, secretary = ctx.get("market"), ctx.get("demo-secretary")
    if market_branch is not None:
        _activity(market_branch, "主题党日：亮身份、守诚信、优服务", type="主题党日",
                  description="学习诚信经营承诺，党员经营户亮明身份，交流明码标价经验。",
                  starts_at=_next_week_at(9), place_name="东中农贸市场党群服务站",
                  lat=market.lat if market else 23.4770, lng=market.lng if market else 111.3050,
                  radius_m=300, points=5, audience="members",
                  created_by_id=secretary.id if secretary else None)
    if rider_branch is not None:
        _activity(rider_branch, "骑手志愿服务：文明交通劝导", type="志愿服务",
                  description="在东中路口开展文明交通劝导，欢迎全站骑手报名参加。",
                  starts_at=_next_week_at(15), hours=2, place_name="东中路与大中路交叉口",
                  lat=23.4775, lng=111.3040, radius_m=500, points=10, capacity=30, audience="station_riders")
    for name, address, lat, lng, hours, amenities in CARE_STATIONS:
        if db.session.scalar(select(CareStation.id).where(CareStation.name == name)) is None:
            db.session.add(CareStation(name=name, address=address, region_code="450403", lat=lat, lng=lng,
                                       hours=hours, amenities=sorted(amenities),
                                       org_id=rider_branch.id if rider_branch is not None else None))
    db.session.flush()
