"""A small simulator of WeChat's server API (api.weixin.qq.com).

It is a separate Flask app, used in development and tests. The backend talks
to it through wechatpy exactly as it talks to WeChat in production; only the
base URL differs. Paths, JSON shapes and error codes mimic WeChat's, including
answering HTTP 200 for API errors.

Besides the WeChat paths there is a small control API under ``/_sim/`` (fault
injection, inspection, reset) and a status page at ``/`` for demos.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import segno
from flask import Flask, Response, jsonify, render_template_string, request

DEFAULT_APPID = "wxsimulator000001"
DEFAULT_SECRET = "simulator-secret"
DEFAULT_TOKEN_TTL = 7200
DEFAULT_BLOCKLIST: tuple[str, ...] = ("违禁词", "赌博", "枪支", "毒品")

# WeChat login codes are single-use and live for five minutes.
CODE_REUSE_WINDOW_SECONDS = 300
# Bounds memory in a long-running dev server; tests never come close.
RECEIVED_LIMIT = 5000
# Secrets must never reach the log, the control API or the status page.
MASKED_KEYS = frozenset({"access_token", "secret", "js_code", "session_key"})
MASK = "***"

SIM_LOGIN_CODE = re.compile(r"sim-([A-Za-z0-9_-]{1,64})")
SIM_PHONE_CODE = re.compile(r"sim-phone-(\d{1,20})")
# Characters WeChat accepts in a getwxacodeunlimit scene.
WXACODE_SCENE = re.compile(r"[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}")

# Messages WeChat sends with the error codes tests usually inject.
FAULT_MESSAGES: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    42001: "access_token expired",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit",
    40226: "high risk user",
}

LABEL_NORMAL = 100
LABEL_ILLEGAL = 20006


@dataclass
class Fault:
    """One injected misbehaviour for the next ``remaining`` requests to ``path``."""

    path: str
    errcode: int | None = None
    errmsg: str | None = None
    delay: float | None = None
    http_status: int | None = None
    remaining: int = 1


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def _normalize_path(path: str) -> str:
    # Callers may write "/sns/jscode2session" or "sns/jscode2session".
    return path.strip("/")


def _mask(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (MASK if k in MASKED_KEYS else v) for k, v in values.items()}


class SimulatorState:
    """All mutable simulator state; every app instance owns exactly one.

    Tests may adjust ``token_ttl``, ``refusing``, ``blocklist`` and
    ``phone_numbers`` directly; everything else goes through methods that
    take the lock, because the dev server answers requests on many threads.
    """

    def __init__(
        self,
        appid: str = DEFAULT_APPID,
        secret: str = DEFAULT_SECRET,
        token_ttl: int = DEFAULT_TOKEN_TTL,
    ) -> None:
        self._lock = threading.Lock()
        self.appid = appid
        self.secret = secret
        self.default_token_ttl = token_ttl
        self.token_ttl = token_ttl
        self.tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self.token_fetches = 0
        self.requests: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.refusing: set[str] = set()
        self.blocklist: list[str] = list(DEFAULT_BLOCKLIST)
        # Extra phone codes -> numbers, for codes not of the sim-phone-<digits> form.
        self.phone_numbers: dict[str, str] = {}
        self.used_codes: dict[str, float] = {}  # login code -> first use
        # Real codes are single-use, but sim-<openid> always names the same user, so the rule
        # is opt-in (a test of the 40163 path turns it on).
        self.single_use_codes = False
        self.messages: list[dict[str, Any]] = []
        self.wxacode_calls = 0
        self._last_msgid = 0

    # --- configuration ---------------------------------------------------

    def configure(self, appid: str, secret: str, token_ttl: int) -> None:
        """Set the app credentials; ``reset()`` keeps them and restores ``token_ttl``."""
        with self._lock:
            self.appid = appid
            self.secret = secret
            self.default_token_ttl = token_ttl
            self.token_ttl = token_ttl

    def reset(self) -> None:
        """Forget everything that happened; containers are cleared in place
        so references tests already hold stay valid."""
        with self._lock:
            self.token_ttl = self.default_token_ttl
            self.tokens.clear()
            self.token_fetches = 0
            self.requests.clear()
            self.faults.clear()
            self.refusing.clear()
            self.blocklist[:] = DEFAULT_BLOCKLIST
            self.phone_numbers.clear()
            self.used_codes.clear()
            self.single_use_codes = False
            self.messages.clear()
            self.wxacode_calls = 0
            self._last_msgid = 0

    # --- access tokens ---------------------------------------------------

    def issue_token(self) -> tuple[str, int]:
        """Issue a fresh token; like a storm of refreshes in production,
        every fetch voids all older tokens."""
        with self._lock:
            return self._issue_token_locked()

    def _issue_token_locked(self) -> tuple[str, int]:
        token = "sim_" + secrets.token_urlsafe(48)
        ttl = self.token_ttl
        self.tokens.clear()
        self.tokens[token] = time.time() + ttl
        self.token_fetches += 1
        return token, ttl

    def stable_token(self, force_refresh: bool) -> tuple[str, int]:
        """Without force_refresh WeChat hands back the still-valid token
        with its remaining lifetime, and no new fetch happens."""
        with self._lock:
            if not force_refresh:
                now = time.time()
                for token, expires_at in self.tokens.items():
                    remaining = int(expires_at - now)
                    if remaining > 0:
                        return token, remaining
            return self._issue_token_locked()

    def expire_tokens(self) -> None:
        with self._lock:
            past = time.time() - 1
            for token in self.tokens:
                self.tokens[token] = past

    def check_token(self, token: str | None) -> tuple[int, str] | None:
        """Return WeChat's (errcode, errmsg) for a bad token, None if valid."""
        if not token:
            return 41001, "access_token missing"
        with self._lock:
            expires_at = self.tokens.get(token)
        if expires_at is None:
            return 40001, FAULT_MESSAGES[40001]
        if expires_at <= time.time():
            return 42001, FAULT_MESSAGES[42001]
        return None

    # --- request log -----------------------------------------------------

    def record(self, path: str, params: dict[str, Any], body: Any) -> None:
        entry = {
            "at": _now_iso(),
            "path": _normalize_path(path),
            "params": _mask(params),
            "body": _mask(body) if isinstance(body, dict) else body,
        }
        with self._lock:
            self.requests.append(entry)
            del self.requests[:-RECEIVED_LIMIT]

    def received(self, path: str | None = None) -> list[dict[str, Any]]:
        """Logged requests, oldest first, optionally only those to ``path``."""
        wanted = _normalize_path(path) if path else None
        with self._lock:
            entries = [e for e in self.requests if wanted is None or e["path"] == wanted]
            return copy.deepcopy(entries)

    # --- fault injection -------------------------------------------------

    def add_fault(
        self,
        path: str,
        errcode: int | None = None,
        errmsg: str | None = None,
        delay: float | None = None,
        http_status: int | None = None,
        times: int = 1,
    ) -> Fault:
        if errcode is None and delay is None and http_status is None:
            raise ValueError("a fault needs errcode, delay or http_status")
        if times < 1:
            raise ValueError("times must be at least 1")
        if delay is not None and not 0 <= delay <= 600:
            raise ValueError("delay must be between 0 and 600 seconds")
        if http_status is not None and not 400 <= http_status <= 599:
            raise ValueError("http_status must be an HTTP error status (400-599)")
        if errcode is not None and errmsg is None:
            errmsg = FAULT_MESSAGES.get(errcode, "simulated error")
        fault = Fault(_normalize_path(path), errcode, errmsg, delay, http_status, times)
        with self._lock:
            self.faults.append(fault)
        return copy.copy(fault)

    def take_fault(self, path: str) -> Fault | None:
        """Consume one use of the oldest pending fault for ``path``."""
        path = _normalize_path(path)
        with self._lock:
            for fault in self.faults:
                if fault.path == path:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                    return copy.copy(fault)
        return None

    # --- business data ---------------------------------------------------

    def consume_login_code(self, code: str) -> bool:
        """True on first use; False if already used within the reuse window."""
        now = time.time()
        with self._lock:
            if not self.single_use_codes:
                return True
            cutoff = now - CODE_REUSE_WINDOW_SECONDS
            for old in [c for c, at in self.used_codes.items() if at <= cutoff]:
                del self.used_codes[old]
            if code in self.used_codes:
                return False
            self.used_codes[code] = now
            return True

    def phone_for_code(self, code: str) -> str | None:
        with self._lock:
            number = self.phone_numbers.get(code)
        if number is not None:
            return number
        match = SIM_PHONE_CODE.fullmatch(code)
        return match.group(1) if match else None

    def blocked_word(self, content: str) -> str | None:
        with self._lock:
            words = list(self.blocklist)
        return next((w for w in words if w and w in content), None)

    def is_refusing(self, openid: str) -> bool:
        with self._lock:
            return openid in self.refusing

    def add_refusing(self, openids: list[str]) -> None:
        with self._lock:
            self.refusing.update(openids)

    def deliver_message(self, body: dict[str, Any]) -> int:
        with self._lock:
            self._last_msgid += 1
            msgid = 1_000_000_000 + self._last_msgid
            self.messages.append({"at": _now_iso(), "msgid": msgid, "body": copy.deepcopy(body)})
            return msgid

    def delivered(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self.messages)

    def count_wxacode_call(self) -> None:
        with self._lock:
            self.wxacode_calls += 1

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "appid": self.appid,
                "token_fetches": self.token_fetches,
                "messages": len(self.messages),
                "wxacode_calls": self.wxacode_calls,
                "pending_faults": [asdict(f) for f in self.faults],
            }


