"""Page parameters and the list envelope {"items", "total", "page", "per_page"}."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import Select, func, select

from app.extensions import db

MAX_PER_PAGE = 100


class PageArgs(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100000),
                          metadata={"description": "页码，从 1 开始"})
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE),
                              metadata={"description": "每页条数，最多 100"})


_PAGE_SCHEMAS: dict[str, type[Schema]] = {}


def page_schema(item_schema: type[Schema] | Schema, name: str | None = None) -> type[Schema]:
    """A schema for the list envelope around `item_schema` (named for the OpenAPI document;
    one class per item schema, so the document has one component per page type)."""
    item = item_schema if isinstance(item_schema, Schema) else item_schema()
    schema_name = name or f"{type(item).__name__.removesuffix('Schema')}PageSchema"
    if schema_name not in _PAGE_SCHEMAS:
        _PAGE_SCHEMAS[schema_name] = _build_page_schema(item, schema_name)
    return _PAGE_SCHEMAS[schema_name]


def _build_page_schema(item: Schema, schema_name: str) -> type[Schema]:
    return Schema.from_dict({
        "items": fields.List(fields.Nested(type(item)), required=True),
        "total": fields.Integer(required=True),
        "page": fields.Integer(required=True),
        "per_page": fields.Integer(required=True),
    }, name=schema_name)


def paginate(stmt: Select, page: int, per_page: int, scalars: bool = True) -> dict[str, Any]:
    total = db.session.execute(select(func.count()).select_from(stmt.order_by(None).subquery())).scalar_one()
    paged = stmt.limit(per_page).offset((page - 1) * per_page)
    result = db.session.execute(paged)
    items = list(result.scalars()) if scalars else list(result)
    return {"items": items, "total": total, "page": page, "per_page": per_page}
