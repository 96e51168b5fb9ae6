"""Documents: what a resident takes home, built as bytes with no device code.

A4 certificates are PDFs made with reportlab, with the CJK font embedded (WenQuanYi Micro Hei:
reportlab cannot use Noto CJK's PostScript outlines) so that their text stays extractable.
Thermal receipts, notices and tickets are in :mod:`flows.slips`.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from flows.catalog import Catalog
from flows.errors import KioskError
from flows.models import Identity, Record
from flows.tokens import Signer, TokenClaims, content_hash, verify_url

FONT_NAME = "WenQuanYi"


class DocumentError(KioskError):
    translation_key = "error.document"


@dataclass(frozen=True, slots=True)
class Document:
    """A built document: its id (printed and encoded in the QR code) and its bytes."""

    doc_id: str
    kind: str
    pdf: bytes
    pages: int = 1


def register_font(path: Path) -> None:
    """Register the CJK font once per process (subfont 0 of the .ttc collection)."""
    if FONT_NAME in pdfmetrics.getRegisteredFontNames():
        return
    try:
        pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), subfontIndex=0))
    except Exception as err:  # reportlab raises TTFError and plain errors alike
        raise DocumentError(f"cannot load the document font {path}: {err}") from err


def document_id(txn_id: str, kind: str) -> str:
    return f"{kind[:2].upper()}{txn_id.replace('-', '')[:14].upper()}"


def _qr(canvas: Canvas, data: str, x: float, y: float, size: float) -> None:
    widget = QrCodeWidget(data)
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    drawing.drawOn(canvas, x, y)


def record_digest(record: Record) -> str:
    """The hash of a certificate's content that its verification token carries."""
    table = record.table
    content: list[object] = [record.service, record.title_zh, [list(f) for f in record.fields]]
    if table is not None:
        content.append([list(table.headers), [list(r) for r in table.rows]])
    return content_hash(json.dumps(content, ensure_ascii=False, sort_keys=True).encode())


def _page(
    c: Canvas,
    record: Record,
    *,
    catalog: Catalog,
    doc_id: str,
    issued: dt.datetime,
    signer: Signer | None,
) -> None:
    width, height = A4
    left = 25 * mm
    right = width - 25 * mm
    c.setFont(FONT_NAME, 22)
    c.drawCentredString(width / 2, height - 35 * mm, record.title_zh)
    c.setFont(FONT_NAME, 11)
    c.drawCentredString(width / 2, height - 43 * mm, record.title_en)
    c.setStrokeColor(colors.HexColor("#B22222"))
    c.setLineWidth(1.2)
    c.line(left, height - 48 * mm, right, height - 48 * mm)

    y = height - 60 * mm
    for label, value in record.fields:
        c.setFont(FONT_NAME, 11)
        c.drawString(left, y, label)
        c.setFont(FONT_NAME, 12)
        c.drawString(left + 60 * mm, y, value)
        y -= 9 * mm

    table = record.table
    if table is not None:
        y -= 4 * mm
        c.setFont(FONT_NAME, 12)
        c.drawString(left, y, table.title)
        y -= 8 * mm
        step = (right - left) / max(1, len(table.headers))
        cols = [left + i * step for i in range(len(table.headers))]
        c.setFont(FONT_NAME, 10)
        for x, head in zip(cols, table.headers, strict=True):
            c.drawString(x, y, head)
        c.setLineWidth(0.5)
        c.setStrokeColor(colors.black)
        c.line(left, y - 2.5 * mm, right, y - 2.5 * mm)
        y -= 8 * mm
        for row in table.rows:
            for x, value in zip(cols, row, strict=True):
                c.drawString(x, y, value)
            y -= 7 * mm

    y -= 8 * mm
    c.setFont(FONT_NAME, 10)
    notes = [
        *record.notes,
        "特此证明。本证明由自助服务终端打印，扫描右侧二维码可核验真伪。",
        "This certifies the record above. Printed by a self-service terminal;"
        " scan the QR code to verify.",
        f"出具单位 Issued by: {record.issuer_zh or catalog.station.name.zh}",
        *([f"打印地点 Printed at: {catalog.station.name.zh}"] if record.issuer_zh else []),
        f"打印时间 Printed: {issued:%Y-%m-%d %H:%M}    证明编号 No.: {doc_id}",
    ]
    for note in notes:
        c.drawString(left, y, note)
        y -= 6.5 * mm
    digest = record_digest(record)
    if signer is not None:
        issuer = record.issuer_zh or catalog.station.name.zh
        claims = TokenClaims(
            record.service, doc_id, int(issued.timestamp()), digest, record.title_zh, issuer
        )
        token = signer.sign(claims)
        base = catalog.station.verify_url
        code = verify_url(base, token) if base else token
    else:
        code = f"KIOSK-DOC:{doc_id}"
    _qr(c, code, right - 38 * mm, 34 * mm, 38 * mm)
    _signed_fields(c, right, doc_id, digest if signer is not None else "")
    c.setFont(FONT_NAME, 8)
    c.drawString(
        left, 14 * mm, "本证明仅证明打印时的记录 / Valid for the record at the time of printing."
    )
    c.showPage()