# --- WeChat API handlers ---------------------------------------------------

Handler = Callable[[SimulatorState, dict[str, Any], Any], Response]


def _ok(**fields: Any) -> Response:
    return jsonify({"errcode": 0, "errmsg": "ok", **fields})


def _error(errcode: int, errmsg: str) -> Response:
    # WeChat reports API errors with HTTP 200.
    return jsonify({"errcode": errcode, "errmsg": errmsg})


def _data_format_error() -> Response:
    return _error(47001, "data format error")


def _check_credentials(state: SimulatorState, appid: Any, secret: Any) -> Response | None:
    if not appid:
        return _error(41002, "appid missing")
    if not secret:
        return _error(41004, "appsecret missing")
    if appid != state.appid:
        return _error(40013, "invalid appid")
    if secret != state.secret:
        return _error(40125, "invalid appsecret")
    return None


def _handle_token(state: SimulatorState, params: dict[str, Any], body: Any) -> Response:
    if params.get("grant_type") != "client_credential":
        return _error(40002, "invalid grant_type")
    failure = _check_credentials(state, params.get("appid"), params.get("secret"))
    if failure:
        return failure
    token, ttl = state.issue_token()
    return jsonify({"access_token": token, "expires_in": ttl})


def _handle_stable_token(state: SimulatorState, params: dict[str, Any], body: Any) -> Response:
    if not isinstance(body, dict):
        return _data_format_error()
    if body.get("grant_type") != "client_credential":
        return _error(40002, "invalid grant_type")
    failure = _check_credentials(state, body.get("appid"), body.get("secret"))
    if failure:
        return failure
    token, ttl = state.stable_token(bool(body.get("force_refresh", False)))
    return jsonify({"access_token": token, "expires_in": ttl})


