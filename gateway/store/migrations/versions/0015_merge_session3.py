"""Join the branches of e-services, usage counts and the growth indexes (each from 0008).

Revision ID: 0015_merge_session3
Revises: 0009_eservices, 0010_usage, 0013_growth_indexes
Create Date: 2026-11-23
"""

revision = "0015_merge_session3"
down_revision = ("0009_eservices", "0010_usage", "0013_growth_indexes")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the branches touch disjoint tables; this only makes one head."""


def downgrade() -> None:
    """Nothing to undo."""
