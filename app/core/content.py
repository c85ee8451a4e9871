"""One content-check gate (R12) for every free text that another person will read.

A column says so where it is declared: `mapped_column(String(100), info=public_text())`. Before
any flush of a request's session, and before any ORM-enabled INSERT/UPDATE statement or
`insert_ignore` writes such a column, the gate sends each new or changed value through WeChat's
msgSecCheck (v2, as the writing user) and refuses the whole request with 422 CONTENT_RISKY if
any is risky. So a new route, a new feature or a forgotten service call cannot
store unchecked public text: the column decides, not the code path. `tests/core/
test_content_gate.py` makes every text column declare whether it is public.

Outside a request (operators' CLI, seeds, the scheduler) nothing is sent: that text is the
operator's own or the system's."""
from __future__ import annotations

from typing import Any

from flask import g, has_request_context
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

# msgSecCheck scenes: 1 profile/data, 2 comment, 3 forum, 4 social log.
PROFILE, COMMENT = 1, 2
_CHECKED = "content_checked"


def public_text(scene: int = PROFILE) -> dict[str, Any]:
    """Column `info` marking text that other people read."""
    return {"public_text": scene}


_columns_by_class: dict[type, list[tuple[str, int]]] = {}


def _public_columns(mapper) -> list[tuple[str, int]]:
    """(attribute, scene) of the mapped class's public-text columns; worked out once per class
    (the set is fixed by the class's declaration)."""
    cached = _columns_by_class.get(mapper.class_)
    if cached is None:
        cached = [(attr.key, attr.columns[0].info["public_text"]) for attr in mapper.column_attrs
                  if "public_text" in attr.columns[0].info]
        _columns_by_class[mapper.class_] = cached
    return cached


def _as_text(value) -> str:
    """Lists and dicts (pledge items, trading rules, amenities) are checked as one text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(_as_text(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return "\n".join(_as_text(v) for v in value)
    return ""


def _pending_texts(session: Session):
    new, dirty = list(session.new), session.dirty  # `dirty` is computed on each access
    for obj in new + list(dirty):
        state = inspect(obj)
        columns = _public_columns(state.mapper)
        if not columns:
            continue
        changed_only = obj in dirty
        for key, scene in columns:
            if changed_only and not state.attrs[key].history.has_changes():
                continue
            text = _as_text(getattr(obj, key))
            if text.strip():
                yield key, scene, text


def _writer():
    """The user whose request writes, or None outside a request or before login."""
    return g.get("current_user") if has_request_context() else None


_checker = None  # ensure_text_safe(text, openid, scene=, field=): WeChat's, given by create_app


def _check(session: Session, user, texts) -> None:
    checked = session.info.setdefault(_CHECKED, set())
    for field, scene, text in texts:
        if (scene, text) in checked:
            continue
        _checker(text, user.openid, scene=scene, field=field)
        checked.add((scene, text))


def check_before_flush(session: Session, flush_context, instances) -> None:
    user = _writer()
    if user is not None:
        _check(session, user, _pending_texts(session))


def _row_texts(columns: list[tuple[str, int]], rows):
    for row in rows:
        for key, scene in columns:
            text = _as_text(row.get(key))
            if text.strip():
                yield key, scene, text


def check_rows(session: Session, model, rows: list[dict]) -> None:
    """For writes that bypass the unit of work (app.core.db.insert_ignore's prepared SQL)."""
    user = _writer()
    if user is None:
        return
    columns = _public_columns(inspect(model))
    if columns:
        _check(session, user, _row_texts(columns, rows))


def _plain(value):
    return getattr(value, "value", value)  # a BindParameter's value, or the value itself


def statement_rows(state) -> list[dict]:
    params = state.parameters
    rows = [dict(p) for p in params] if isinstance(params, (list, tuple)) else ([dict(params)] if params else [])
    statement = state.statement
    given = getattr(statement, "_values", None) or {}
    if given:
        rows.append({getattr(k, "key", k): _plain(v) for k, v in given.items()})
    for batch in getattr(statement, "_multi_values", None) or ():
        rows.extend({getattr(k, "key", k): _plain(v) for k, v in row.items()} for row in batch)
    return rows


def check_orm_statement(state) -> None:
    """`session.execute(insert(Model), rows)` and `update(Model).values(...)` (the review
    compare-and-set) write without a flush: their values pass the same gate."""
    if not (state.is_insert or state.is_update):
        return
    user = _writer()
    mapper = state.bind_mapper
    if user is None or mapper is None:
        return
    columns = _public_columns(mapper)
    if columns:
        _check(state.session, user, _row_texts(columns, statement_rows(state)))


def _forget_checks(session: Session) -> None:
    session.info.pop(_CHECKED, None)


def install(checker) -> None:
    """Called by create_app with the checker (app.wechat.client.ensure_text_safe); listening
    twice would check twice, so the listeners are added once per process."""
    global _checker
    _checker = checker
    if not event.contains(Session, "before_flush", check_before_flush):
        event.listen(Session, "before_flush", check_before_flush)
        event.listen(Session, "do_orm_execute", check_orm_statement)
        event.listen(Session, "after_commit", _forget_checks)
        event.listen(Session, "after_rollback", _forget_checks)
