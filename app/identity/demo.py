"""Demo regions and people: a regulator of 梧州市 and an administrator."""
from app.identity.services import find_or_create_user, grant_role
from app.core.regions import DEMO_REGIONS, upsert_regions

DEMO_PEOPLE = {
    # openid: (nickname, role, scope). Log in as any of them with code "sim-<openid>".
    "demo-admin": ("系统管理员", "admin", None),
    "demo-regulator": ("梧州市市场监管局", "regulator", "region:450400"),
}


def seed(ctx: dict) -> None:
    upsert_regions(DEMO_REGIONS)
    for openid, (nickname, role, scope) in DEMO_PEOPLE.items():
        user = find_or_create_user(openid)
        user.nickname = user.nickname or nickname
        grant_role(user, role, scope, reason="演示数据")
        ctx[openid] = user
