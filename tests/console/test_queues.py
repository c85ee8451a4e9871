"""Issue 15 item 3: the review queues (待办) of the web console — in real Chromium (approve a
pledge and see the stall's public badge change, reject a claim with a reason, bulk approve, a
decision taken meanwhile over the API, screenshots) and over the Flask test client (plain
POST without the page's script, scope, CSRF, the other queues)."""
from __future__ import annotations

import io
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import error_code
from tests.console.conftest import PHONE, ConsoleActions
from tests.markets.factories import jpeg_bytes
from tests.pledges.factories import make_merchant, make_stall, make_template

WUZHOU = "region:450400"  # 梧州市: covers 万秀区 (450403), where the market is
CHANGZHOU = "region:450405"  # 长洲区: a sibling county, sees nothing of 万秀区


@dataclass
class Desk:
    """A market of 万秀区 with its manager, and what arrives in its queues, built over the API."""

    client: object
    auth: object
    market: object
    manager: object
    template: object

    def merchant(self, openid: str, name: str):
        owner = self.auth.login(openid, role="merchant")
        return owner, make_merchant(owner.user_id, name=name, operator=name[:3])

    def pledge(self, number: str, openid: str, name: str):
        """A stall held by a new entity whose owner signed the pledge: (stall, pledge id)."""
        owner, merchant = self.merchant(openid, name)
        stall = make_stall(self.market, number, merchant)
        response = self.client.post(f"/api/v1/merchants/{merchant.id}/pledges", headers=owner.headers,
                                    json={"template_id": self.template.id, "signer_name": name[:3]})
        assert response.status_code == 201, response.get_json()
        return stall, response.get_json()["id"]

    def claim(self, number: str, openid: str, name: str):
        """An unclaimed stall and a pending claim on it: (stall, claim id)."""
        owner, merchant = self.merchant(openid, name)
        stall = make_stall(self.market, number)
        response = self.client.post(f"/api/v1/stalls/{stall.token}/claim", json={"merchant_id": merchant.id},
                                    headers=owner.headers)
        assert response.status_code == 201, response.get_json()
        return stall, response.get_json()["id"]

    def credential(self, number: str, openid: str, name: str) -> int:
        owner, merchant = self.merchant(openid, name)
        make_stall(self.market, number, merchant)
        response = self.client.post(f"/api/v1/merchants/{merchant.id}/credentials", headers=owner.headers,
                                    content_type="multipart/form-data", data={
                                        "kind": "food_business", "number": "JY14504030012345",
                                        "issuer": "梧州市万秀区市场监督管理局", "valid_from": "2024-01-01",
                                        "valid_until": "2030-06-30", "long_term": "false",
                                        "photo": (io.BytesIO(jpeg_bytes((640, 480))), "p.jpg", "image/jpeg")})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def review_pledge(self, pledge_id: int, decision: str = "approve", reason: str | None = None):
        response = self.client.post(f"/api/v1/pledges/{pledge_id}/review", json={"decision": decision, "reason": reason},
                                    headers=self.manager.headers)
        assert response.status_code == 200, response.get_json()

    def badge_pledge(self, token: str) -> dict:
        items = self.client.get(f"/api/v1/public/stalls/{token}").get_json()["items"]
        return next(item for item in items if item["key"] == "pledge")


@pytest.fixture
def desk(client, auth, make_market) -> Desk:
    market = make_market(name="万秀区东中农贸市场", region_code="450403")
    manager = auth.login("mgr-dongzhong", role="market_manager", scope=f"market:{market.id}")
    return Desk(client, auth, market, manager, make_template("450000"))


