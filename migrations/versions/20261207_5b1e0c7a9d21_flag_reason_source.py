"""flag reason source: whether the word rules or the learned model found it

Revision ID: 5b1e0c7a9d21
Revises: 1227a92e1522
Create Date: 2026-12-07 21:20:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5b1e0c7a9d21"
down_revision: str | Sequence[str] | None = "1227a92e1522"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("flag_reasons", schema=None) as batch_op:
        # Every reason recorded before the learned layer came from the word rules.
        batch_op.add_column(
            sa.Column("source", sa.String(length=8), nullable=False, server_default="rules")
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("flag_reasons", schema=None) as batch_op:
        batch_op.drop_column("source")
