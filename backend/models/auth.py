"""API tokens: only a SHA-256 of each token is stored, never the token."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index, text
from sqlmodel import Field, SQLModel

from backend.models.types import UTCDateTime, utcnow

# One live token per name: a revoked token keeps its row (and its name) for the
# record, and the name can be given to a new token.
LIVE_TOKEN_WHERE = "revoked_at IS NULL"  # noqa: S105 - SQL


class ApiToken(SQLModel, table=True):
    """A bearer token for a person, a van or an integration."""

    __tablename__ = "api_token"
    __table_args__ = (
        Index(
            "uq_api_token_live_name",
            "name",
            unique=True,
            sqlite_where=text(LIVE_TOKEN_WHERE),
            postgresql_where=text(LIVE_TOKEN_WHERE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    role: str = Field(max_length=16)
    # The token's first characters, shown by `token list` to tell tokens apart.
    prefix: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, unique=True)
    areas: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
