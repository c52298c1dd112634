"""An application's SQLAlchemy models, as `schema.assets.<name>.expected` would import them."""

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, Numeric, String, Table

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("email", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True)),
)
Index("users_email", users.c.email)

orders = Table(
    "orders", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", BigInteger),
    Column("total", Numeric(10, 2)),
)
