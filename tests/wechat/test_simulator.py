"""Tests for the WeChat server API simulator, driven through its Flask test client."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from werkzeug.serving import make_server

from app.wechat.simulator import SimulatorState, create_simulator_app

APPID = "wxsimulator000001"
SECRET = "simulator-secret"


@pytest.fixture
def app():
    return create_simulator_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def state(app) -> SimulatorState:
    return app.sim_state


def fetch_token(client) -> str:
    res = client.get(
        "/cgi-bin/token",
        query_string={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
    )
    return res.get_json()["access_token"]


def stable_token(client, force_refresh: bool = False, **overrides: Any) -> dict[str, Any]:
    body = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET, "force_refresh": force_refresh}
    return client.post("/cgi-bin/stable_token", json={**body, **overrides}).get_json()


def post_api(client, path: str, token: str | None, body: Any):
    query = {"access_token": token} if token else {}
    # wechatpy sends JSON bytes without a JSON Content-Type; do the same.
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return client.post(path, query_string=query, data=data)


def login(client, code: str):
    return client.get(
        "/sns/jscode2session",
        query_string={"appid": APPID, "secret": SECRET, "js_code": code, "grant_type": "authorization_code"},
    )


SUBSCRIBE_BODY = {
    "touser": "o-user-1",
    "template_id": "tpl-1",
    "page": "pages/index/index",
    "data": {"thing1": {"value": "活动提醒"}},
    "miniprogram_state": "developer",
    "lang": "zh_CN",
}


# --- rule 1: tokens ---------------------------------------------------------


def test_token_issued_with_ttl(client, state):
    res = client.get(
        "/cgi-bin/token",
        query_string={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
    )
    assert res.status_code == 200
    data = res.get_json()
    assert data["expires_in"] == 7200
    assert data["access_token"]
    assert state.token_fetches == 1


@pytest.mark.parametrize(
    ("appid", "secret", "errcode"),
    [(APPID, "wrong", 40125), ("wx-other", SECRET, 40013)],
)
def test_token_rejects_wrong_credentials(client, state, appid, secret, errcode):
    res = client.get(
        "/cgi-bin/token",
        query_string={"grant_type": "client_credential", "appid": appid, "secret": secret},
    )
    assert res.status_code == 200
    assert res.get_json()["errcode"] == errcode
    assert state.token_fetches == 0


def test_stable_token_rejects_wrong_secret(client):
    data = stable_token(client, secret="wrong")
    assert data == {"errcode": 40125, "errmsg": "invalid appsecret"}


def test_fresh_fetch_voids_older_tokens(client, state):
    old = fetch_token(client)
    new = fetch_token(client)
    assert old != new
    assert state.token_fetches == 2
    stale = post_api(client, "/wxa/msg_sec_check", old, {"content": "你好"}).get_json()
    assert stale["errcode"] == 40001
    assert stale["errmsg"] == "invalid credential, access_token is invalid or not latest"
    assert post_api(client, "/wxa/msg_sec_check", new, {"content": "你好"}).get_json()["errcode"] == 0


def test_stable_token_reuses_valid_token_unless_forced(client, state):
    first = stable_token(client)
    again = stable_token(client)
    assert again["access_token"] == first["access_token"]
    assert 0 < again["expires_in"] <= 7200
    assert state.token_fetches == 1

    forced = stable_token(client, force_refresh=True)
    assert forced["access_token"] != first["access_token"]
    assert state.token_fetches == 2
    assert post_api(client, "/wxa/msg_sec_check", first["access_token"], {"content": "x"}).get_json()["errcode"] == 40001


def test_cgi_bin_token_always_issues_new(client, state):
    stable = stable_token(client)["access_token"]
    assert fetch_token(client) != stable
    assert state.token_fetches == 2


def test_token_ttl_can_change_at_runtime(client, state):
    state.token_ttl = 60
    assert stable_token(client)["expires_in"] == 60


def test_stable_token_after_expiry_issues_new(client, state):
    first = stable_token(client)["access_token"]
    state.expire_tokens()
    assert stable_token(client)["access_token"] != first
    assert state.token_fetches == 2


# --- rule 2: access token checks ----------------------------------------------


def test_missing_access_token(client):
    data = post_api(client, "/wxa/msg_sec_check", None, {"content": "x"}).get_json()
    assert data == {"errcode": 41001, "errmsg": "access_token missing"}


def test_unknown_access_token(client):
    assert post_api(client, "/wxa/msg_sec_check", "bogus", {"content": "x"}).get_json()["errcode"] == 40001


def test_expired_access_token(client, state):
    token = fetch_token(client)
    state.expire_tokens()
    data = post_api(client, "/wxa/msg_sec_check", token, {"content": "x"}).get_json()
    assert data == {"errcode": 42001, "errmsg": "access_token expired"}


def test_token_expires_by_ttl(client, state):
    state.token_ttl = 0
    token = fetch_token(client)
    assert post_api(client, "/wxa/msg_sec_check", token, {"content": "x"}).get_json()["errcode"] == 42001


# --- rule 3: jscode2session -------------------------------------------------------


def test_jscode2session_happy_path(client):
    res = login(client, "sim-o_user-1")
    data = res.get_json()
    assert res.status_code == 200
    assert data["openid"] == "o_user-1"
    assert data["unionid"] == "union-o_user-1"
    assert len(data["session_key"]) == 24
    assert "errcode" not in data


@pytest.mark.parametrize("code", ["real-wechat-code", "sim-", "sim-bad!char", "sim-" + "a" * 65])
def test_jscode2session_invalid_code(client, code):
    assert login(client, code).get_json() == {"errcode": 40029, "errmsg": "invalid code"}


def test_jscode2session_codes_reusable_by_default(client):
    assert "openid" in login(client, "sim-alice").get_json()
    assert "openid" in login(client, "sim-alice").get_json()


def test_jscode2session_code_single_use(client, state):
    state.single_use_codes = True
    assert "openid" in login(client, "sim-alice").get_json()
    assert login(client, "sim-alice").get_json() == {"errcode": 40163, "errmsg": "code been used"}


def test_jscode2session_reset_allows_code_again(client, state):
    state.single_use_codes = True
    login(client, "sim-alice")
    state.reset()
    assert "openid" in login(client, "sim-alice").get_json()


def test_jscode2session_wrong_secret(client):
    res = client.get(
        "/sns/jscode2session",
        query_string={"appid": APPID, "secret": "nope", "js_code": "sim-a", "grant_type": "authorization_code"},
    )
    assert res.get_json()["errcode"] == 40125


# --- rule 4: phone number ---------------------------------------------------------


def test_phone_number(client):
    token = fetch_token(client)
    data = post_api(client, "/wxa/business/getuserphonenumber", token, {"code": "sim-phone-13800138000"}).get_json()
    assert data["errcode"] == 0
    info = data["phone_info"]
    assert info["phoneNumber"] == "13800138000"
    assert info["purePhoneNumber"] == "13800138000"
    assert info["countryCode"] == "86"
    assert info["watermark"]["appid"] == APPID
    assert isinstance(info["watermark"]["timestamp"], int)


def test_phone_number_invalid_code(client):
    token = fetch_token(client)
    data = post_api(client, "/wxa/business/getuserphonenumber", token, {"code": "sim-phone-abc"}).get_json()
    assert data["errcode"] == 40029


# --- rule 5: msg_sec_check --------------------------------------------------------


def test_msg_sec_check_v1(client, state):
    token = fetch_token(client)
    assert post_api(client, "/wxa/msg_sec_check", token, {"content": "周末去爬山"}).get_json() == {
        "errcode": 0,
        "errmsg": "ok",
    }
    assert post_api(client, "/wxa/msg_sec_check", token, {"content": "一起赌博吧"}).get_json() == {
        "errcode": 87014,
        "errmsg": "risky content",
    }


def test_msg_sec_check_allows_counterfeit_pledge(client):
    token = fetch_token(client)
    assert post_api(client, "/wxa/msg_sec_check", token, {"content": "不售假冒伪劣商品"}).get_json()["errcode"] == 0


def test_msg_sec_check_blocklist_extendable(client, state):
    token = fetch_token(client)
    state.blocklist.append("坏词")
    assert post_api(client, "/wxa/msg_sec_check", token, {"content": "这是坏词"}).get_json()["errcode"] == 87014


def v2_check(client, token: str, content: str, **overrides: Any) -> dict[str, Any]:
    body = {"content": content, "version": 2, "scene": 2, "openid": "o-user-1", **overrides}
    return post_api(client, "/wxa/msg_sec_check", token, body).get_json()


def test_msg_sec_check_v2_risky(client):
    token = fetch_token(client)
    data = v2_check(client, token, "出售枪支")
    assert data["errcode"] == 0
    assert data["result"] == {"suggest": "risky", "label": 20006}
    assert data["detail"][0]["strategy"] == "keyword"
    assert data["detail"][0]["keyword"] == "枪支"
    assert data["detail"][0]["suggest"] == "risky"
    assert data["trace_id"]


def test_msg_sec_check_v2_pass(client):
    token = fetch_token(client)
    data = v2_check(client, token, "周末市集")
    assert data["errcode"] == 0
    assert data["result"] == {"suggest": "pass", "label": 100}
    assert data["detail"][0]["suggest"] == "pass"


def test_msg_sec_check_v2_requires_openid(client):
    token = fetch_token(client)
    data = v2_check(client, token, "周末市集", openid="")
    assert data == {"errcode": 40003, "errmsg": "invalid openid"}


# --- rule 6: subscribe messages ---------------------------------------------------


def test_subscribe_send_ok(client, state):
    token = fetch_token(client)
    data = post_api(client, "/cgi-bin/message/subscribe/send", token, SUBSCRIBE_BODY).get_json()
    assert data["errcode"] == 0
    assert isinstance(data["msgid"], int)
    assert len(state.messages) == 1
    assert state.messages[0]["body"]["touser"] == "o-user-1"
    assert state.messages[0]["msgid"] == data["msgid"]
    listed = client.get("/_sim/messages").get_json()
    assert listed[0]["body"]["data"] == SUBSCRIBE_BODY["data"]


def test_subscribe_send_refused(client, state):
    token = fetch_token(client)
    state.refusing.add("o-user-1")
    data = post_api(client, "/cgi-bin/message/subscribe/send", token, SUBSCRIBE_BODY).get_json()
    assert data == {"errcode": 43101, "errmsg": "user refuse to accept the msg"}
    assert state.messages == []


def test_subscribe_refusing_via_control_api(client, state):
    token = fetch_token(client)
    assert client.post("/_sim/refusing", json={"openids": ["o-user-1"]}).status_code == 200
    assert post_api(client, "/cgi-bin/message/subscribe/send", token, SUBSCRIBE_BODY).get_json()["errcode"] == 43101


@pytest.mark.parametrize("missing", ["touser", "template_id"])
def test_subscribe_send_missing_argument(client, state, missing):
    token = fetch_token(client)
    body = {k: v for k, v in SUBSCRIBE_BODY.items() if k != missing}
    data = post_api(client, "/cgi-bin/message/subscribe/send", token, body).get_json()
    assert data == {"errcode": 47003, "errmsg": "argument invalid"}
    assert state.messages == []


def test_subscribe_send_rejects_flat_data(client):
    token = fetch_token(client)
    body = {**SUBSCRIBE_BODY, "data": {"thing1": "活动提醒"}}
    assert post_api(client, "/cgi-bin/message/subscribe/send", token, body).get_json()["errcode"] == 47003


# --- rule 7: wxacode ----------------------------------------------------------------


def test_wxacode_returns_png_encoding_scene(client, state):
    token = fetch_token(client)
    body = {"scene": "m=42&a=7", "page": "pages/market/index", "width": 430, "check_path": False, "env_version": "develop"}
    res = post_api(client, "/wxa/getwxacodeunlimit", token, body)
    assert res.status_code == 200
    assert res.mimetype == "image/png"
    img = Image.open(io.BytesIO(res.data))
    assert img.format == "PNG"
    assert 280 <= img.width <= 1280
    # Read back by an independent decoder, as a phone's camera would.
    assert [code.text for code in zxingcpp.read_barcodes(img)] == ["wxacode:m=42&a=7"]
    assert state.wxacode_calls == 1


@pytest.mark.parametrize("scene", ["a" * 33, "", "中文", "has space"])
def test_wxacode_invalid_scene(client, scene):
    token = fetch_token(client)
    res = post_api(client, "/wxa/getwxacodeunlimit", token, {"scene": scene, "page": "pages/index/index"})
    assert res.mimetype == "application/json"
    assert res.get_json() == {
        "errcode": 40169,
        "errmsg": "invalid length for scene, or the data is not json string",
    }


def test_wxacode_accepts_full_charset(client):
    token = fetch_token(client)
    res = post_api(client, "/wxa/getwxacodeunlimit", token, {"scene": "!#$&'()*+,/:;=?@-._~Az09"})
    assert res.mimetype == "image/png"


# --- rule 8: faults and control API ---------------------------------------------


def test_fault_errcode_consumed_after_times(client, state):
    res = client.post("/_sim/faults", json={"path": "sns/jscode2session", "errcode": -1, "errmsg": "system error", "times": 2})
    assert res.status_code == 200
    assert login(client, "sim-a").get_json() == {"errcode": -1, "errmsg": "system error"}
    assert login(client, "sim-b").get_json() == {"errcode": -1, "errmsg": "system error"}
    assert login(client, "sim-c").get_json()["openid"] == "c"
    assert state.faults == []


def test_fault_default_errmsg(client, state):
    token = fetch_token(client)
    state.add_fault("wxa/msg_sec_check", errcode=45011)
    data = post_api(client, "/wxa/msg_sec_check", token, {"content": "x"}).get_json()
    assert data == {"errcode": 45011, "errmsg": "api minute-quota reach limit"}
    assert post_api(client, "/wxa/msg_sec_check", token, {"content": "x"}).get_json()["errcode"] == 0


def test_fault_http_status(client, state):
    state.add_fault("/cgi-bin/token", http_status=502)
    res = client.get("/cgi-bin/token", query_string={"grant_type": "client_credential", "appid": APPID, "secret": SECRET})
    assert res.status_code == 502
    assert res.mimetype == "text/plain"
    assert state.token_fetches == 0
    assert fetch_token(client)


def test_fault_delay_then_normal_answer(client, state):
    client.post("/_sim/faults", json={"path": "sns/jscode2session", "delay": 0.3, "times": 1})
    started = time.monotonic()
    assert login(client, "sim-slow").get_json()["openid"] == "slow"
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    login(client, "sim-fast")
    assert time.monotonic() - started < 0.3


def test_fault_payload_validation(client):
    assert client.post("/_sim/faults", json={"errcode": -1}).status_code == 400
    assert client.post("/_sim/faults", json={"path": "sns/jscode2session"}).status_code == 400
    assert client.post("/_sim/faults", json={"path": "x", "errcode": -1, "times": 0}).status_code == 400


def test_reset_clears_everything(client, state):
    token = fetch_token(client)
    post_api(client, "/cgi-bin/message/subscribe/send", token, SUBSCRIBE_BODY)
    state.add_fault("sns/jscode2session", errcode=-1)
    state.refusing.add("x")
    state.blocklist.append("extra")
    state.token_ttl = 5
    assert client.post("/_sim/reset").status_code == 200
    assert state.received() == []
    assert state.messages == [] and state.faults == [] and state.refusing == set()
    assert state.blocklist == ["违禁词", "赌博", "枪支", "毒品"]
    assert state.token_fetches == 0 and state.token_ttl == 7200
    assert post_api(client, "/wxa/msg_sec_check", token, {"content": "x"}).get_json()["errcode"] == 40001


def test_received_log_masks_secrets(client, state):
    token = fetch_token(client)
    stable_token(client)
    session = login(client, "sim-alice").get_json()
    post_api(client, "/wxa/msg_sec_check", token, {"content": "你好"})

    log = state.received()
    assert [e["path"] for e in log] == [
        "cgi-bin/token",
        "cgi-bin/stable_token",
        "sns/jscode2session",
        "wxa/msg_sec_check",
    ]
    dumped = json.dumps(log, ensure_ascii=False) + json.dumps(client.get("/_sim/received").get_json())
    for secret_value in (token, session["session_key"], SECRET, "sim-alice"):
        assert secret_value not in dumped
    assert log[0]["params"]["secret"] == "***"
    assert log[1]["body"]["secret"] == "***"
    assert log[2]["params"]["js_code"] == "***"
    assert log[3]["params"]["access_token"] == "***"
    assert log[3]["body"] == {"content": "你好"}
    assert log[0]["at"]


def test_received_filter_by_path(client):
    fetch_token(client)
    login(client, "sim-a")
    only = client.get("/_sim/received", query_string={"path": "sns/jscode2session"}).get_json()
    assert [e["path"] for e in only] == ["sns/jscode2session"]


def test_status_page_escapes_content(client):
    token = fetch_token(client)
    post_api(client, "/wxa/msg_sec_check", token, {"content": "<script>alert(1)</script>"})
    res = client.get("/")
    html = res.get_data(as_text=True)
    assert res.status_code == 200
    assert "微信接口模拟器" in html
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html
    assert token not in html


# --- rule 9: unknown paths ----------------------------------------------------------


def test_unknown_path(client):
    res = client.get("/cgi-bin/nonexistent")
    assert res.status_code == 404
    assert res.get_json() == {"errcode": -1, "errmsg": "not found"}


def test_wrong_method_answers_like_wechat(client):
    token = fetch_token(client)
    res = client.get("/wxa/msg_sec_check", query_string={"access_token": token})
    assert res.status_code == 200
    assert res.get_json()["errcode"] == 43002


# --- separate state, shared by two apps ----------------------------------------------


def test_custom_credentials_and_shared_state():
    shared = SimulatorState()
    app = create_simulator_app(shared, appid="wxother", secret="s2", token_ttl=60)
    assert app.sim_state is shared
    client = app.test_client()
    res = client.get("/cgi-bin/token", query_string={"grant_type": "client_credential", "appid": "wxother", "secret": "s2"})
    assert res.get_json()["expires_in"] == 60
    assert shared.token_fetches == 1
    shared.reset()
    assert shared.token_ttl == 60


# --- end to end through wechatpy, as the backend uses it ------------------------------


@pytest.fixture
def live_base_url(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        thread.join()


def test_wechatpy_client_round_trip(live_base_url, state):
    from wechatpy import WeChatClient

    class SimulatorClient(WeChatClient):
        API_BASE_URL = live_base_url

        # wechatpy hard-codes the token URL, so point it at the simulator too.
        def fetch_access_token(self):
            return self._fetch_access_token(
                url=live_base_url + "cgi-bin/token",
                params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            )

    client = SimulatorClient(APPID, SECRET)
    # wechatpy's wxa API carries its own absolute base URL as well.
    client.wxa.API_BASE_URL = live_base_url
    assert client.wxa.code_to_session("sim-bob")["openid"] == "bob"
    assert client.post("wxa/msg_sec_check", data={"content": "你好"})["errcode"] == 0
    png = client.wxa.get_wxa_code_unlimited("m=1")
    assert Image.open(io.BytesIO(png.content)).format == "PNG"

    # An expired token is refreshed transparently by wechatpy's auto retry.
    state.expire_tokens()
    assert client.post("wxa/msg_sec_check", data={"content": "你好"})["errcode"] == 0
    assert state.token_fetches == 2
