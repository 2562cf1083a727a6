"""listings: catalogue sort indexes end with the lot id (the sort's tie-break)

Revision ID: 0012_listings_indexes
Revises: 0013_dispute_evidence
Create Date: 2026-11-28 15:40:00.000000

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0012_listings_indexes'
down_revision: Union[str, Sequence[str], None] = '0013_dispute_evidence'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

#: Index name -> the sort key column it serves.
SORT_INDEXES = {
    'ix_lots_status_price': 'price',
    'ix_lots_status_published_at': 'published_at',
    'ix_lots_status_remaining': 'remaining',
}


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('lots', schema=None) as batch_op:
        for name, column in SORT_INDEXES.items():
            batch_op.drop_index(name)
            batch_op.create_index(name, ['status', column, 'id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('lots', schema=None) as batch_op:
        for name, column in SORT_INDEXES.items():
            batch_op.drop_index(name)
            batch_op.create_index(name, ['status', column], unique=False)
