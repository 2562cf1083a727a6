"""matches.explanation dropped: explanations are rebuilt when matches are read

Revision ID: 0018_match_compact
Revises: 0017_demand_more
Create Date: 2026-11-28 22:10:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0018_match_compact'
down_revision: Union[str, Sequence[str], None] = '0017_demand_more'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

#: Matches explained per batch on downgrade.
BATCH = 2000


def upgrade() -> None:
    """Upgrade schema."""
    # Stored matches keep their ranking figures; their explanations are rebuilt on read.
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.drop_column('explanation')


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('explanation', sa.JSON(), nullable=True))
    _store_explanations()
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.alter_column('explanation', existing_type=sa.JSON(), nullable=False)


def _store_explanations() -> None:
    """Write every stored match's explanation, as the earlier code expects to read it.

    The rules that rebuild it live in the application, so this imports them (a downgrade runs
    against the code of this revision).
    """
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from exchange.demand import matching
    from exchange.demand.models import Match

    session = Session(bind=op.get_bind())
    table = sa.table('matches', sa.column('id', sa.Integer()), sa.column('explanation', sa.JSON()))
    ids = session.scalars(select(Match.id).order_by(Match.id)).all()
    for i in range(0, len(ids), BATCH):
        rows = session.scalars(select(Match).where(Match.id.in_(ids[i:i + BATCH]))).all()
        explained = matching.explain(session, rows)
        session.execute(
            table.update().where(table.c.id == sa.bindparam('match_id')),
            [
                {
                    'match_id': m.id,
                    # A pair always has its lot and demand (the foreign keys cascade).
                    'explanation': m.explanation or {'version': 1, 'constraints': []},
                }
                for m in explained
            ],
        )
        session.expunge_all()
