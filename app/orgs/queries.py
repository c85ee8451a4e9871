"""Read side of party organisations used by other features. Stubs until the orgs issue fills them in."""
from __future__ import annotations


def party_member_operator(owner_user_id: int) -> dict | None:
    """{"org": name} when the user who operates the entity is a verified party member, else None."""
    return None


def memberships_for_user(user) -> list[dict]:
    """The user's memberships for GET /me."""
    return []
