"""Care stations (暖心驿站): kept by regulators or secretaries in their region; anyone finds the
nearest first, within a radius, with distances in metres."""
import pytest

from app.activities.checkin import haversine_m
from tests.conftest import error_code

CENTRE = (23.4769, 111.2790)  # 梧州 万秀区


@pytest.fixture
def stations(db, regions):
    from app.activities.models import CareStation

    rows = [  # (name, lat, lng): north by 0.001° ≈ 111.2 m, east by 0.01° ≈ 1020 m at this latitude
        ("东中驿站", CENTRE[0] + 0.001, CENTRE[1]),
        ("河东驿站", CENTRE[0], CENTRE[1] + 0.01),
        ("长洲驿站", CENTRE[0] + 0.03, CENTRE[1]),
        ("醴陵驿站", 27.6461, 113.4969),
    ]
    for name, lat, lng in rows:
        db.session.add(CareStation(name=name, region_code="450403", lat=lat, lng=lng, amenities=["water", "charging"]))
    db.session.commit()


def test_nearest_first_with_distances_and_radius(client, stations):
    response = client.get(f"/api/v1/care-stations?lat={CENTRE[0]}&lng={CENTRE[1]}&radius_m=5000")
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [s["name"] for s in items] == ["东中驿站", "河东驿站", "长洲驿站"]
    # 0.001° of latitude is 111.2 m; 0.01° of longitude at 23.48° N is 1113.2 m × cos(23.48°) = 1021 m
    assert items[0]["distance_m"] == pytest.approx(111, abs=2)
    assert items[1]["distance_m"] == pytest.approx(1021, abs=3)
    assert items[2]["distance_m"] == pytest.approx(3336, abs=5)
    assert items[0]["amenity_labels"] == ["饮水", "充电"]
    small = client.get(f"/api/v1/care-stations?lat={CENTRE[0]}&lng={CENTRE[1]}&radius_m=1000").get_json()
    assert [s["name"] for s in small["items"]] == ["东中驿站"] and small["total"] == 1
    paged = client.get(f"/api/v1/care-stations?lat={CENTRE[0]}&lng={CENTRE[1]}&radius_m=5000&per_page=1&page=2").get_json()
    assert [s["name"] for s in paged["items"]] == ["河东驿站"] and paged["total"] == 3


def test_haversine_against_known_distances():
    import math

    # one degree of arc on the mean Earth sphere (R = 6371.0088 km) is 111,195 m
    assert haversine_m(0, 0, 0, 1) == pytest.approx(111_195, abs=1)
    assert haversine_m(23, 111, 24, 111) == pytest.approx(111_195, abs=1)
    # 梧州 to 醴陵, checked against the spherical law of cosines
    lat1, lng1, lat2, lng2 = map(math.radians, (23.4769, 111.2790, 27.6461, 113.4969))
    cosines = 6_371_008.8 * math.acos(math.sin(lat1) * math.sin(lat2)
                                      + math.cos(lat1) * math.cos(lat2) * math.cos(lng2 - lng1))
    assert haversine_m(23.4769, 111.2790, 27.6461, 113.4969) == pytest.approx(cosines, abs=1)
    assert haversine_m(0, 179.9995, 0, -179.9995) == pytest.approx(111.2, abs=0.5)


def test_box_prefilter_across_the_antimeridian(client, db, regions):
    from app.activities.models import CareStation

    db.session.add(CareStation(name="东经", region_code="450403", lat=0.0, lng=179.999))
    db.session.add(CareStation(name="西经", region_code="450403", lat=0.0, lng=-179.999))
    db.session.commit()
    items = client.get("/api/v1/care-stations?lat=0&lng=179.9995&radius_m=500").get_json()["items"]
    assert sorted(s["name"] for s in items) == ["东经", "西经"]


def test_bad_query_is_422(client):
    assert error_code(client.get("/api/v1/care-stations?lat=100&lng=0")) == "VALIDATION_ERROR"
    assert error_code(client.get("/api/v1/care-stations?lng=0")) == "VALIDATION_ERROR"


def test_regulator_and_secretary_create_in_their_region_only(client, auth, make_org):
    body = {"name": "万秀暖心驿站", "region_code": "450403", "lat": 23.48, "lng": 111.28, "hours": "全天",
            "amenities": ["water", "microwave", "rest"]}
    reg = auth.login("reg", role="regulator", scope="region:450400")
    created = client.post("/api/v1/care-stations", json=body, headers=reg.headers)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["amenities"] == ["microwave", "rest", "water"]
    assert error_code(client.post("/api/v1/care-stations", json={**body, "region_code": "430281"},
                                  headers=reg.headers)) == "OUT_OF_SCOPE"
    org = make_org(sector="rider")
    sec = auth.login("sec", role="branch_secretary", scope=f"org:{org.id}")
    assert client.post("/api/v1/care-stations", json={**body, "org_id": org.id}, headers=sec.headers).status_code == 201
    assert error_code(client.post("/api/v1/care-stations", json={**body, "org_id": org.id, "region_code": "450405"},
                                  headers=sec.headers)) == "CARE_STATION_OUT_OF_REGION"
    assert error_code(client.post("/api/v1/care-stations", json=body, headers=sec.headers)) == "OUT_OF_SCOPE"
    rider = auth.login("rider", role="rider")
    assert error_code(client.post("/api/v1/care-stations", json=body, headers=rider.headers)) == "FORBIDDEN"
    assert error_code(client.post("/api/v1/care-stations", json={**body, "amenities": ["spa"]},
                                  headers=reg.headers)) == "VALIDATION_ERROR"