def keep(path: Path) -> None:
    """With CONSOLE_SHOTS=<dir>, a copy of the screenshot there, to look at."""
    target = os.environ.get("CONSOLE_SHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def status(record_type, record_id):
    from app.extensions import db

    record = db.session.get(record_type, record_id)
    db.session.refresh(record)
    return record.status


# -- in the browser -----------------------------------------------------------------------------
def test_approve_a_pledge_in_place_and_the_public_badge_shows_it(live_server, page, scan_login, desk, shot):
    stall, pledge_id = desk.pledge("A-01", "li", "李记蔬菜店")
    desk.pledge("A-02", "zhao", "赵家水果摊")
    assert desk.badge_pledge(stall.token)["ok"] is False
    scan_login(page, "reg-wz", role="regulator", scope=WUZHOU, path="/console/queues")
    cards = page.locator("[data-testid=queue-list]")
    assert cards.locator("[data-queue=pledges] .q-card-count").inner_text() == "2"
    assert page.locator("[data-nav=queues] .nav-count").inner_text() == "2"
    keep(shot(page, "landing-1280x800"))

    page.locator("[data-queue=pledges]").click()
    page.wait_for_url(re.compile(r"/console/queues/pledges$"))
    row = page.locator(f"#item-{pledge_id}")
    assert "李记蔬菜店" in row.inner_text()
    assert page.locator(".q-item").first.get_attribute("data-id") == str(pledge_id)  # oldest first
    keep(shot(page, "pledges-1280x800"))
    row.get_by_role("button", name="批准").click()
    row.locator(".q-status:has-text('已批准')").wait_for()
    assert page.url.endswith("/console/queues/pledges")  # no reload
    assert page.locator("[data-nav=queues] .nav-count").inner_text() == "1"
    badge = desk.badge_pledge(stall.token)
    assert badge["ok"] is True and badge["detail"]
    keep(shot(page, "pledges-after-1280x800"))


def test_reject_a_claim_with_a_reason_and_the_empty_reason_is_refused_next_to_the_field(
        live_server, page, scan_login, desk):
    from app.markets.models import StallClaim

    _, first = desk.claim("B-01", "li", "李记蔬菜店")
    _, second = desk.claim("B-02", "zhao", "赵家水果摊")
    scan_login(page, "reg-wz", role="regulator", scope=WUZHOU, path="/console/queues/claims")
    other = page.locator(f"#reason-{second}")
    other.fill("已核对营业执照")  # typed in another row, not sent
    row = page.locator(f"#item-{first}")
    row.get_by_role("button", name="驳回").click()
    error = row.locator(".field-error")
    error.wait_for()
    assert "原因" in error.inner_text()
    assert row.locator("input[name=reason]").get_attribute("aria-invalid") == "true"
    assert other.input_value() == "已核对营业执照"
    assert status(StallClaim, first) == "pending"

    row.locator("input[name=reason]").fill("营业执照上的经营者与认领人不符")
    row.get_by_role("button", name="驳回").click()
    row.locator(".q-status:has-text('已驳回')").wait_for()
    assert status(StallClaim, first) == "rejected"
    assert other.input_value() == "已核对营业执照"


def test_bulk_approve_reports_each_row_and_a_decision_taken_meanwhile(live_server, page, scan_login, desk):
    from app.pledges.models import Pledge

    pledges = [desk.pledge(f"C-0{n}", f"owner-{n}", name)[1]
               for n, name in enumerate(("李记蔬菜店", "赵家水果摊", "王氏粮油"), start=1)]
    scan_login(page, "reg-wz", role="regulator", scope=WUZHOU, path="/console/queues/pledges")
    desk.review_pledge(pledges[1], "reject", "承诺书签署人不是经营者本人")  # the manager, on the phone, meanwhile
    page.locator("#q-select-all").check()
    page.get_by_role("button", name="批准所选").click()
    page.locator("#q-notice:has-text('已批准 2 项')").wait_for()
    assert "1 项未处理" in page.locator("#q-notice").inner_text()
    for pledge_id in (pledges[0], pledges[2]):
        assert "已批准" in page.locator(f"#item-{pledge_id} .q-status").inner_text()
        assert status(Pledge, pledge_id) == "approved"
    taken = page.locator(f"#item-{pledges[1]} .q-status").inner_text()
    assert taken == "已由他人处理：已驳回"
    assert status(Pledge, pledges[1]) == "rejected"


def test_a_decision_taken_by_someone_else_shows_on_the_row(live_server, page, scan_login, desk):
    _, pledge_id = desk.pledge("D-01", "li", "李记蔬菜店")
    scan_login(page, "reg-wz", role="regulator", scope=WUZHOU, path="/console/queues/pledges")
    desk.review_pledge(pledge_id, "approve")
    row = page.locator(f"#item-{pledge_id}")
    row.get_by_role("button", name="批准").click()
    row.locator(".q-status:has-text('已由他人处理：已批准')").wait_for()
    assert "出错了" not in page.title()
    assert row.locator("form").count() == 0  # nothing left to decide on this row


def test_screenshots_of_the_queues_at_desk_and_phone_size(live_server, page, new_page, scan_login, desk, shot):
    desk.pledge("E-01", "li", "李记蔬菜店")
    desk.credential("E-02", "zhao", "赵家水果摊")
    desk.claim("E-03", "wang", "王氏粮油")
    phone = new_page(PHONE)
    for view, size in ((page, "1280x800"), (phone, "390x844")):
        scan_login(view, "reg-wz", role="regulator", scope=WUZHOU, path="/console/queues")
        keep(shot(view, f"landing-{size}"))
        view.goto(f"{live_server}/console/queues/credentials")
        image = view.locator(".q-photo img").first
        image.wait_for()
        assert view.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
        keep(shot(view, f"credentials-{size}"))
        view.goto(f"{live_server}/console/queues/claims")
        keep(shot(view, f"claims-{size}"))
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling


# -- over the test client (no script: plain POST and redirect) ----------------------------------
def decide(console, key, item_id, csrf, **form):
    return console.client.post(f"/console/queues/{key}/{item_id}/decision", data={"csrf_token": csrf, **form})


def test_plain_post_rejects_with_a_reason_keeps_what_was_typed_and_reports_someone_elses_decision(console, desk):
    from app.markets.models import StallClaim

    stall, claim_id = desk.claim("F-01", "li", "李记蔬菜店")
    console.login("reg-wz", role="regulator", scope=WUZHOU)
    csrf = console.csrf("/console/queues/claims")
    refused = decide(console, "claims", claim_id, csrf, decision="reject", reason="   ")
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert re.search(rf'id="reason-error-{claim_id}"[^>]*>[^<]*原因', html)
    assert 'value="   "' in html and 'aria-invalid="true"' in html
    assert status(StallClaim, claim_id) == "pending"

    done = decide(console, "claims", claim_id, csrf, decision="reject", reason="认领人不是经营者")
    assert done.status_code == 303 and done.headers["Location"].endswith("/console/queues/claims?result=reject")
    page = console.client.get(done.headers["Location"]).get_data(as_text=True)
    assert "已处理：驳回" in page and 'data-testid="queue-empty"' in page
    assert status(StallClaim, claim_id) == "rejected"

    again = decide(console, "claims", claim_id, csrf, decision="approve")
    assert again.status_code == 409
    assert "已由他人处理：已驳回" in again.get_data(as_text=True)
    assert status(StallClaim, claim_id) == "rejected"  # the stall's next claim is not touched


def test_fetch_answers_in_json(console, desk):
    _, pledge_id = desk.pledge("G-01", "li", "李记蔬菜店")
    console.login("reg-wz", role="regulator", scope=WUZHOU)
    csrf = console.csrf("/console/queues/pledges")
    headers = {"X-CSRF-Token": csrf, "Accept": "application/json"}
    url = f"/console/queues/pledges/{pledge_id}/decision"
    invalid = console.client.post(url, data={"decision": "reject"}, headers=headers)
    assert invalid.status_code == 422 and invalid.get_json()["outcome"] == "invalid"
    assert invalid.get_json()["fields"]["reason"]
    done = console.client.post(url, data={"decision": "approve"}, headers=headers)
    assert done.status_code == 200 and done.get_json() == {
        "id": pledge_id, "outcome": "done", "message": "已批准", "status_label": "已批准", "fields": {}}
    taken = console.client.post(url, data={"decision": "approve"}, headers=headers)
    assert taken.status_code == 409 and taken.get_json()["message"] == "已由他人处理：已批准"


def test_another_regions_regulator_sees_none_of_it_and_direct_urls_answer_404(console, desk, auth):
    _, pledge_id = desk.pledge("H-01", "li", "李记蔬菜店")
    _, claim_id = desk.claim("H-02", "zhao", "赵家水果摊")
    credential_id = desk.credential("H-03", "wang", "王氏粮油")
    console.login("reg-cz", role="regulator", scope=CHANGZHOU)
    landing = console.client.get("/console/queues").get_data(as_text=True)
    assert "nav-count" not in landing and "has-pending" not in landing
    for key in ("claims", "credentials", "pledges", "memberships", "leave", "feedback", "reports"):
        html = console.client.get(f"/console/queues/{key}").get_data(as_text=True)
        assert "李记" not in html and "赵家" not in html and "王氏" not in html, key
    csrf = console.csrf("/console/queues")
    for key, item_id in (("pledges", pledge_id), ("claims", claim_id), ("credentials", credential_id)):
        response = decide(console, key, item_id, csrf, decision="approve")
        assert response.status_code == 404, key
    assert console.client.get(f"/console/queues/credentials/{credential_id}/photo").status_code == 404
    bulk = console.client.post("/console/queues/pledges/bulk", data={"csrf_token": csrf, "ids": [pledge_id]},
                               headers={"X-CSRF-Token": csrf})
    assert bulk.get_json()["results"][0]["outcome"] == "refused"
    from app.pledges.models import Pledge

    assert status(Pledge, pledge_id) == "pending"


def test_the_queues_own_regulator_sees_the_credential_photo(console, desk):
    credential_id = desk.credential("I-01", "li", "李记蔬菜店")
    console.login("reg-wz", role="regulator", scope=WUZHOU)
    html = console.client.get("/console/queues/credentials").get_data(as_text=True)
    assert f"/console/queues/credentials/{credential_id}/photo?thumb=1" in html
    photo = console.client.get(f"/console/queues/credentials/{credential_id}/photo")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg" and photo.data[:2] == b"\xff\xd8"
    assert photo.headers["Cache-Control"] == "no-store"


def test_csrf_is_refused_without_the_token(console, desk):
    _, pledge_id = desk.pledge("J-01", "li", "李记蔬菜店")
    console.login("reg-wz", role="regulator", scope=WUZHOU)
    url = f"/console/queues/pledges/{pledge_id}/decision"
    page = console.client.post(url, data={"decision": "approve"})
    assert page.status_code == 403 and "安全校验未通过" in page.get_data(as_text=True)
    forged = console.client.post(url, data={"decision": "approve"}, headers={"X-CSRF-Token": "0" * 64})
    assert forged.status_code == 403 and error_code(forged) == "CONSOLE_CSRF_FAILED"
    bulk = console.client.post("/console/queues/pledges/bulk", data={"ids": [pledge_id]})
    assert bulk.status_code == 403
    from app.pledges.models import Pledge

    assert status(Pledge, pledge_id) == "pending"


def test_bulk_over_plain_post_lists_each_outcome(console, desk):
    pledges = [desk.pledge(f"K-0{n}", f"owner-{n}", f"经营户{n}")[1] for n in (1, 2)]
    desk.review_pledge(pledges[0])
    console.login("reg-wz", role="regulator", scope=WUZHOU)
    csrf = console.csrf("/console/queues/pledges")
    response = console.client.post("/console/queues/pledges/bulk", data={"csrf_token": csrf, "ids": pledges})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"第 {pledges[0]} 号：已由他人处理：已批准" in html and f"第 {pledges[1]} 号：已批准" in html
    nothing = console.client.post("/console/queues/pledges/bulk", data={"csrf_token": csrf})
    assert nothing.status_code == 422 and "请先勾选" in nothing.get_data(as_text=True)


def test_memberships_leave_and_feedback(app, console, desk, auth, client, db):
    from sqlalchemy import select

    from app.activities.models import LeaveRequest
    from app.markets.models import Feedback
    from app.orgs.models import Membership
    from tests.orgs.factories import add_member, create_activity, create_org

    branch = create_org(name="东中市场党支部", region_code="450403")
    elsewhere = create_org(name="长洲区党支部", region_code="450405")
    member = add_member("party-li", branch, status="pending")
    add_member("party-far", elsewhere, status="pending")
    activity = create_activity(branch, starts="2030-03-01 09:00")
    leave = LeaveRequest(activity_id=activity.id, user_id=member.id, reason="出差在外地", status="pending")
    db.session.add(leave)
    db.session.commit()
    stall = make_stall(desk.market, "L-01")
    consumer = auth.login("consumer-1")
    posted = client.post(f"/api/v1/public/stalls/{stall.token}/feedback", headers=consumer.headers,
                         json={"category": "缺斤短两", "text": "买一斤少了二两"})
    assert posted.status_code == 201, posted.get_json()
    feedback_id = posted.get_json()["id"]

    console.login("secretary", role="branch_secretary", scope=f"org:{branch.id}")
    landing = console.client.get("/console/queues").get_data(as_text=True)
    assert 'data-queue="memberships"' in landing and 'data-queue="pledges"' not in landing  # not a market role
    html = console.client.get("/console/queues/memberships").get_data(as_text=True)
    assert html.count('class="q-item"') == 1  # 长洲区's claim is not this branch's
    csrf = console.csrf("/console/queues/memberships")
    membership_id = db.session.scalar(select(Membership.id).where(Membership.user_id == member.id))
    assert decide(console, "memberships", membership_id, csrf, decision="approve").status_code == 303
    assert status(Membership, membership_id) == "verified"
    assert decide(console, "leave", leave.id, csrf, decision="reject", reason="").status_code == 422
    assert decide(console, "leave", leave.id, csrf, decision="reject", reason="本次为换届选举，请务必参加").status_code == 303
    assert status(LeaveRequest, leave.id) == "rejected"
    assert console.client.get("/console/queues/feedback").status_code == 403

    regulator = ConsoleActions(app.test_client(), auth)  # another browser
    regulator.login("reg-wz", role="regulator", scope=WUZHOU)
    csrf = regulator.csrf("/console/queues/feedback")
    assert "买一斤少了二两" in regulator.client.get("/console/queues/feedback").get_data(as_text=True)
    assert decide(regulator, "feedback", feedback_id, csrf, decision="approve").status_code == 303
    assert status(Feedback, feedback_id) == "upheld"


def rider_reports(client, auth, shop, db):
    """The rider-report tests' desk: categories, a rider station of 万秀区, filing over the API."""
    from app.reports.services import install_default_categories
    from tests.orgs.factories import create_org
    from tests.reports.conftest import Desk as ReportDesk

    install_default_categories()
    db.session.commit()
    station = create_org(name="万秀区快递外卖骑手党支部", sector="rider", station="万秀区美团站", platform="美团")
    return ReportDesk(client, auth, shop, station)


def test_rider_reports_in_the_browser(live_server, page, scan_login, client, auth, shop, db, shot):
    from app.reports.models import Report

    reports = rider_reports(client, auth, shop, db)
    report_id = reports.file(reports.rider()).get_json()["id"]
    scan_login(page, "reg-wz", role="regulator", scope=WUZHOU, path="/console/queues/reports")
    row = page.locator(f"#report-{report_id}")
    assert row.locator(".q-photo img").evaluate("img => img.complete && img.naturalWidth > 0")
    row.get_by_role("button", name="受理").click()
    row = page.locator(f"#report-{report_id}[data-status=accepted]")
    row.locator(".q-status.is-ok:has-text('已受理')").wait_for()  # the row as it reads now, in place
    assert status(Report, report_id) == "accepted"
    row.get_by_role("button", name="不属实").click()
    row.locator(".field-error:has-text('请填写核实说明')").wait_for()
    keep(shot(page, "reports-1280x800"))
    row.locator(f"#note-decide-{report_id}").fill("现场核实，后厨整洁")
    row.get_by_role("button", name="不属实").click()
    row.locator(".q-status:has-text('不属实')").wait_for()
    assert status(Report, report_id) == "unfounded"


def test_rider_reports_accept_decide_rectify_and_transfer(app, console, client, auth, shop, db):
    from app.reports.models import Report

    reports = rider_reports(client, auth, shop, db)
    rider = reports.rider()
    first = reports.file(rider).get_json()["id"]
    second = reports.file(rider, shop_name="阿强粉店").get_json()["id"]

    console.login("reg-wz", role="regulator", scope=WUZHOU)
    html = console.client.get("/console/queues/reports").get_data(as_text=True)
    assert "鸿记烧腊" in html and "阿强粉店" in html and "王*军" in html
    photo = re.search(rf'/console/queues/reports/{first}/photos/[^"?]+\.jpg', html).group(0)
    assert console.client.get(photo).mimetype == "image/jpeg"
    csrf = console.csrf("/console/queues/reports")

    def step(report_id, action, **form):
        return console.client.post(f"/console/queues/reports/{report_id}/{action}", data={"csrf_token": csrf, **form})

    assert step(first, "accept").headers["Location"].endswith("?result=accept")
    refused = step(first, "decide", decision="unfounded", note=" ")
    assert refused.status_code == 422
    assert re.search(rf'id="note-decide-{first}-error"[^>]*>[^<]*请填写核实说明', refused.get_data(as_text=True))
    assert status(Report, first) == "accepted"
    assert step(first, "decide", decision="upheld", note="现场核实属实").status_code == 303
    assert step(first, "rectified", note="已清理后厨").status_code == 303
    assert status(Report, first) == "rectified"

    reports.act(reports.regulator("reg-county", "450403"), second, "accept")  # meanwhile, on the phone
    taken = step(second, "accept")
    assert taken.status_code == 409 and "已由他人处理：已受理" in taken.get_data(as_text=True)
    bad = console.client.post(f"/console/queues/reports/{second}/transfer", data={"region": "999999"},
                              headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 422 and bad.get_json()["fields"]["region"]
    moved = console.client.post(f"/console/queues/reports/{second}/transfer", data={"region": "450405", "note": "属长洲区"},
                                headers={"X-CSRF-Token": csrf})
    assert moved.status_code == 200 and moved.get_json()["outcome"] == "done"
    assert "受理" in moved.get_json()["row_html"]  # still 梧州's: back to waiting for acceptance

    outsider = ConsoleActions(app.test_client(), auth)
    outsider.login("reg-liling", role="regulator", scope="region:430281")
    other_csrf = outsider.csrf("/console/queues/reports")
    assert "阿强粉店" not in outsider.client.get("/console/queues/reports").get_data(as_text=True)
    assert outsider.client.post(f"/console/queues/reports/{second}/accept",
                                data={"csrf_token": other_csrf}).status_code == 404
    assert outsider.client.get(photo).status_code == 404
