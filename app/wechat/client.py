"""The one place that builds the wechatpy client.

- Every call goes to WECHAT_API_BASE_URL (api.weixin.qq.com in production, the simulator here).
- The access token lives in the shared key-value store (Redis when configured), fetched with
  `cgi-bin/stable_token`, and only one process refreshes it at a time: the others wait on the
  lock and then find the fresh token, so a refresh storm ends with one fetch per expiry.
- A call that fails with an invalid/expired token refreshes once and is retried once.
- WeChat faults become APIErrors with specific codes (`wechat_errors()`), never a 500.
- Every failed call is counted by errcode (xgz_wechat_api_errors_total, app.core.metrics):
  the errcode WeChat answered, or "other" for a timeout, an unreachable host or an HTTP error.
"""
from __future__ import annotations

import json
import logging
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import requests
from flask import current_app
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from app.core import metrics
from app.core.errors import APIError
from app.core.kv import KeyValueStore

log = logging.getLogger(__name__)

WECHAT_ERRORS = metrics.counter("xgz_wechat_api_errors_total",
                                "Failed WeChat API calls by errcode (other: timeout, network or HTTP error)",
                                ("errcode",))


def errcode_label(errcode) -> str:
    """A bounded label: WeChat's numeric errcodes as they are, anything else "other"."""
    if isinstance(errcode, int) and not isinstance(errcode, bool) and abs(errcode) < 10**8:
        return str(errcode)
    return "other"


def count_failure(exc: BaseException) -> None:
    """Count a failed call once, however many layers it passes through on its way out."""
    if getattr(exc, "_xgz_counted", False):
        return
    try:
        exc._xgz_counted = True  # type: ignore[attr-defined]
    except Exception:
        pass
    WECHAT_ERRORS.labels(errcode_label(getattr(exc, "errcode", None))).inc()


@contextmanager
def counted_failures() -> Iterator[None]:
    try:
        yield
    except (WeChatClientException, requests.RequestException) as exc:
        count_failure(exc)
        raise

TOKEN_ERRORS = {40001, 40014, 42001}
REFRESH_MARGIN_SECONDS = 300  # refresh five minutes before WeChat would expire the token


class KVSessionStorage(SessionStorage):
    """wechatpy session storage over our KeyValueStore (Redis or in-process)."""

    def __init__(self, kv: KeyValueStore, prefix: str = "wechat:") -> None:
        self.kv = kv
        self.prefix = prefix

    def get(self, key, default=None):
        raw = self.kv.get(self.prefix + key)
        return json.loads(raw) if raw is not None else default

    def set(self, key, value, ttl=None):
        if value is not None:
            self.kv.set(self.prefix + key, json.dumps(value), ttl=ttl)

    def delete(self, key):
        self.kv.delete(self.prefix + key)


