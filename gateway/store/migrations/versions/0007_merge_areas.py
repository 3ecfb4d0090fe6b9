"""Join the areas' branches: calendar, facade and jobs each added their tables from 0005.

Revision ID: 0007_merge_areas
Revises: 0006_calendar, 0006_facade, 0006_jobs
Create Date: 2026-11-23
"""

revision = "0007_merge_areas"
down_revision = ("0006_calendar", "0006_facade", "0006_jobs")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the branches touch disjoint tables; this only makes one head."""


def downgrade() -> None:
    """Nothing to undo."""
