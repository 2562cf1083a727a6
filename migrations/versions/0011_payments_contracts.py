"""payments_contracts: invoices and contract books name their contract by a foreign key

Revision ID: 0011_payments_contracts
Revises: 0011_notifications
Create Date: 2026-11-28 15:30:00.000000

"""

from typing import Sequence, Union

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011_payments_contracts"
down_revision: Union[str, Sequence[str], None] = "0011_notifications"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("contract_books", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_contract_books_contract_id_contracts"),
            "contracts",
            ["contract_id"],
            ["id"],
            ondelete="RESTRICT",
        )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_invoices_contract_id_contracts"),
            "contracts",
            ["contract_id"],
            ["id"],
            ondelete="RESTRICT",
        )


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_invoices_contract_id_contracts"), type_="foreignkey")
    with op.batch_alter_table("contract_books", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_contract_books_contract_id_contracts"), type_="foreignkey"
        )