class MiniProgramClient(WeChatClient):
    def __init__(self, appid: str, secret: str, api_base_url: str, kv: KeyValueStore,
                 timeout: float) -> None:
        super().__init__(appid, secret, session=KVSessionStorage(kv), timeout=timeout, auto_retry=False)
        self.kv = kv
        self.api_base_url = api_base_url
        self.API_BASE_URL = api_base_url + "cgi-bin/"
        self.wxa.API_BASE_URL = api_base_url  # wxa endpoints are relative to the host root
        self.token_fetches = 0

    # -- access token -------------------------------------------------------------------------
    @property
    def access_token(self) -> str:
        token = self.session.get(self.access_token_key)
        if token:
            return token
        return self.refresh_access_token(stale=None)

    def refresh_access_token(self, stale: str | None) -> str:
        """Fetch a new token unless another process already replaced `stale` while we waited."""
        with self.kv.lock(f"wechat-token:{self.appid}", ttl=15, wait=15):
            token = self.session.get(self.access_token_key)
            if token and token != stale:
                return token
            self.fetch_access_token(force_refresh=stale is not None)
            return self.session.get(self.access_token_key)

    def fetch_access_token(self, force_refresh: bool = False) -> dict:
        # wechatpy 1.8 knows only cgi-bin/token; stable_token is the endpoint WeChat recommends
        # for several consumers sharing one appid, so call it through the client's session.
        with counted_failures():
            response = self._http.post(
                self.API_BASE_URL + "stable_token",
                data=json.dumps({"grant_type": "client_credential", "appid": self.appid,
                                 "secret": self.secret, "force_refresh": force_refresh}),
                timeout=self.timeout,
            )
            response.raise_for_status()
            result = self._handle_result(response)
        expires_in = int(result.get("expires_in", 7200))
        self.session.set(self.access_token_key, result["access_token"],
                         max(expires_in - REFRESH_MARGIN_SECONDS, 60))
        self.token_fetches += 1
        log.info("wechat access token refreshed (expires_in=%s)", expires_in)
        return result

    def _handle_result(self, res, *args, **kwargs):
        try:
            return super()._handle_result(res, *args, **kwargs)
        except WeChatClientException as exc:
            count_failure(exc)  # the errcode WeChat answered
            raise

    def _request(self, method, url_or_endpoint, **kwargs):
        params = kwargs.setdefault("params", {})
        uses_token = isinstance(params, dict) and "access_token" not in params
        with counted_failures():
            try:
                return super()._request(method, url_or_endpoint, **kwargs)
            except WeChatClientException as exc:
                if not uses_token or exc.errcode not in TOKEN_ERRORS:
                    raise
                # wechatpy put the token it used into params: that one is stale now.
                fresh = self.refresh_access_token(stale=params.get("access_token"))
                params["access_token"] = fresh
                return super()._request(method, url_or_endpoint, **kwargs)

    # -- mini-program endpoints -----------------------------------------------------------------
    def code_to_session(self, js_code: str) -> dict[str, Any]:
        """wx.login code -> {openid, session_key, unionid?}. Needs no access token, so it is
        called directly rather than through wechatpy's wxa.code_to_session (which would fetch one)."""
        with counted_failures():
            response = self._http.get(
                self.api_base_url + "sns/jscode2session",
                params={"appid": self.appid, "secret": self.secret, "js_code": js_code,
                        "grant_type": "authorization_code"},
                timeout=self.timeout,
            )
            response.raise_for_status()
            return self._handle_result(response)

    def get_phone_number(self, code: str) -> str:
        result = self.post("wxa/business/getuserphonenumber", data={"code": code},
                           api_base_url=self.api_base_url)
        return result["phone_info"]["purePhoneNumber"]

    def msg_sec_check(self, content: str, openid: str, scene: int) -> dict[str, Any]:
        """Content security v2 (wechatpy knows only v1): scene 1 资料, 2 评论, 3 论坛, 4 社交日志."""
        return self.post("wxa/msg_sec_check",
                         data={"content": content, "version": 2, "scene": scene, "openid": openid},
                         api_base_url=self.api_base_url)

    def get_wxa_code_unlimited(self, scene: str, page: str | None = None, width: int = 430) -> bytes:
        response = self.wxa.get_wxa_code_unlimited(scene, width=width, page=page)
        if isinstance(response, requests.Response):  # wechatpy returns the raw response for images
            return response.content
        raise APIError(code="WECHAT_UNAVAILABLE")

    def send_subscribe_message(self, openid: str, template_id: str, data: dict, page: str | None) -> dict:
        return self.wxa.send_subscribe_message(openid, template_id, data, page=page)


_build_lock = threading.Lock()


def wechat_client() -> MiniProgramClient:
    """The app's client, built once per process and shared by its threads."""
    app = current_app._get_current_object()
    client = app.extensions.get("wechat_client")
    if client is None:
        from app.extensions import kv

        with _build_lock:
            client = app.extensions.get("wechat_client")
            if client is None:
                client = MiniProgramClient(
                    app.config["WECHAT_APPID"], app.config["WECHAT_SECRET"],
                    app.config["WECHAT_API_BASE_URL"], kv, app.config["WECHAT_TIMEOUT_SECONDS"],
                )
                app.extensions["wechat_client"] = client
    return client


# WeChat errcode -> our code. Anything not listed (including -1 系统繁忙) means "try again later".
ERRCODE_MAP = {
    40029: "WECHAT_CODE_INVALID",
    40163: "WECHAT_CODE_INVALID",
    45011: "WECHAT_RATE_LIMITED",
    45009: "WECHAT_RATE_LIMITED",
    40226: "WECHAT_USER_BLOCKED",
}


@contextmanager
def wechat_errors(code_map: dict[int, str] | None = None) -> Iterator[None]:
    """Translate a WeChat call's failure into an APIError the client can act on."""
    mapping = {**ERRCODE_MAP, **(code_map or {})}
    try:
        yield
    except WeChatClientException as exc:
        code = mapping.get(exc.errcode, "WECHAT_UNAVAILABLE")
        log.warning("wechat call failed: errcode=%s", exc.errcode)
        raise APIError(code=code, details={"wechat_errcode": exc.errcode})
    except (requests.Timeout, requests.ConnectionError) as exc:
        log.warning("wechat unreachable: %s", type(exc).__name__)
        raise APIError(code="WECHAT_UNAVAILABLE", details={"reason": "timeout"
                       if isinstance(exc, requests.Timeout) else "unreachable"})
    except requests.RequestException as exc:
        log.warning("wechat request error: %s", type(exc).__name__)
        raise APIError(code="WECHAT_UNAVAILABLE")


def ensure_text_safe(content: str | None, openid: str, scene: int = 1, field: str = "content") -> None:
    """Refuse risky text before it is stored or shown (R12). Empty text passes."""
    if not content or not content.strip():
        return
    with wechat_errors():
        result = wechat_client().msg_sec_check(content, openid, scene)
    if (result.get("result") or {}).get("suggest") == "risky":
        raise APIError(code="CONTENT_RISKY", details={"field": field})