def _handle_jscode2session(state: SimulatorState, params: dict[str, Any], body: Any) -> Response:
    failure = _check_credentials(state, params.get("appid"), params.get("secret"))
    if failure:
        return failure
    code = params.get("js_code")
    if not code:
        return _error(41008, "missing code")
    match = SIM_LOGIN_CODE.fullmatch(code)
    if not match:
        return _error(40029, "invalid code")
    if not state.consume_login_code(code):
        return _error(40163, "code been used")
    openid = match.group(1)
    session_key = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
    return jsonify({"openid": openid, "session_key": session_key, "unionid": f"union-{openid}"})


def _handle_phone_number(state: SimulatorState, params: dict[str, Any], body: Any) -> Response:
    if not isinstance(body, dict):
        return _data_format_error()
    code = body.get("code")
    number = state.phone_for_code(code) if isinstance(code, str) else None
    if number is None:
        return _error(40029, "invalid code")
    phone_info = {
        "phoneNumber": number,
        "purePhoneNumber": number,
        "countryCode": "86",
        "watermark": {"timestamp": int(time.time()), "appid": state.appid},
    }
    return _ok(phone_info=phone_info)


def _trace_id() -> str:
    # Same shape as WeChat's trace ids, e.g. "60ae120f-371d5872-7941a05b".
    return "-".join(secrets.token_hex(4) for _ in range(3))


def _handle_msg_sec_check(state: SimulatorState, params: dict[str, Any], body: Any) -> Response:
    if not isinstance(body, dict):
        return _data_format_error()
    content = body.get("content")
    if not isinstance(content, str):
        return _error(47003, "argument invalid")
    if str(body.get("version", 1)) != "2":
        return _msg_sec_check_v1(state, content)
    if not body.get("openid"):
        return _error(40003, "invalid openid")
    if body.get("scene") not in (1, 2, 3, 4):
        return _error(47003, "argument invalid")
    return _msg_sec_check_v2(state, content)


def _msg_sec_check_v1(state: SimulatorState, content: str) -> Response:
    if state.blocked_word(content):
        return _error(87014, "risky content")
    return _ok()


def _msg_sec_check_v2(state: SimulatorState, content: str) -> Response:
    word = state.blocked_word(content)
    suggest = "risky" if word else "pass"
    label = LABEL_ILLEGAL if word else LABEL_NORMAL
    detail: dict[str, Any] = {"strategy": "keyword", "errcode": 0, "suggest": suggest, "label": label}
    if word:
        detail["keyword"] = word
    return _ok(result={"suggest": suggest, "label": label}, detail=[detail], trace_id=_trace_id())


