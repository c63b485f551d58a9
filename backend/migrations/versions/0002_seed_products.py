"""Seed the product catalogue.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Codes follow the wire contract's product-code pattern (lower case, dashes).
PRODUCTS: list[tuple[str, str, str, bool]] = [
    ("naloxone-nasal-4mg", "Naloxone nasal spray 4 mg", "naloxone", True),
    ("naloxone-nasal-8mg", "Naloxone nasal spray 8 mg", "naloxone", True),
    ("naloxone-im-0-4mg", "Naloxone injectable 0.4 mg/mL kit", "naloxone", True),
    ("naloxone-autoinjector-2mg", "Naloxone auto-injector 2 mg", "naloxone", True),
    ("fentanyl-test-strips", "Fentanyl test strips (10)", "drug-checking", False),
    ("xylazine-test-strips", "Xylazine test strips (10)", "drug-checking", False),
    ("wound-care-kit", "Wound care kit", "wound-care", False),
    ("hygiene-kit", "Hygiene kit", "hygiene", False),
    ("safer-smoking-kit", "Safer smoking kit", "safer-use", False),
    ("safer-injection-kit", "Safer injection kit", "safer-use", False),
    ("condoms", "Condoms and lubricant", "sexual-health", False),
    ("pregnancy-test", "Pregnancy test", "sexual-health", False),
    ("sharps-container", "Personal sharps container", "safer-use", False),
    ("snack-pack", "Snack and water pack", "basic-needs", False),
]

_product = sa.table(
    "product",
    sa.column("code", sa.String),
    sa.column("name", sa.String),
    sa.column("category", sa.String),
    sa.column("is_naloxone", sa.Boolean),
)


def upgrade() -> None:
    """Insert the catalogue."""
    op.bulk_insert(
        _product,
        [
            {"code": code, "name": name, "category": category, "is_naloxone": naloxone}
            for code, name, category, naloxone in PRODUCTS
        ],
    )


def downgrade() -> None:
    """Remove the seeded products."""
    op.execute(_product.delete().where(_product.c.code.in_([p[0] for p in PRODUCTS])))
