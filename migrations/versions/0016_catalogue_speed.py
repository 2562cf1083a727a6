"""catalogue_version: a counter of committed catalogue changes that keys cached fragments

Revision ID: 0016_catalogue_speed
Revises: 0011_payments_contracts
Create Date: 2026-11-28 16:20:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0016_catalogue_speed'
down_revision: Union[str, Sequence[str], None] = '0011_payments_contracts'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    table = op.create_table('catalogue_version',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalogue_version'))
    )
    op.bulk_insert(table, [{'id': 1, 'version': 0}])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('catalogue_version')
