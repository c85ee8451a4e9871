"""How a reviewer or organiser sees a person in a list: their name and masked phone, never a
bare id (issue 11). Lists preload the people on their page in one query; each card then comes
from the session's identity map."""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import select

from app.extensions import db
from app.identity.models import User
from app.identity.services import display_name, mask_phone


def preload(user_ids: Iterable[int | None]) -> None:
    """Load these users into the session at once (one query for a page of rows)."""
    wanted = {user_id for user_id in user_ids if user_id is not None}
    missing = [user_id for user_id in wanted if db.session.identity_map.get((User, (user_id,), None)) is None]
    if missing:
        list(db.session.scalars(select(User).where(User.id.in_(missing))))


def with_people(page: dict, *attributes: str) -> dict:
    """A page of rows (app.core.pagination) with the people its rows name preloaded."""
    names = attributes or ("user_id",)
    preload(getattr(row, name, None) for row in page["items"] for name in names)
    return page


def card(user_id: int | None) -> dict | None:
    """{id, name, phone}: the name organisers see (real name, else nickname), the phone masked."""
    if user_id is None:
        return None
    user = db.session.get(User, user_id)
    if user is None:
        return None
    return {"id": user.id, "name": display_name(user), "phone": mask_phone(user.phone)}
