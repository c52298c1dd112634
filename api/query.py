"""Query-string parsing shared by the list endpoints: typed values, 400 with field errors."""

from __future__ import annotations

from datetime import datetime, timezone

from flask_restx import reqparse

from api.request_guard import MAX_ID

# Far enough for any real window; near enough that UTC conversion and adding a duration
# can never leave datetime's range (years 1..9999).
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(9000, 1, 1, tzinfo=timezone.utc)


def timestamp(value) -> datetime:
    """An aware UTC datetime from an ISO 8601 string (query strings and JSON bodies alike)."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 timestamp string, e.g. 2026-01-31T12:00:00Z")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        parsed = parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):
        raise ValueError("must be an ISO 8601 timestamp, e.g. 2026-01-31T12:00:00Z") from None
    if not EARLIEST <= parsed <= LATEST:
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
    return parsed


timestamp.__schema__ = {"type": "string", "format": "date-time"}


def bounded_int(low: int, high: int):
    def parse(value):
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError("must be a whole number") from None
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}")
        return number

    parse.__schema__ = {"type": "integer", "minimum": low, "maximum": high}
    return parse


# Row ids in query strings: a larger number cannot be a row, and SQLite cannot even bind it.
row_id = bounded_int(1, MAX_ID)


def paged_parser() -> reqparse.RequestParser:
    parser = reqparse.RequestParser(bundle_errors=True)
    parser.add_argument("page", type=bounded_int(1, 1_000_000), default=1, location="args")
    parser.add_argument("per_page", type=bounded_int(1, 500), default=50, location="args")
    return parser


def page_of(query_total: int, items: list, page: int, per_page: int) -> dict:
    return {"items": items, "total": query_total, "page": page, "per_page": per_page,
            "pages": (query_total + per_page - 1) // per_page}


def paginate(session, query, order_by, args, serialize) -> dict:
    """Run `query` for the page `args` asks for and wrap it with its totals."""
    from sqlalchemy import func, select

    total = session.scalar(select(func.count()).select_from(query.subquery()))
    order = order_by if isinstance(order_by, tuple) else (order_by,)
    rows = session.scalars(query.order_by(*order).offset((args.page - 1) * args.per_page)
                           .limit(args.per_page)).all()
    return page_of(total, [serialize(r) for r in rows], args.page, args.per_page)


def exact_or_prefix(column, value: str):
    """`value` exactly, or everything starting with it when it ends in `*`. Only that trailing
    star is a wildcard: `%` and `_` in user input are matched as themselves."""
    if value.endswith("*"):
        return column.startswith(value[:-1], autoescape=True)
    return column == value
