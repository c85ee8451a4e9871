"""Issue 15 item 5, 组织与活动: organisations in scope, verifying members, the activities calendar,
attendance with its export, and the projector's rotating check-in code with the live count.
Access and forms over the Flask test client; the pages and the projector in real Chromium."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.conftest import at, xlsx_table
from tests.console.conftest import DESKTOP, PHONE, ConsoleActions
from tests.orgs import factories


@pytest.fixture
def party(db, regions):
    """A branch of 万秀区 (450403) with a verified member, a pending claim and an activity, and a
    branch of 长洲区 (450405) with its own pending claim and activity."""
    branch = factories.create_org(name="东中市场党支部", region_code="450403")
    factories.add_member("member-verified", branch, status="verified")
    pending_user = factories.add_member("member-pending", branch, status="pending")
    activity = factories.create_activity(branch, starts="2026-12-10 09:00", title="十二月主题党日")
    other = factories.create_org(name="长洲区骑手党支部", region_code="450405", sector="rider")
    factories.add_member("member-other", other, status="pending")
    other_activity = factories.create_activity(other, starts="2026-12-11 09:00", title="长洲区骑手活动")
    from app.orgs.models import Membership
    from app.extensions import db as _db
    from sqlalchemy import select

    pending = _db.session.scalar(select(Membership).where(Membership.user_id == pending_user.id))
    other_pending = _db.session.scalar(select(Membership).where(Membership.org_id == other.id))
    return {"branch": branch, "activity": activity, "pending": pending, "other": other,
            "other_activity": other_activity, "other_pending": other_pending}


def _html(response) -> str:
    return response.get_data(as_text=True)


def test_a_county_regulator_sees_only_its_organisations_and_activities(client, console, party, clock):
    clock.set(at("2026-12-01 10:00"))
    console.login("reg-wanxiu", role="regulator", scope="region:450403")
    listing = _html(client.get("/console/orgs"))
    assert "东中市场党支部" in listing and "长洲区骑手党支部" not in listing
    other, other_activity = party["other"], party["other_activity"]
    for path in (f"/console/orgs/{other.id}", f"/console/activities/{other_activity.id}",
                 f"/console/activities/{other_activity.id}/projector",
                 f"/console/activities/{other_activity.id}/attendance.xlsx",
                 f"/console/activities?org={other.id}"):
        assert client.get(path).status_code == 404, path
    code = client.get(f"/console/activities/{other_activity.id}/checkin-code", headers={"Accept": "application/json"})
    assert code.status_code == 404 and code.get_json()["error"]["code"] in ("ACTIVITY_NOT_FOUND", "ORG_NOT_FOUND",
                                                                            "NOT_FOUND")
    calendar = _html(client.get("/console/activities", query_string={"month": "2026-12"}))
    assert "十二月主题党日" in calendar and "长洲区骑手活动" not in calendar
    csrf = console.csrf()
    refused = client.post(f"/console/memberships/{party['other_pending'].id}/review",
                          data={"csrf_token": csrf, "decision": "approve"})
    assert refused.status_code == 404
    from app.extensions import db

    db.session.refresh(party["other_pending"])
    assert party["other_pending"].status == "pending"


def test_verify_a_member_and_a_rejection_needs_a_reason(client, console, party):
    branch, pending = party["branch"], party["pending"]
    console.login("sec", role="branch_secretary", scope=f"org:{branch.id}")
    page = _html(client.get(f"/console/orgs/{branch.id}"))
    assert f'data-membership="{pending.id}"' in page and 'data-testid="member-total">1 人' in page
    csrf = console.csrf(f"/console/orgs/{branch.id}")
    assert client.post(f"/console/memberships/{pending.id}/review", data={"decision": "approve"}).status_code == 403
    no_reason = client.post(f"/console/memberships/{pending.id}/review",
                            data={"csrf_token": csrf, "decision": "reject", "reason": " "})
    assert no_reason.status_code == 422
    assert re.search(rf'id="reason-error-{pending.id}">[^<]*原因', _html(no_reason))
    verified = client.post(f"/console/memberships/{pending.id}/review", data={"csrf_token": csrf, "decision": "approve"})
    assert verified.status_code == 303
    page = _html(client.get(verified.headers["Location"]))
    assert "已确认该党员身份" in page and 'data-testid="member-total">2 人' in page
    again = client.post(f"/console/memberships/{pending.id}/review", data={"csrf_token": csrf, "decision": "reject",
                                                                         "reason": "重复"})
    assert again.status_code == 409 and "已由他人处理" in _html(again)


def test_the_calendar_is_a_month_of_links_with_keyboard_reachable_navigation(client, console, party, clock):
    clock.set(at("2026-12-01 10:00"))
    branch = party["branch"]
    factories.create_activity(branch, starts="2027-01-05 14:00", title="一月支部大会", type="支部党员大会")
    console.login("sec", role="branch_secretary", scope=f"org:{branch.id}")
    december = _html(client.get("/console/activities"))
    assert "2026 年 12 月" in december and "十二月主题党日" in december and "一月支部大会" not in december
    assert "12 月 10 日" in december and "星期四" in december
    january = _html(client.get("/console/activities", query_string={"month": "2027-01"}))
    assert "一月支部大会" in january and "十二月主题党日" not in january
    assert 'href="/console/activities?month=2026-12"' in january
    bad = client.get("/console/activities", query_string={"month": "2026-13"})
    assert bad.status_code == 200 and "2026 年 12 月" in _html(bad)  # falls back to this month
    for month in ("9999-12", "0001-01", "2026-1-1", "２０２７-０１"):
        response = client.get("/console/activities", query_string={"month": month})
        assert response.status_code == 200 and "2026 年 12 月" in _html(response), month


def test_attendance_export_is_the_attendance_sheet(client, console, party, auth, clock):
    activity = party["activity"]
    clock.set(at("2026-12-10 09:00"))
    console.login("sec", role="branch_secretary", scope=f"org:{party['branch'].id}")
    page = _html(client.get(f"/console/activities/{activity.id}"))
    assert "签到情况" in page and 'data-testid="attendance-counts"' in page
    export = client.get(f"/console/activities/{activity.id}/attendance.xlsx")
    assert export.status_code == 200 and export.mimetype.endswith("spreadsheetml.sheet")
    assert "filename*=UTF-8''" in export.headers["Content-Disposition"]
    heading, header, rows, _ = xlsx_table(export.data)
    assert heading[0] == "十二月主题党日（签到表）" and header[1] == "姓名"
    assert len(rows) == 1  # the verified member, absent so far


def test_the_checkin_code_endpoint_gives_the_code_and_the_count(client, console, party, auth, clock):
    from app.activities.checkin import make_payload, slot_of

    activity = party["activity"]
    clock.set(at("2026-12-10 08:50:05"))
    console.login("sec", role="branch_secretary", scope=f"org:{party['branch'].id}")
    code = client.get(f"/console/activities/{activity.id}/checkin-code", headers={"Accept": "application/json"})
    body = code.get_json()
    assert code.status_code == 200 and body["window"] == "open" and body["checked_in"] == 0
    assert body["expires_in"] == 25 and body["image"].startswith("data:image/png;base64,")
    member = auth.login("member-verified")
    scanned = client.post(f"/api/v1/activities/{activity.id}/checkins", headers=member.headers,
                          json={"payload": make_payload(activity.id, slot_of(clock.now()))})
    assert scanned.status_code == 201, scanned.get_json()
    assert client.get(f"/console/activities/{activity.id}/checkin-code").get_json()["checked_in"] == 1
    for _ in range(6):  # a meeting's worth of polls (each one activity: the session stays)
        clock.advance(timedelta(minutes=25))
        body = client.get(f"/console/activities/{activity.id}/checkin-code").get_json()
    assert body["window"] == "closed" and body["checked_in"] == 1


# -- in the browser ---------------------------------------------------------------------------------
def test_orgs_list_member_verify_and_screenshots(live_server, page, new_page, scan_login, shot, party, clock):
    clock.set(at("2026-12-01 10:00"))
    branch, pending = party["branch"], party["pending"]
    scan_login(page, "reg-wanxiu", role="regulator", scope="region:450403", path="/console/orgs")
    assert page.locator("[data-testid=orgs] tbody tr").count() == 1
    assert "长洲区骑手党支部" not in page.content()
    shot(page, "orgs-1280x800")
    page.get_by_role("link", name="东中市场党支部").click()
    page.wait_for_selector("[data-testid=pending]")
    shot(page, "org-1280x800")
    row = page.locator(f'[data-membership="{pending.id}"]')
    row.get_by_role("button", name=re.compile("^驳回")).click()
    error = page.locator(f"#reason-error-{pending.id}")
    error.wait_for()
    assert "原因" in error.inner_text()
    page.locator(f'[data-membership="{pending.id}"]').get_by_role("button", name=re.compile("^确认")).click()
    page.locator("[data-testid=notice]").filter(has_text="已确认该党员身份").wait_for()
    assert page.locator("[data-testid=member-total]").inner_text() == "2 人"
    page.goto(f"{live_server}/console/activities?month=2026-12")
    page.get_by_role("link", name=re.compile("十二月主题党日")).focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=attendance-counts]")
    assert page.locator("h1").inner_text() == "十二月主题党日"
    response = page.goto(f"{live_server}/console/orgs/{party['other'].id}")
    assert response.status == 404

    phone = new_page(PHONE)
    scan_login(phone, "reg-wanxiu", role=None, path="/console/orgs")
    shot(phone, "orgs-390x844")
    phone.goto(f"{live_server}/console/activities?month=2026-12")
    shot(phone, "activities-390x844")
    assert phone.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


def test_the_projector_shows_the_code_a_countdown_and_the_count_rising(live_server, page, new_page, scan_login, shot,
                                                                        party, auth, client, clock):
    import base64
    import io

    import zxingcpp
    from PIL import Image

    from app.activities.checkin import make_payload, slot_of

    activity = party["activity"]
    clock.set(at("2026-12-10 08:50:05"))
    scan_login(page, "sec", role="branch_secretary", scope=f"org:{party['branch'].id}",
               path=f"/console/activities/{activity.id}")
    page.get_by_role("link", name="投屏签到码").click()
    page.wait_for_selector("#checkin-qr:not([hidden])")
    image = page.locator("#checkin-qr")
    box = image.bounding_box()
    assert box["width"] >= 500, box  # large enough to scan from the back of the room
    src = image.get_attribute("src")
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))
    assert [code.text for code in decoded] == [make_payload(activity.id, slot_of(clock.now()))]
    assert page.locator(".projector-title").inner_text() == "十二月主题党日"
    assert 0 < int(page.locator("[data-testid=countdown]").inner_text()) <= 30
    assert page.locator("[data-testid=checked-in]").inner_text() == "0"
    shot(page, "projector-1280x800")

    member = auth.login("member-verified")
    scanned = client.post(f"/api/v1/activities/{activity.id}/checkins", headers=member.headers,
                          json={"payload": make_payload(activity.id, slot_of(clock.now()))})
    assert scanned.status_code == 201, scanned.get_json()
    page.locator("[data-testid=checked-in]").filter(has_text="1").wait_for()

    phone = new_page(PHONE)
    scan_login(phone, "sec", role=None, path=f"/console/activities/{activity.id}/projector")
    phone.wait_for_selector("#checkin-qr:not([hidden])")
    shot(phone, "projector-390x844")