SIGNED_ZH = "签名覆盖：文件类型、编号、打印时间、出具单位及上列全部内容"
SIGNED_EN = "Signed: type, No., time, issuer and all the content above"


def _signed_fields(c: Canvas, right: float, doc_id: str, digest: str) -> None:
    """Under the QR code: the short document number, and what the signature covers, so that a
    reader of the verification page knows what to compare with the paper."""
    c.setFont(FONT_NAME, 9)
    c.drawRightString(right, 29.5 * mm, f"编号 No. {doc_id}")
    if not digest:
        return
    c.setFont(FONT_NAME, 7)
    c.drawRightString(right, 25.5 * mm, SIGNED_ZH)
    c.drawRightString(right, 22.5 * mm, SIGNED_EN)
    c.drawRightString(right, 19.5 * mm, f"内容摘要 Content hash {digest[:8]}…")


def masked_record(record: Record, identity: Identity) -> Record:
    """The record as the screen may show it: the resident's name and ID number masked.

    The paper carries them in full; the preview on a screen in a public hall does not.
    """

    def mask(value: str) -> str:
        for secret, shown in (
            (identity.id_number, identity.masked_id_number),
            (identity.name, identity.masked_name),
        ):
            if secret:
                value = value.replace(secret, shown)
        return value

    table = record.table
    if table is not None:
        table = replace(table, rows=tuple(tuple(mask(c) for c in row) for row in table.rows))
    return replace(
        record,
        fields=tuple((label, mask(value)) for label, value in record.fields),
        table=table,
        notes=tuple(mask(n) for n in record.notes),
    )


def record_certificates(
    records: list[Record],
    *,
    catalog: Catalog,
    txn_id: str,
    issued: dt.datetime,
    font: Path,
    signer: Signer | None = None,
) -> Document:
    """Certificates on A4, one page per record (a bundle prints as one job of several pages).

    With a ``signer`` each page's QR code holds a signed verification token
    (:mod:`flows.tokens`); without one, just the document number.
    """
    if not records:
        raise DocumentError("no records to print")
    register_font(font)
    doc_id = document_id(txn_id, records[0].service)
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=A4, pageCompression=1)
    c.setTitle(f"{records[0].title_zh} {doc_id}")
    c.setAuthor(catalog.station.name.zh)
    for number, record in enumerate(records, start=1):
        page_id = doc_id if len(records) == 1 else f"{doc_id}-{number}"
        _page(c, record, catalog=catalog, doc_id=page_id, issued=issued, signer=signer)
    c.save()
    return Document(doc_id=doc_id, kind=records[0].service, pdf=buf.getvalue(), pages=len(records))
