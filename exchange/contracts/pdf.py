"""The contract as a bilingual PDF (fpdf2), with its terms hash and signatures.

fpdf2's core fonts cannot print Chinese, so the PDF embeds (a subset of) Noto Sans SC, an SIL
Open Font License font that the pinned ``pylopdf-fonts-zh-cn`` package installs: a fresh
machine gets it from ``make install`` like every other dependency, with no system font needed.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from exchange.accounts.regions import province_name
from exchange.catalog.materials import END_USES, EndUse
from exchange.contracts.models import Contract

CHINA = ZoneInfo("Asia/Shanghai")
TITLE_ZH = "赤泥及赤泥产品买卖合同"
TITLE_EN = "Contract for the sale of red mud and red-mud products"
FONT = "NotoSansSC"


#: Bilingual labels of the contract, shared by the PDF and the printable page.
LABELS: dict[str, tuple[str, str]] = {
    "contract_number": ("合同编号", "Contract number"),
    "terms_version": ("条款版本", "Terms version"),
    "terms_hash": ("条款哈希", "Terms hash (SHA-256)"),
    "sign_by": ("签署截止", "Sign by"),
    "parties": ("一、当事人", "1. Parties"),
    "seller": ("卖方", "Seller (producer)"),
    "buyer": ("买方", "Buyer"),
    "goods": ("二、标的、数量与价格", "2. Goods, quantity and price"),
    "material": ("物料", "Material"),
    "quantity": ("数量", "Quantity"),
    "price": ("单价", "Price"),
    "total": ("合同总额", "Total"),
    "assay_sold_on": ("成交化验", "Assay sold on"),
    "delivery": ("三、交付", "3. Delivery"),
    "delivery_terms": ("交货方式", "Terms"),
    "site": ("交货地点", "Site"),
    "window": ("交货期", "Window"),
    "schedule": ("交货安排", "Schedule"),
    "route": ("运输路线", "Route"),
    "quality_clause": ("四、质量条款", "4. Quality clause"),
    "payment_standards": ("五、付款与适用标准", "5. Payment and governing standards"),
    "payment": ("付款", "Payment"),
    "end_use": ("用途", "End use"),
    "standards": ("适用标准", "Standards"),
    "signatures": ("六、签署", "6. Signatures"),
    "deliveries": ("七、交付记录", "7. Deliveries"),
}


#: The filing note for a contract whose material crosses a province border.
INTER_PROVINCIAL_NOTE = (
    "跨省转移利用，须依法向生态环境主管部门备案。",
    "Inter-provincial transfer for utilization: a filing with the environment authorities is "
    "required.",
)
CLAUSE_INTRO = (
    "到货复检值超出下列范围时，按条款逐项扣价或拒收。",
    "If a delivery's re-assay falls outside a window, its price is adjusted line by line or the "
    "delivery is rejected.",
)


def mode_text(mode: str) -> str:
    if mode == "ex_works":
        return "出厂交货（买方自提） / ex works (the buyer collects)"
    return "送货至买方 / delivered to the buyer"


def route_text(contract: Contract) -> str:
    return (
        f"{province_name(contract.origin_province, 'zh')} → "
        f"{province_name(contract.destination_province, 'zh')} / "
        f"{province_name(contract.origin_province, 'en')} → "
        f"{province_name(contract.destination_province, 'en')}"
    )


def font_path() -> Path:
    """The CJK font file shipped by the ``pylopdf-fonts-zh-cn`` dependency."""
    import pylopdf_fonts_zh_cn

    return Path(pylopdf_fonts_zh_cn.sans_path())


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") + " (UTC+8)"


def _money(fen: int, currency: str) -> str:
    return f"{Decimal(fen) / 100:,.2f} {currency}"


def price_words(price: Decimal, currency: str) -> tuple[str, str]:
    """The signed price per tonne in words, Chinese and English."""
    amount = f"{abs(price):,.2f} {currency}"
    if price < 0:
        return (
            f"每吨 {amount}，由卖方（产废单位）向买方支付（处置费）",
            f"{amount} per tonne paid by the seller (producer) to the buyer: a disposal fee",
        )
    if price > 0:
        return (f"每吨 {amount}，由买方向卖方支付", f"{amount} per tonne paid by the buyer")
    return ("无偿转让", "transferred free of charge")


class _ContractPDF(FPDF):
    def __init__(self, contract: Contract) -> None:
        super().__init__(format="A4")
        self.contract = contract
        self.add_font(FONT, "", str(font_path()))
        self.set_auto_page_break(auto=True, margin=16)
        self.set_title(f"{contract.number} {TITLE_EN}")
        self.set_creator("Red Mud Exchange")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, size=7)
        self.set_text_color(110)
        self.cell(
            0,
            5,
            f"{self.contract.number} · SHA-256 {self.contract.terms_hash} · {self.page_no()}",
            align="C",
        )
        self.set_text_color(0)

    def heading(self, zh: str, en: str) -> None:
        self.ln(2)
        self.set_font(FONT, size=11)
        self.set_fill_color(244, 232, 226)
        self.multi_cell(0, 7, f"{zh}  {en}", fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(FONT, size=9)

    def row(self, zh: str, en: str, value: str) -> None:
        self.set_font(FONT, size=8)
        self.set_text_color(90)
        self.multi_cell(48, 5, f"{zh}\n{en}", new_x=XPos.RIGHT, new_y=YPos.TOP)
        self.set_text_color(0)
        self.set_font(FONT, size=9)
        top = self.get_y()
        self.multi_cell(0, 5, value or "—", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_y(max(self.get_y(), top + 10))

    def para(self, text: str, size: int = 9) -> None:
        self.set_font(FONT, size=size)
        self.multi_cell(0, 5, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _party(data: dict[str, Any]) -> str:
    name = data["name_zh"] + (f" / {data['name_en']}" if data.get("name_en") else "")
    return f"{name}\n统一社会信用代码 USCC {data['uscc']}"


def clause_line(row: dict[str, Any]) -> str:
    unit = row.get("unit") or ""
    window = []
    if row.get("minimum") is not None:
        window.append(f"≥ {row['minimum']}{unit}")
    if row.get("maximum") is not None:
        window.append(f"≤ {row['maximum']}{unit}")
    if row.get("adjustment_per_unit") is None:
        rule = "超出即拒收 / outside: rejected"
    else:
        rule = (
            f"每超出 1{unit or ' unit'} 扣价 {row['adjustment_per_unit']} 元/吨；"
            f"超出 {row['reject_beyond']}{unit} 拒收 / "
            f"{row['adjustment_per_unit']} per tonne off per unit outside; "
            f"rejected beyond {row['reject_beyond']}{unit}"
        )
    return f"{row['parameter']}: {' '.join(window)} — {rule}"


def render(contract: Contract, user_names: dict[int, str]) -> bytes:
    """The contract as PDF bytes. ``user_names`` maps signer user ids to display names."""
    terms = contract.terms
    pdf = _ContractPDF(contract)
    pdf.add_page()
    pdf.set_font(FONT, size=16)
    pdf.multi_cell(0, 9, TITLE_ZH, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, size=11)
    pdf.multi_cell(0, 6, TITLE_EN, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    pdf.row(*LABELS["contract_number"], contract.number)
    pdf.row(*LABELS["terms_version"], str(contract.terms_version))
    pdf.row(*LABELS["terms_hash"], contract.terms_hash)
    pdf.row(*LABELS["sign_by"], _when(contract.sign_by))

    pdf.heading(*LABELS["parties"])
    pdf.row(*LABELS["seller"], _party(terms["seller"]))
    pdf.row(*LABELS["buyer"], _party(terms["buyer"]))

    pdf.heading(*LABELS["goods"])
    material = terms["material"]
    pdf.row(*LABELS["material"], f"{material['name_zh']} / {material['name_en']}")
    basis = "干基 dry basis" if contract.basis == "dry" else "湿基 wet basis"
    pdf.row(
        *LABELS["quantity"],
        f"{contract.quantity:,} t ± {contract.tolerance_pct}% ({basis}; 以过磅净重计 "
        f"by weighbridge net weight)",
    )
    zh, en = price_words(contract.price, contract.currency)
    pdf.row(*LABELS["price"], f"{contract.price} {contract.currency}/t — {zh}\n{en}")
    pdf.row(*LABELS["total"], _money(contract.total_fen, contract.currency))
    assay = contract.assay_snapshot
    values = ", ".join(f"{k} {v}" for k, v in sorted((assay.get("values") or {}).items()))
    lab = " ".join(str(assay.get(k) or "") for k in ("lab", "accreditation_no", "sampled_on"))
    pdf.row(*LABELS["assay_sold_on"], f"{lab.strip() or '—'}\n{values or '—'}")

    pdf.heading(*LABELS["delivery"])
    mode = mode_text(contract.delivery_mode)
    pdf.row(*LABELS["delivery_terms"], mode)
    pdf.row(*LABELS["site"], contract.delivery_site)
    pdf.row(*LABELS["window"], f"{contract.window_start} — {contract.window_end}")
    pdf.row(*LABELS["schedule"], contract.schedule)
    route = route_text(contract)
    if contract.inter_provincial:
        route += "\n" + "\n".join(INTER_PROVINCIAL_NOTE)
    pdf.row(*LABELS["route"], route)

    pdf.heading(*LABELS["quality_clause"])
    pdf.para(" ".join(CLAUSE_INTRO))
    for row in contract.quality_clause:
        pdf.para(f"• {clause_line(row)}", size=8)

    pdf.heading(*LABELS["payment_standards"])
    pdf.row(
        *LABELS["payment"],
        f"定金 deposit {contract.deposit_pct}%；每批交付后 {contract.payment_due_days} 日内付款 "
        f"/ due {contract.payment_due_days} days after each delivery",
    )
    end_use = contract.end_use
    if end_use in set(EndUse):
        info = END_USES[EndUse(end_use)]
        pdf.row(*LABELS["end_use"], f"{info.name_zh} / {info.name_en}")
    standards = "\n".join(
        f"{s['code']} {s['title_zh']} / {s['title_en']}" for s in contract.standards
    )
    pdf.row(*LABELS["standards"], standards)

    pdf.heading(*LABELS["signatures"])
    if not contract.signatures:
        pdf.para("尚无签署。 Not signed yet.")
    for sig in contract.signatures:
        party = terms["seller"] if sig.side.value == "seller" else terms["buyer"]
        state = "已作废 VOID" if sig.void else "有效 valid"
        pdf.para(
            f"{'卖方 Seller' if sig.side.value == 'seller' else '买方 Buyer'} · {party['name_zh']}"
            f" · {user_names.get(sig.user_id, str(sig.user_id))} · {_when(sig.signed_at)}"
            f" · IP {sig.ip or '—'} · v{sig.terms_version} · {state}\n"
            f"SHA-256 {sig.terms_hash}",
            size=8,
        )

    if contract.deliveries:
        pdf.heading(*LABELS["deliveries"])
        for d in contract.deliveries:
            received = (
                f"; 验收 accepted {d.accepted_t} t, 拒收 rejected {d.rejected_t} t"
                if d.received
                else ""
            )
            pdf.para(
                f"#{d.seq} {d.dispatched_on} · {d.vehicle_plate} · {d.carrier} · "
                f"联单 manifest {d.manifest_no} · 毛重 gross {d.gross_t} t − 皮重 tare "
                f"{d.tare_t} t = 净重 net {d.net_t} t{received}",
                size=8,
            )
    pdf.ln(3)
    pdf.para(f"生成时间 Generated {_when(dt.datetime.now(dt.UTC))}", size=7)
    return bytes(pdf.output())
