"""demands.matched_at: when a demand's matches were last computed

Revision ID: 0017_demand_more
Revises: 0016_catalogue_speed
Create Date: 2026-11-28 16:20:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0017_demand_more'
down_revision: Union[str, Sequence[str], None] = '0016_catalogue_speed'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('demands', schema=None) as batch_op:
        batch_op.add_column(sa.Column('matched_at', sa.DateTime(timezone=True), nullable=True))
    # Demands posted before this column existed had their matches computed when saved.
    op.execute("UPDATE demands SET matched_at = COALESCE(updated_at, created_at)")


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('demands', schema=None) as batch_op:
        batch_op.drop_column('matched_at')
