"""The console's navigation and the top bar's user label.

An entry links to its endpoint once a page module defines it; until then it shows as
"建设中" (not a link), so the layout is complete before every page exists. An entry with a
`count` shows a badge when a counter is registered under that name (`register_count`), e.g.
the review queues' combined count of pending items."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from flask import current_app, url_for

from app.console.sessions import CONSOLE_ROLES
from app.identity.models import ROLE_LABELS
from app.identity.services import mask_name


@dataclass(frozen=True)
class NavItem:
    key: str  # what a page passes as render_page(nav_key=…)
    label: str
    endpoint: str  # the section's landing page
    count: str | None = None  # name of a registered counter (a badge in the navigation)


NAV = (
    NavItem("home", "首页", "console.home"),
    NavItem("queues", "待办", "console.queues", count="queues"),
    NavItem("markets", "市场与摊位", "console.markets"),
    NavItem("orgs", "组织与活动", "console.orgs"),
    NavItem("exports", "导出", "console.exports"),
    NavItem("audit", "审计日志", "console.audit"),
)

# name -> counter(user) -> int; registered by the page modules that own the figure.
_counters: dict[str, Callable] = {}


def register_count(name: str, counter: Callable) -> None:
    """`counter(user)` gives the number shown on the entry whose `count` is `name` (0 hides it)."""
    _counters[name] = counter


def items(user) -> list[dict]:
    """The navigation for this request: key, label, url (None while the page is not built
    yet) and count (None without a counter). The layout marks the entry whose key the page
    passed to render_page(nav_key=…)."""
    built = current_app.view_functions
    result = []
    for item in NAV:
        counter = _counters.get(item.count) if item.count else None
        result.append({"key": item.key, "label": item.label,
                       "url": url_for(item.endpoint) if item.endpoint in built else None,
                       "count": counter(user) if counter is not None else None})
    return result


def user_label(user) -> dict:
    """{name, role}: the masked name (王*军) and the most senior console role (CONSOLE_ROLES
    lists them most senior first), with how many grants the user holds when more than one."""
    roles = [grant.role for grant in user.grants if grant.role in CONSOLE_ROLES]
    roles.sort(key=CONSOLE_ROLES.index)
    role = ROLE_LABELS[roles[0]] if roles else ""
    if len(roles) > 1:
        role += f" 等 {len(roles)} 项授权"
    name = mask_name(user.real_name or user.nickname) if (user.real_name or user.nickname) else f"用户{user.id}"
    return {"name": name, "role": role}
