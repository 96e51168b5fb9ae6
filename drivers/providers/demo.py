"""The demo document provider: records from a synthetic SQLite dataset the project generates.

No real person is in it: the residents are invented (see :mod:`flows.synthetic`) and every value
is derived from a hash of the invented ID number, so the same resident always gets the same
records. The dataset is a file like a real platform's database would be (``generate_dataset``),
and the provider only reads it. Even so it holds no names or ID numbers: records are keyed by a
hash of the ID number, and the fields that come from the card (``@address``, ``@authority``) are
filled in from the identity in memory when a record is fetched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from flows.errors import ProviderUnavailable, RecordNotFound
from flows.models import DeviceHealth, DeviceState, Identity, Record, RecordTable
from flows.synthetic import DEMO_RESIDENT, SYNTHETIC_RESIDENTS

EMPLOYERS = (
    "淄博高新区鲁泰纺织有限公司",
    "四宝山街道社区卫生服务中心",
    "山东华光陶瓷股份有限公司",
    "高新区个体劳动者(灵活就业)",
)


def _seed(number: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{number}".encode()).digest()[:8], "big")


def _months_back(today: dt.date, n: int) -> list[str]:
    month = dt.date(today.year, today.month, 1)
    out = []
    for _ in range(n):
        month = (month - dt.timedelta(days=1)).replace(day=1)
        out.append(month.strftime("%Y-%m"))
    return out


ISSUERS = {
    "social_insurance_certificate": ("淄博市社会保险事业中心", "Zibo Social Insurance Centre"),
    "medical_insurance_record": ("淄博市医疗保障局", "Zibo Healthcare Security Bureau"),
    "retirement_status": ("淄博市社会保险事业中心", "Zibo Social Insurance Centre"),
    "residence_certificate": ("淄博市公安局高新区分局", "Zibo Public Security, High-tech Zone"),
    "personal_tax_record": ("国家税务总局淄博市税务局", "Zibo Taxation Bureau"),
    "real_estate_query": ("淄博市不动产登记中心", "Zibo Real Estate Registration Centre"),
    "business_licence_print": ("淄博市市场监督管理局", "Zibo Market Regulation Bureau"),
}
"""The agency each record is issued by (printed as 出具单位; the station only prints it)."""


def birth_of(id_number: str) -> dt.date:
    """The birth date an 18-character ID number carries (characters 7 to 14)."""
    return dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))


def pensionable(person: Identity, today: dt.date) -> bool:
    """Drawing a pension: 60 for men, 55 for women (the ages before the 2025 reform, which
    raises them by months from 2025; the demo residents are far from the boundary)."""
    born = birth_of(person.id_number)
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return age >= (55 if person.sex == "女" else 60)


def build_records(person: Identity, today: dt.date) -> dict[str, dict[str, Any]]:
    """Every service's record for one synthetic resident (labels bilingual, values Chinese),
    consistent with the resident's age: a retired resident draws a pension and pays in nothing."""
    n = person.id_number
    s = _seed(n, "pension")
    retired = pensionable(person, today)
    born = birth_of(n)
    first = dt.date(max(1995, born.year + 22 + s % 6), 1 + s % 12, 1)  # the scheme's start
    end = dt.date(born.year + (55 if person.sex == "女" else 60), born.month, 1)
    last = min(today, end) if retired else today
    months = max(0, (last.year - first.year) * 12 + (last.month - first.month))
    base = 3800 + (s >> 8) % 4000
    pension = 2100 + (s >> 12) % 1800
    employer = EMPLOYERS[(s >> 16) % len(EMPLOYERS)]
    if retired:
        insurance = [
            ["参保状态 Status", "待遇领取 (Drawing a pension)"],
            ["首次参保年月 First month", first.strftime("%Y-%m")],
            ["累计缴费月数 Months paid", str(months)],
            ["退休年月 Retired", end.strftime("%Y-%m")],
            ["退休前单位 Last employer", employer],
        ]
        paid = [
            "近六个月养老金发放 Pension paid in the last six months",
            ["年月 Month", "发放金额 Amount", "发放方式 Paid into"],
            [
                [m, f"{pension:.2f}", "社保卡金融账户 (Social security card)"]
                for m in _months_back(today, 6)
            ],
        ]
        drawing = [
            ["领取状态 Status", "正常领取 (Receiving)"],
            [f"{today.year} 年度认证 This year's check", f"已认证 {today.year}-03-1{s % 9}"],
            ["认证方式 Method", "自助终端人脸识别 (Self-service terminal)"],
        ]
    else:
        insurance = [
            ["参保状态 Status", "正常参保 (Contributing)"],
            ["首次参保年月 First month", first.strftime("%Y-%m")],
            ["累计缴费月数 Months paid", str(months)],
            ["缴费单位 Paid through", employer],
        ]
        paid = [
            "近六个月缴费明细 Contributions of the last six months",
            ["年月 Month", "缴费基数 Base", "个人缴费 Personal", "单位缴费 Employer"],
            [
                [m, f"{base:.2f}", f"{base * 0.08:.2f}", f"{base * 0.16:.2f}"]
                for m in _months_back(today, 6)
            ],
        ]
        drawing = [
            ["领取状态 Status", "未领取：在职参保 (Not drawing: still contributing)"],
            ["可领取年月 From", end.strftime("%Y-%m")],
        ]
    tax = _seed(n, "tax") % 300
    income = pension if retired else base
    records: dict[str, dict[str, Any]] = {
        "social_insurance_certificate": {
            "title": ["社会保险参保证明", "Social Insurance Participation Certificate"],
            "fields": [["参保险种 Insurance", "企业职工基本养老保险"], *insurance],
            "table": paid,
        },
        "medical_insurance_record": {
            "title": ["城乡居民医疗保险缴费记录", "Resident Medical Insurance Payment Record"],
            "fields": [
                ["参保状态 Status", "正常参保 (Insured)"],
                ["参保类别 Scheme", "城乡居民基本医疗保险"],
            ],
            "table": [
                "缴费记录 Payments",
                ["年度 Year", "个人缴费 Paid", "缴费日期 Date"],
                [
                    [str(today.year), "400.00", f"{today.year - 1}-12-0{1 + s % 9}"],
                    [str(today.year - 1), "380.00", f"{today.year - 2}-12-1{s % 9}"],
                ],
            ],
        },
        "retirement_status": {
            "title": ["养老金领取资格认证状态", "Pension Entitlement Check"],
            "fields": drawing,
        },
        "residence_certificate": {
            "title": ["户籍证明", "Residence Registration Certificate"],
            "fields": [
                ["住址 Address", "@address"],
                ["户号 Household no.", f"{_seed(n, 'hh') % 10**9:09d}"],
                ["户主关系 Relation", "户主 (Head of household)"],
                ["登记机关 Registered by", "@authority"],
            ],
        },
        "personal_tax_record": {
            "title": ["个人所得税纳税记录", "Personal Income Tax Record"],
            "fields": [["纳税人识别号 Taxpayer no.", "与身份证号码相同 (same as ID)"]],
            "table": [
                "近六个月 Last six months",
                ["所属期 Period", "收入 Income", "已缴税额 Tax"],
                [
                    [m, f"{income:.2f}", f"{0 if retired else tax / 10:.2f}"]
                    for m in _months_back(today, 6)
                ],
            ],
        },
        "real_estate_query": {
            "title": ["不动产登记信息查询结果", "Real Estate Registration Query"],
            "fields": [["查询结果 Result", "名下有 1 处不动产 (1 property)"]],
            "table": [
                "不动产 Properties",
                ["坐落 Location", "面积 Area", "证书号 Certificate"],
                [
                    [
                        "四宝山街道示例小区 3 号楼 2 单元 501",
                        f"{80 + s % 60} m²",
                        f"鲁(2019)淄博市不动产权第{s % 10**7:07d}号",
                    ]
                ],
            ],
        },
    }
    if person.id_number == DEMO_RESIDENT.id_number:
        records["business_licence_print"] = {
            "title": ["营业执照登记信息", "Business Licence Registration"],
            "fields": [
                ["名称 Name", "四宝山张记早点铺"],
                ["类型 Type", "个体工商户 (Individual business)"],
                ["统一社会信用代码 Credit code", "92370303MA3C000X1A"],
                ["经营场所 Premises", "四宝山街道示例路 18 号"],
                ["经营范围 Scope", "餐饮服务"],
            ],
        }
    for service, body in records.items():
        body["issuer"] = list(ISSUERS.get(service, ("", "")))
    return records


