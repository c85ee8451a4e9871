"""Each bad report is a clear envelope error and leaves nothing behind: no report row, no
stored photo (objects written before the failure go with the rollback), no points."""
import pytest
from sqlalchemy import func, select

from tests.conftest import at, error_code
from tests.markets.factories import jpeg_bytes


def _reports(db) -> int:
    from app.reports.models import Report

    return db.session.scalar(select(func.count()).select_from(Report))


def _photos() -> int:
    from app.core.objectstore import current_store
    from app.core.storage import photo_objects

    return len(photo_objects(current_store()))


@pytest.fixture
def rider(desk, clock):
    clock.set(at("2026-03-02 10:00"))
    return desk.rider()


@pytest.mark.parametrize("fields, status, code", [
    ({"category": "no_such_thing"}, 422, "REPORT_CATEGORY_NOT_FOUND"),
    ({"lat": "51.5007", "lng": "-0.1246"}, 422, "REPORT_LOCATION_OUTSIDE_CHINA"),  # London
    ({"lat": "23.47", "lng": "141.2"}, 422, "REPORT_LOCATION_OUTSIDE_CHINA"),  # the Pacific, east of China
    ({"lat": "95", "lng": "111.3"}, 422, "VALIDATION_ERROR"),  # not a latitude at all
    ({"shop_name": None, "shop_address": None}, 422, "REPORT_PLACE_REQUIRED"),
    ({"shop_name": "   "}, 422, "REPORT_PLACE_REQUIRED"),
    ({"stall_token": "Zz9Zz9Zz9Zz9"}, 422, "REPORT_STALL_UNKNOWN"),
    ({"description": "这里有违禁词"}, 422, "CONTENT_RISKY"),
])
def test_bad_fields_are_refused_with_their_own_code(desk, rider, db, fields, status, code):
    before = _photos()
    response = desk.file(rider, expect=status, **fields)
    assert error_code(response) == code
    assert _reports(db) == 0 and _photos() == before


def test_a_voided_sticker_says_so(desk, shop, rider, client, db):
    market = shop.market()
    manager = shop.manager(market)
    old = shop.stalls(market, manager, ["A-01"])[0]["token"]
    assert client.post(f"/api/v1/stalls/{old}/reissue", headers=manager.headers).status_code == 200
    response = desk.file(rider, expect=422, stall_token=old)
    assert error_code(response) == "REPORT_STALL_TOKEN_VOID" and "新二维码" in response.get_json()["error"]["message"]
    assert _reports(db) == 0


@pytest.mark.parametrize("photos, status, code", [
    ([], 422, "REPORT_PHOTOS_REQUIRED"),
    ([jpeg_bytes()] * 4, 422, "REPORT_PHOTOS_REQUIRED"),
    ([b"GIF89a not a photo"], 415, "PHOTO_NOT_IMAGE"),
    ([jpeg_bytes(), jpeg_bytes()[:200]], 422, "PHOTO_SUSPICIOUS"),  # the first is stored, then removed
    ([jpeg_bytes(), jpeg_bytes() + b"<script>alert(1)</script>"], 422, "PHOTO_SUSPICIOUS"),
])
def test_photos_that_fail_leave_nothing_stored(desk, rider, db, photos, status, code):
    before = _photos()
    response = desk.file(rider, expect=status, photos=photos)
    assert error_code(response) == code
    assert _reports(db) == 0 and _photos() == before


def test_stored_photos_are_re_encoded_without_gps(desk, rider, client):
    from PIL import Image

    exif = Image.Exif()
    exif[0x8825] = {2: (23.0, 28.0, 40.0), 4: (111.0, 16.0, 44.0)}  # GPSInfo
    report = desk.file(rider, photos=[jpeg_bytes(exif=exif.tobytes())]).get_json()
    stored = client.get(report["photo_urls"][0], headers=rider.headers).data
    assert b"Exif" not in stored[:4096] and stored.startswith(b"\xff\xd8")


def test_only_riders_file_reports(desk, auth, db, clock):
    clock.set(at("2026-03-02 10:00"))
    someone = auth.login("not-a-rider")
    response = desk.file(someone, expect=403)
    assert error_code(response) == "FORBIDDEN" and _reports(db) == 0


def test_a_rider_without_a_station_can_report_a_stall_but_not_a_shop(desk, shop, auth, db, clock):
    clock.set(at("2026-03-02 10:00"))
    market = shop.market()
    token = shop.stalls(market, shop.manager(market), ["A-01"])[0]["token"]
    loose = auth.login("loose-rider", role="rider")
    assert error_code(desk.file(loose, expect=422)) == "REPORT_REGION_UNKNOWN"
    desk.file(loose, stall_token=token)


def test_handlers_outside_the_report_learn_nothing(desk, shop, client, rider, db):
    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["A-01"])[0]["token"]
    report = desk.file(rider, stall_token=token).get_json()
    other_market = shop.market(name="长洲区农贸市场", region_code="450405")
    outsiders = [desk.regulator("far-away", "430281"), shop.manager(other_market, "manager-2"),
                 desk.regulator("next-county", "450405")]
    for outsider in outsiders:
        for step, body in (("accept", {}), ("decide", {"decision": "upheld"}), ("transfer", {"region": "450405"})):
            response = client.post(f"/api/v1/reports/{report['id']}/{step}", json=body, headers=outsider.headers)
            # a manager may not transfer at all (403 by role); otherwise the report is not theirs to see
            expected = ("FORBIDDEN", 403) if step == "transfer" and outsider.openid == "manager-2" else (
                "REPORT_NOT_FOUND", 404)
            assert (error_code(response), response.status_code) == expected, (outsider.openid, step)
        assert client.get(f"/api/v1/reports/{report['id']}", headers=outsider.headers).status_code == 404
    # the market's own manager may not transfer either; a regulator of the county may
    refused = client.post(f"/api/v1/reports/{report['id']}/transfer", json={"region": "450405"},
                          headers=manager.headers)
    assert refused.status_code == 403 and error_code(refused) == "FORBIDDEN"
    regulator = desk.regulator()
    unknown = client.post(f"/api/v1/reports/{report['id']}/transfer", json={"region": "459999"},
                          headers=regulator.headers)
    assert unknown.status_code == 404 and error_code(unknown) == "REGION_NOT_FOUND"
    assert desk.act(regulator, report["id"], "accept")["status"] == "accepted"
