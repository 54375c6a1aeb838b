"""learning from decisions: a school's kept examples and its own model

Revision ID: 8f2d4c6b1a30
Revises: 5b1e0c7a9d21
Create Date: 2026-12-07 23:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "8f2d4c6b1a30"
down_revision: str | Sequence[str] | None = "5b1e0c7a9d21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "learning_examples",
        sa.Column("flag_id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kept_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_id"],
            ["flags.id"],
            name=op.f("fk_learning_examples_flag_id_flags"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["chat_members.id"],
            name=op.f("fk_learning_examples_member_id_chat_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["school_id"],
            ["schools.id"],
            name=op.f("fk_learning_examples_school_id_schools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("flag_id", name=op.f("pk_learning_examples")),
    )
    with op.batch_alter_table("learning_examples", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_learning_examples_member_id"), ["member_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_learning_examples_school_id"), ["school_id"], unique=False
        )
    op.create_table(
        "school_models",
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("weights", sa.LargeBinary(), nullable=True),
        sa.Column("base", sa.String(length=100), nullable=True),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["school_id"],
            ["schools.id"],
            name=op.f("fk_school_models_school_id_schools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("school_id", name=op.f("pk_school_models")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("school_models")
    with op.batch_alter_table("learning_examples", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_learning_examples_school_id"))
        batch_op.drop_index(batch_op.f("ix_learning_examples_member_id"))
    op.drop_table("learning_examples")