def _key(person: Identity) -> str:
    return hashlib.sha256(b"demo-dataset:" + person.id_number.encode()).hexdigest()


def generate_dataset(path: Path, *, today: dt.date | None = None) -> Path:
    """Write the synthetic dataset (idempotent: an existing file is kept)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    day = today or dt.date.today()
    db = sqlite3.connect(tmp)
    with db:
        db.execute(
            "CREATE TABLE records (id_number TEXT, service TEXT, body TEXT,"
            " PRIMARY KEY (id_number, service))"
        )
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('generated', ?)", (day.isoformat(),))
        for person in SYNTHETIC_RESIDENTS:
            for service, body in build_records(person, day).items():
                db.execute(
                    "INSERT INTO records VALUES (?, ?, ?)",
                    (_key(person), service, json.dumps(body, ensure_ascii=False)),
                )
    db.close()
    tmp.replace(path)
    return path


class DemoProvider:
    """Implements :class:`flows.ports.DocumentProvider` over the synthetic dataset."""

    def __init__(self, dataset: Path, *, name: str = "provider.demo") -> None:
        self.name = name
        self.dataset = dataset

    def fetch(self, service: str, identity: Identity, *, deadline_s: float) -> Record:
        started = time.monotonic()
        try:
            db = sqlite3.connect(
                f"file:{self.dataset}?mode=ro", uri=True, timeout=max(0.1, deadline_s)
            )
        except sqlite3.Error as err:
            raise ProviderUnavailable("the demo dataset cannot be opened") from err
        try:
            row = db.execute(
                "SELECT body FROM records WHERE id_number = ? AND service = ?",
                (_key(identity), service),
            ).fetchone()
        except sqlite3.Error as err:
            raise ProviderUnavailable("the demo dataset cannot be read") from err
        finally:
            db.close()
        if row is None:
            raise RecordNotFound(f"no {service} record for this resident")
        if time.monotonic() - started > deadline_s:
            raise ProviderUnavailable("the demo dataset answered too late")
        return record_from_json(service, json.loads(row[0]), identity)

    def health(self) -> DeviceHealth:
        state = DeviceState.OK if self.dataset.exists() else DeviceState.OFFLINE
        return DeviceHealth(
            self.name, "provider", state, () if self.dataset.exists() else ("dataset_missing",)
        )


def record_from_json(service: str, body: dict[str, Any], identity: Identity) -> Record:
    """A record from the JSON shape shared by the demo data and the HTTP platform."""
    title = body["title"]
    fields = [("姓名 Name", identity.name), ("公民身份号码 ID number", identity.id_number)]
    from_card = {"@address": identity.address, "@authority": identity.authority}
    fields += [
        (str(label), from_card.get(str(value), str(value)))
        for label, value in body.get("fields", [])
    ]
    table = None
    if body.get("table"):
        table_title, headers, rows = body["table"]
        table = RecordTable(
            str(table_title), tuple(map(str, headers)), tuple(tuple(map(str, r)) for r in rows)
        )
    issuer = body.get("issuer") or ["", ""]
    return Record(
        service,
        str(title[0]),
        str(title[1]),
        tuple(fields),
        table,
        tuple(map(str, body.get("notes", []))),
        issuer_zh=str(issuer[0]),
        issuer_en=str(issuer[1]),
    )
