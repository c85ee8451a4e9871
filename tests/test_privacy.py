"""R8 across flows: a session_key, a bearer token, a full phone number or raw coordinates never
appear in any response body or any log line, even at DEBUG."""
import io
import logging

from openpyxl import load_workbook

from app.activities.checkin import make_payload, slot_of
from app.identity.models import WechatSession
from tests.conftest import at
from tests.orgs.factories import add_member, create_activity, create_org

PHONE = "13812345678"
RAW_LAT, RAW_LNG = 23.4779123, 111.2790456


def test_secrets_phone_and_coordinates_stay_out_of_responses_and_logs(app, client, auth, db, regions,
                                                                     clock, caplog):
    caplog.set_level(logging.DEBUG)
    clock.set(at("2026-03-01 08:55"))
    bodies: list[str] = []

    def keep(response):
        bodies.append(response.get_data(as_text=True) if response.mimetype != "application/vnd.openxmlformats-"
                      "officedocument.spreadsheetml.sheet" else _xlsx_text(response.data))
        return response

    org = create_org()
    activity = create_activity(org, starts="2026-03-01 09:00", lat=23.4769, lng=111.2790, radius_m=300)
    add_member("member-1", org)
    secretary = auth.login("sec-1", role="branch_secretary", scope=f"org:{org.id}")
    member = auth.login("member-1")
    keep(client.post("/api/v1/auth/phone", json={"code": f"sim-phone-{PHONE}"}, headers=member.headers))
    keep(client.get("/api/v1/me", headers=member.headers))
    payload = make_payload(activity.id, slot_of(clock.now()))
    checkin = keep(client.post(f"/api/v1/activities/{activity.id}/checkins", headers=member.headers,
                               json={"payload": payload, "lat": RAW_LAT, "lng": RAW_LNG, "accuracy": 12}))
    assert checkin.status_code == 201
    keep(client.get(f"/api/v1/activities/{activity.id}/attendance", headers=secretary.headers))
    keep(client.get(f"/api/v1/activities/{activity.id}/attendance?format=xlsx", headers=secretary.headers))

    session_key = db.session.query(WechatSession).filter_by(user_id=member.user_id).one().session_key
    forbidden = {
        "session_key": session_key, "bearer token": member.token, "full phone": PHONE,
        "raw latitude": str(RAW_LAT)[:9], "raw longitude": str(RAW_LNG)[:10],
    }
    everything = "\n".join(bodies) + "\n" + caplog.text
    leaks = [name for name, value in forbidden.items() if value in everything]
    assert leaks == []
    # what the organiser does see: the masked number and the distance, not the position
    assert "138****5678" in "\n".join(bodies)
    assert checkin.get_json()["distance_m"] is not None


def _xlsx_text(data: bytes) -> str:
    sheet = load_workbook(io.BytesIO(data)).active
    return "\n".join(" ".join(str(cell) for cell in row if cell is not None) for row in sheet.iter_rows(values_only=True))


def test_a_rider_report_keeps_the_rider_and_the_spot_private(app, client, auth, db, regions, shop, clock, caplog):
    """骑手随手拍: the merchant's badge says nothing of who reported; the handler sees the rider
    masked and the exact spot only while the report is open; closing it keeps the cell's centre;
    the rider's own answers, the badge, the figures and the logs never carry the raw position."""
    from app.reports.services import install_default_categories
    from tests.markets.factories import jpeg_bytes
    from tests.orgs.factories import add_station_rider, create_org

    caplog.set_level(logging.DEBUG)
    clock.set(at("2026-03-02 10:00"))
    install_default_categories()
    db.session.commit()
    market, manager, token, merchant, _ = shop.trusted_stall()
    station = create_org(name="万秀区快递外卖骑手党支部", sector="rider")
    auth.grant("rider-1", "rider")
    add_station_rider("rider-1", station)
    rider = auth.login("rider-1")
    client.post("/api/v1/auth/phone", json={"code": f"sim-phone-{PHONE}"}, headers=rider.headers)
    client.put("/api/v1/me", json={"real_name": "王小军"}, headers=rider.headers)
    bodies: list[str] = []
    filed = client.post("/api/v1/reports", headers=rider.headers, content_type="multipart/form-data", data={
        "category": "kitchen_hygiene", "description": "后厨不卫生", "lat": str(RAW_LAT), "lng": str(RAW_LNG),
        "stall_token": token, "photos": [(io.BytesIO(jpeg_bytes()), "p.jpg", "image/jpeg")]})
    assert filed.status_code == 201
    bodies.append(filed.get_data(as_text=True))
    report_id = filed.get_json()["id"]

    open_view = client.get(f"/api/v1/reports/{report_id}", headers=manager.headers).get_json()
    assert open_view["location"] == {"lat": RAW_LAT, "lng": RAW_LNG, "precision": "exact"}  # the handler's only
    assert open_view["reporter"] == {"name": "王*军", "phone": "138****5678"}
    client.post(f"/api/v1/reports/{report_id}/accept", headers=manager.headers)
    closed = client.post(f"/api/v1/reports/{report_id}/decide", json={"decision": "upheld"}, headers=manager.headers)
    assert closed.get_json()["location"]["precision"] == "cell"
    bodies.append(closed.get_data(as_text=True))
    for path, who in ((f"/api/v1/reports/{report_id}", rider), (f"/api/v1/reports/{report_id}", manager),
                      ("/api/v1/reports?mine=true", rider), ("/api/v1/me/notifications", rider),
                      (f"/api/v1/public/stalls/{token}", merchant), (f"/api/v1/reports/{report_id}", merchant),
                      ("/api/v1/me/notifications", merchant), ("/api/v1/reports", merchant)):
        bodies.append(client.get(path, headers=who.headers).get_data(as_text=True))
    bodies.append(client.get(f"/s/{token}").get_data(as_text=True))

    everything = "\n".join(bodies) + "\n" + caplog.text
    forbidden = {"raw latitude": str(RAW_LAT)[:9], "raw longitude": str(RAW_LNG)[:10], "full phone": PHONE,
                 "bearer token": rider.token}
    assert [name for name, value in forbidden.items() if value in everything] == []
    merchant_side = "\n".join(bodies[-5:])
    assert "王" not in merchant_side.replace("王*", "") and "rider-1" not in merchant_side
    assert "138****5678" not in merchant_side
