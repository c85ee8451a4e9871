"""Fixtures of the rider-report tests: the shipped categories, a rider station of 万秀区, and a
`desk` that files and handles reports through the real API."""
from __future__ import annotations

import io

import pytest

from tests.markets.factories import jpeg_bytes

# Inside 梧州市万秀区 (GCJ-02), a few hundred metres from the demo market.
LAT, LNG = 23.4779123, 111.2790456


@pytest.fixture(autouse=True)
def categories(app, db):
    from app.reports.services import install_default_categories

    install_default_categories()
    db.session.commit()


@pytest.fixture
def station(db, regions):
    from tests.orgs.factories import create_org

    return create_org(name="万秀区快递外卖骑手党支部", sector="rider", station="万秀区美团站", platform="美团")


class Desk:
    def __init__(self, client, auth, shop, station) -> None:
        self.client, self.auth, self.shop, self.station = client, auth, shop, station

    def rider(self, openid: str = "rider-1", phone: str | None = "13812345678", name: str | None = "王小军"):
        """A rider of the station, with a bound phone and a real name."""
        from tests.orgs.factories import add_station_rider

        self.auth.grant(openid, "rider")
        add_station_rider(openid, self.station)
        login = self.auth.login(openid)
        if phone:
            assert self.client.post("/api/v1/auth/phone", json={"code": f"sim-phone-{phone}"},
                                    headers=login.headers).status_code == 200
        if name:
            assert self.client.put("/api/v1/me", json={"real_name": name}, headers=login.headers).status_code == 200
        return login

    def regulator(self, openid: str = "regulator-1", region: str = "450403"):
        return self.auth.login(openid, role="regulator", scope=f"region:{region}")

    def form(self, photos=None, **fields) -> dict:
        form = {"category": "kitchen_hygiene", "description": "后厨地面积水，生熟食材混放", "lat": str(LAT),
                "lng": str(LNG), "shop_name": "鸿记烧腊", "shop_address": "万秀区大中路 18 号"}
        form.update({key: value for key, value in fields.items() if value is not None})
        for key in [key for key, value in fields.items() if value is None]:
            form.pop(key, None)
        photos = [jpeg_bytes()] if photos is None else photos
        form["photos"] = [(io.BytesIO(photo), f"p{i}.jpg", "image/jpeg") for i, photo in enumerate(photos)]
        return form

    def file(self, login, expect: int | None = 201, headers=None, photos=None, **fields):
        response = self.client.post("/api/v1/reports", data=self.form(photos, **fields),
                                    headers={**login.headers, **(headers or {})}, content_type="multipart/form-data")
        if expect is not None:
            assert response.status_code == expect, response.get_json()
        return response

    def act(self, login, report_id: int, step: str, expect: int = 200, **body):
        response = self.client.post(f"/api/v1/reports/{report_id}/{step}", json=body, headers=login.headers)
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    def rectify(self, login, report_id: int, expect: int = 200, photo: bytes | None = None, note: str = "已整改"):
        data = {"note": note}
        if photo is not None:
            data["photo"] = (io.BytesIO(photo), "after.jpg", "image/jpeg")
        response = self.client.post(f"/api/v1/reports/{report_id}/rectified", data=data, headers=login.headers,
                                    content_type="multipart/form-data")
        assert response.status_code == expect, response.get_json()
        return response.get_json()

    def badge(self, token: str) -> dict:
        response = self.client.get(f"/api/v1/public/stalls/{token}")
        assert response.status_code == 200, response.get_json()
        return response.get_json()


@pytest.fixture
def desk(client, auth, shop, station):
    return Desk(client, auth, shop, station)


def inbox(db, user_id: int, kind: str | None = None) -> list:
    from sqlalchemy import select

    from app.reminders.models import Notification

    stmt = select(Notification).where(Notification.user_id == user_id).order_by(Notification.id)
    if kind:
        stmt = stmt.where(Notification.kind == kind)
    return list(db.session.scalars(stmt))