def _valid_subscribe_data(data: Any) -> bool:
    # WeChat wants {"thing1": {"value": "..."}}; a flat {"thing1": "..."} is rejected.
    return (
        isinstance(data, dict)
        and bool(data)
        and all(isinstance(v, dict) and "value" in v for v in data.values())
    )


def _handle_subscribe_send(state: SimulatorState, params: dict[str, Any], body: Any) -> Response:
    if not isinstance(body, dict):
        return _data_format_error()
    touser, template_id = body.get("touser"), body.get("template_id")
    if not touser or not template_id or not _valid_subscribe_data(body.get("data")):
        return _error(47003, "argument invalid")
    if state.is_refusing(touser):
        return _error(43101, "user refuse to accept the msg")
    return _ok(msgid=state.deliver_message(body))


def _render_wxacode_png(text: str, width: int) -> bytes:
    code = segno.make(text, error="m", micro=False, boost_error=False)
    scale = max(1, width // (code.symbol_size(border=2)[0]))
    buffer = io.BytesIO()
    code.save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()


def _wxacode_width(value: Any) -> int:
    # WeChat clamps the width into 280..1280 pixels.
    width = value if isinstance(value, int) and not isinstance(value, bool) else 430
    return min(max(width, 280), 1280)


def _handle_wxacode_unlimit(state: SimulatorState, params: dict[str, Any], body: Any) -> Response:
    state.count_wxacode_call()
    if not isinstance(body, dict):
        return _data_format_error()
    scene = body.get("scene")
    if not isinstance(scene, str) or not WXACODE_SCENE.fullmatch(scene):
        return _error(40169, "invalid length for scene, or the data is not json string")
    page = body.get("page")
    if isinstance(page, str) and page.startswith("/"):
        return _error(41030, "invalid page")
    png = _render_wxacode_png(f"wxacode:{scene}", _wxacode_width(body.get("width")))
    return Response(png, mimetype="image/png")


@dataclass(frozen=True)
class ApiRoute:
    method: str
    handler: Handler
    needs_token: bool = True


API_ROUTES: dict[str, ApiRoute] = {
    "cgi-bin/token": ApiRoute("GET", _handle_token, needs_token=False),
    "cgi-bin/stable_token": ApiRoute("POST", _handle_stable_token, needs_token=False),
    "sns/jscode2session": ApiRoute("GET", _handle_jscode2session, needs_token=False),
    "wxa/business/getuserphonenumber": ApiRoute("POST", _handle_phone_number),
    "wxa/msg_sec_check": ApiRoute("POST", _handle_msg_sec_check),
    "cgi-bin/message/subscribe/send": ApiRoute("POST", _handle_subscribe_send),
    "wxa/getwxacodeunlimit": ApiRoute("POST", _handle_wxacode_unlimit),
}


def _parse_body() -> Any:
    # wechatpy posts JSON bytes without a JSON Content-Type, so parse by hand.
    raw = request.get_data()
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _fault_response(fault: Fault) -> Response | None:
    """Apply a fault; None means answer normally after the delay."""
    if fault.delay:
        time.sleep(fault.delay)
    if fault.http_status is not None:
        return Response(f"simulated HTTP {fault.http_status}", status=fault.http_status, mimetype="text/plain")
    if fault.errcode is not None:
        return _error(fault.errcode, fault.errmsg or "simulated error")
    return None


def _not_found() -> tuple[Response, int]:
    return jsonify({"errcode": -1, "errmsg": "not found"}), 404


def _dispatch(state: SimulatorState, path: str) -> Response | tuple[Response, int]:
    params = request.args.to_dict()
    body = _parse_body()
    state.record(path, params, body)
    route = API_ROUTES.get(path)
    if route is None:
        return _not_found()
    fault = state.take_fault(path)
    if fault is not None:
        injected = _fault_response(fault)
        if injected is not None:
            return injected
    if request.method != route.method:
        return _error(43002, "require POST method") if route.method == "POST" else _error(43001, "require GET method")
    if route.needs_token:
        problem = state.check_token(params.get("access_token"))
        if problem:
            return _error(*problem)
    return route.handler(state, params, body)


# --- control API and status page --------------------------------------------

STATUS_PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>微信接口模拟器</title>
<style>
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
td pre { margin: 0; white-space: pre-wrap; word-break: break-all; }
</style>
</head>
<body>
<h1>微信接口模拟器</h1>
<p>AppID：{{ summary.appid }}　获取令牌次数：{{ summary.token_fetches }}　已发送订阅消息：{{ summary.messages }}　生成小程序码次数：{{ summary.wxacode_calls }}</p>
<p>最近 {{ entries|length }} 条请求（最新在前，每 5 秒自动刷新）：</p>
{% if entries %}
<table>
<tr><th>时间</th><th>接口</th><th>查询参数</th><th>请求体</th></tr>
{% for e in entries %}
<tr><td>{{ e.at }}</td><td>{{ e.path }}</td><td><pre>{{ e.params_json }}</pre></td><td><pre>{{ e.body_json }}</pre></td></tr>
{% endfor %}
</table>
{% else %}
<p>暂无请求。</p>
{% endif %}
</body>
</html>
"""


def _status_page(state: SimulatorState) -> str:
    entries = [
        {
            "at": e["at"],
            "path": e["path"],
            "params_json": json.dumps(e["params"], ensure_ascii=False),
            "body_json": "" if e["body"] is None else json.dumps(e["body"], ensure_ascii=False, indent=1),
        }
        for e in reversed(state.received()[-100:])
    ]
    # render_template_string autoescapes, so request contents cannot inject HTML.
    return render_template_string(STATUS_PAGE, entries=entries, summary=state.summary())


def _bad_request(message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), 400


def _optional_number(payload: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = payload.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
        raise ValueError(f"{key} has the wrong type")
    return value


def _fault_from_payload(state: SimulatorState, payload: Any) -> Fault:
    if not isinstance(payload, dict) or not isinstance(payload.get("path"), str) or not payload["path"]:
        raise ValueError("path is required")
    errmsg = payload.get("errmsg")
    if errmsg is not None and not isinstance(errmsg, str):
        raise ValueError("errmsg must be a string")
    return state.add_fault(
        payload["path"],
        errcode=_optional_number(payload, "errcode", int),
        errmsg=errmsg,
        delay=_optional_number(payload, "delay", (int, float)),
        http_status=_optional_number(payload, "http_status", int),
        times=1 if payload.get("times") is None else _optional_number(payload, "times", int),
    )


def _register_control_routes(app: Flask, state: SimulatorState) -> None:
    @app.get("/")
    def status_page() -> str:
        return _status_page(state)

    @app.post("/_sim/faults")
    def add_fault() -> Any:
        try:
            fault = _fault_from_payload(state, _parse_body())
        except ValueError as exc:
            return _bad_request(str(exc))
        return jsonify({"ok": True, "fault": asdict(fault)})

    @app.post("/_sim/refusing")
    def add_refusing() -> Any:
        payload = _parse_body()
        openids = payload.get("openids") if isinstance(payload, dict) else None
        if not isinstance(openids, list) or not all(isinstance(o, str) for o in openids):
            return _bad_request("openids must be a list of strings")
        state.add_refusing(openids)
        return jsonify({"ok": True})

    @app.post("/_sim/expire_tokens")
    def expire_tokens() -> Any:
        state.expire_tokens()
        return jsonify({"ok": True})

    @app.post("/_sim/reset")
    def reset() -> Any:
        state.reset()
        return jsonify({"ok": True})

    @app.get("/_sim/received")
    def received() -> Any:
        return jsonify(state.received(request.args.get("path") or None))

    @app.get("/_sim/messages")
    def messages() -> Any:
        return jsonify(state.delivered())

    @app.get("/_sim/state")
    def summary() -> Any:
        return jsonify(state.summary())


def _register_api_routes(app: Flask, state: SimulatorState) -> None:
    @app.route("/<path:path>", methods=["GET", "POST"])
    def wechat_api(path: str) -> Any:
        return _dispatch(state, _normalize_path(path))

    @app.errorhandler(404)
    @app.errorhandler(405)
    def not_found(_error: Exception) -> Any:
        return _not_found()


def create_simulator_app(
    state: SimulatorState | None = None,
    appid: str = DEFAULT_APPID,
    secret: str = DEFAULT_SECRET,
    token_ttl: int = DEFAULT_TOKEN_TTL,
) -> Flask:
    """Build the simulator app; its state is exposed as ``app.sim_state``."""
    if state is None:
        state = SimulatorState()
    state.configure(appid, secret, token_ttl)
    app = Flask(__name__, static_folder=None)
    # WeChat answers raw UTF-8 JSON in field order; keep it that way.
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.sim_state = state  # type: ignore[attr-defined]
    _register_control_routes(app, state)
    _register_api_routes(app, state)
    return app


if __name__ == "__main__":
    create_simulator_app().run(host="127.0.0.1", port=5055, threaded=True)
