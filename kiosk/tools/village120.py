# ruff: noqa: E501  (a table of names: one matter a line)
"""Writes ``assets/catalog/village120.toml``: a town station's catalog of 120 matters in 12
categories and 5 bundles (一件事), with realistic names in Chinese and English, for the finding
tests and ``make run CATALOG=assets/catalog/village120.toml``.

    python -m kiosk.tools.village120 [OUT]

Each matter is a certificate printed here (``c``: A4, needs the ID card), a materials notice for
a staffed window (``n``) or a queue ticket (``t``); notices and tickets need no card.
"""

from __future__ import annotations

import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "assets" / "catalog" / "village120.toml"

CATEGORIES: list[tuple[str, str, str, str, list[tuple[str, str, str]]]] = [
    (
        "pension",
        "养老保险",
        "Pensions",
        "elder",
        [
            (
                "城乡居民基本养老保险待遇领取资格认证",
                "Residents' pension: yearly entitlement check",
                "n",
            ),
            ("城乡居民基本养老保险参保登记", "Residents' pension: enrolment", "n"),
            ("城乡居民养老保险缴费证明打印", "Residents' pension: proof of contributions", "c"),
            ("养老保险个人权益记录查询打印", "Pension: personal rights record", "c"),
            ("城乡居民养老保险待遇申领", "Residents' pension: claim benefits", "n"),
            ("养老保险关系转移接续申请", "Pension: transfer between schemes", "n"),
            ("城乡居民养老保险缴费档次变更", "Residents' pension: change contribution level", "n"),
            ("被征地农民养老保险补贴申请", "Pension subsidy for farmers whose land was taken", "n"),
            ("养老金发放明细查询打印", "Pension payments: statement", "c"),
            ("城乡居民养老保险注销登记", "Residents' pension: close the account", "n"),
            ("高龄津贴申领", "Old-age allowance for the very old: claim", "n"),
            ("养老保险待遇领取证明", "Proof of receiving a pension", "c"),
        ],
    ),
    (
        "medical",
        "医疗保险",
        "Medical insurance",
        "heart",
        [
            ("城乡居民基本医疗保险参保登记", "Residents' medical insurance: enrolment", "n"),
            ("医疗保险参保证明打印", "Medical insurance: proof of cover", "c"),
            ("医保个人账户余额查询", "Medical insurance: account balance", "c"),
            ("异地就医备案", "Medical treatment elsewhere: register", "n"),
            ("门诊慢特病待遇认定申请", "Chronic illness outpatient benefits: apply", "n"),
            ("医疗费用手工报销", "Medical costs: claim reimbursement", "n"),
            ("医保电子凭证激活指导", "Medical insurance e-voucher: help to activate", "t"),
            ("城乡居民医保缴费证明", "Residents' medical insurance: proof of payment", "c"),
            ("生育医疗费用报销", "Maternity medical costs: reimbursement", "n"),
            ("医保参保信息变更", "Medical insurance: change your details", "n"),
            ("大病保险待遇申请", "Serious illness insurance: apply", "n"),
            ("医疗救助申请", "Medical assistance: apply", "n"),
        ],
    ),
    (
        "socialcard",
        "社保卡",
        "Social security card",
        "shield",
        [
            ("社会保障卡申领", "Social security card: apply", "n"),
            ("社会保障卡补换领", "Social security card: replace", "n"),
            ("社会保障卡挂失与解挂", "Social security card: report lost or found", "t"),
            ("社会保障卡密码重置", "Social security card: reset the PIN", "t"),
            ("社会保障卡信息变更", "Social security card: change details", "n"),
            ("社会保障卡应用状态查询", "Social security card: status", "c"),
            ("社会保障卡金融账户激活", "Social security card: activate the bank account", "t"),
            ("社会保险参保证明", "Social insurance: proof of cover", "c"),
            ("社会保险缴费明细打印", "Social insurance: contribution statement", "c"),
            ("电子社保卡签发指导", "Electronic social security card: help", "t"),
            ("社会保险个人信息登记", "Social insurance: register your details", "n"),
            ("社会保险关系转出申请", "Social insurance: transfer out", "n"),
        ],
    ),
    (
        "fund",
        "公积金",
        "Housing fund",
        "fund",
        [
            ("住房公积金个人缴存明细打印", "Housing fund: statement of deposits", "c"),
            ("住房公积金缴存证明", "Housing fund: proof of deposits", "c"),
            ("住房公积金账户余额查询", "Housing fund: balance", "c"),
            ("住房公积金提取（租房）", "Housing fund: withdraw for rent", "n"),
            ("住房公积金提取（退休）", "Housing fund: withdraw on retirement", "n"),
            ("住房公积金贷款申请", "Housing fund loan: apply", "n"),
            ("住房公积金贷款还款明细", "Housing fund loan: repayment statement", "c"),
            ("灵活就业人员公积金缴存登记", "Housing fund for the self-employed: register", "n"),
            ("住房公积金账户转移", "Housing fund: transfer the account", "n"),
            ("住房公积金个人信息变更", "Housing fund: change your details", "n"),
            ("住房公积金贷款结清证明", "Housing fund loan: proof of repayment", "c"),
            ("住房公积金业务预约取号", "Housing fund window: take a number", "t"),
        ],
    ),
    (
        "residence",
        "户籍证件",
        "Residence and ID",
        "person",
        [
            ("户籍证明开具", "Proof of household registration", "c"),
            ("居民身份证申领", "Resident ID card: apply", "n"),
            ("居民身份证换领补领", "Resident ID card: renew or replace", "n"),
            ("临时身份证明", "Temporary proof of identity", "n"),
            ("出生登记（户口）", "Birth: register in the household", "n"),
            ("户口迁移（市内）", "Move household registration within the city", "n"),
            ("居住证申领", "Residence permit: apply", "n"),
            ("居住证签注", "Residence permit: renew", "n"),
            ("户口簿补领", "Household register booklet: replace", "n"),
            ("无犯罪记录证明申请", "Certificate of no criminal record: apply", "n"),
            ("户籍信息变更更正", "Household registration: correct details", "n"),
            ("死亡注销户口", "Death: remove from the household register", "n"),
        ],
    ),
    (
        "civil",
        "民政婚育",
        "Civil affairs",
        "family",
        [
            ("婚姻登记预约", "Marriage registration: appointment", "t"),
            ("生育登记", "Birth registration (family planning)", "n"),
            ("最低生活保障申请", "Minimum living allowance: apply", "n"),
            ("特困人员救助供养申请", "Support for people in extreme poverty: apply", "n"),
            ("临时救助申请", "Emergency assistance: apply", "n"),
            ("残疾人两项补贴申请", "Two allowances for disabled people: apply", "n"),
            ("残疾人证申领", "Disability certificate: apply", "n"),
            ("老年人优待证办理", "Senior citizen's card: apply", "n"),
            ("低保家庭证明", "Proof of a low-income household", "c"),
            ("孤儿基本生活费申请", "Orphans' living allowance: apply", "n"),
            ("殡葬补贴申领", "Funeral subsidy: claim", "n"),
            ("独生子女父母奖励申请", "Reward for parents of an only child: apply", "n"),
        ],
    ),
    (
        "farm",
        "农业农村",
        "Farming and village",
        "farm",
        [
            ("耕地地力保护补贴查询", "Farmland protection subsidy: statement", "c"),
            ("农村宅基地使用申请", "Rural homestead: apply to use", "n"),
            ("农村土地承包经营权证明", "Proof of rural land contract rights", "c"),
            ("农机购置补贴申请", "Farm machinery subsidy: apply", "n"),
            ("惠农补贴发放明细", "Farm subsidy payments: statement", "c"),
            ("农村危房改造申请", "Rural unsafe house renovation: apply", "n"),
            ("土地流转合同备案", "Land transfer contract: file", "n"),
            ("村集体经济组织成员证明", "Proof of village collective membership", "c"),
        ],
    ),
    (
        "employment",
        "就业创业",
        "Jobs",
        "work",
        [
            ("就业创业证申领", "Employment and business card: apply", "n"),
            ("失业登记", "Register as unemployed", "n"),
            ("失业保险金申领", "Unemployment benefit: claim", "n"),
            ("创业担保贷款申请", "Guaranteed start-up loan: apply", "n"),
            ("职业技能培训报名", "Job skills training: sign up", "t"),
            ("灵活就业社保补贴申请", "Social insurance subsidy for the self-employed", "n"),
            ("就业失业登记证明", "Proof of employment status", "c"),
            ("农民工工资争议咨询", "Migrant workers' unpaid wages: advice", "t"),
        ],
    ),
    (
        "tax",
        "税务",
        "Tax",
        "tax",
        [
            ("个人所得税纳税记录打印", "Individual income tax: record of payments", "c"),
            ("城乡居民社保费缴纳", "Residents' social insurance contributions: pay", "t"),
            ("完税证明开具", "Proof of tax paid", "c"),
            ("发票代开", "Invoice issued on your behalf", "n"),
            ("个体工商户定期定额申报", "Sole traders: fixed-amount tax return", "n"),
            ("车船税缴纳证明", "Vehicle and vessel tax: proof of payment", "c"),
            ("房产交易税费咨询", "Property transaction taxes: advice", "t"),
            ("税务登记信息变更", "Tax registration: change details", "n"),
        ],
    ),
    (
        "business",
        "市场主体",
        "Business",
        "shop",
        [
            ("个体工商户设立登记", "Sole trader: register", "n"),
            ("个体工商户变更登记", "Sole trader: change registration", "n"),
            ("个体工商户注销登记", "Sole trader: close", "n"),
            ("营业执照补领", "Business licence: replace", "n"),
            ("食品经营许可申请", "Food business permit: apply", "n"),
            ("小作坊登记", "Small food workshop: register", "n"),
            ("企业信用信息查询打印", "Company credit record", "c"),
            ("农民专业合作社设立登记", "Farmers' cooperative: register", "n"),
        ],
    ),
    (
        "housing",
        "住房不动产",
        "Housing and property",
        "house",
        [
            ("不动产权属证明查询", "Proof of property ownership", "c"),
            ("不动产登记资料查询", "Property register: records", "c"),
            ("公租房申请", "Public rental housing: apply", "n"),
            ("住房保障资格证明", "Proof of eligibility for housing support", "c"),
            ("房屋租赁登记备案", "Tenancy: register", "n"),
            ("不动产抵押登记", "Property mortgage: register", "n"),
            ("农村房屋不动产登记", "Rural house: property registration", "n"),
            ("住房租赁补贴申请", "Rent subsidy: apply", "n"),
        ],
    ),
    (
        "desk",
        "窗口与便民",
        "Windows and help",
        "ticket",
        [
            (
                "老年人、残疾人、孕妇绿色通道优先取号",
                "Priority number for the elderly, disabled and pregnant",
                "t",
            ),
            ("综合窗口取号", "General window: take a number", "t"),
            ("社保医保窗口取号", "Social and medical insurance window: take a number", "t"),
            ("不动产窗口取号", "Property window: take a number", "t"),
            ("帮办代办服务预约", "Someone to help you with a matter: appointment", "t"),
            ("政务服务投诉建议", "Complaints and suggestions", "t"),
            ("证照邮寄送达登记", "Certificates sent by post: register", "n"),
            ("法律援助申请", "Legal aid: apply", "n"),
        ],
    ),
]

BUNDLES = [
    (
        "birth_bundle",
        "出生一件事",
        "A birth, one visit",
        "baby",
        ["birth_reg", "residence_05", "medical_01", "socialcard_01"],
    ),
    (
        "retire_bundle",
        "退休一件事",
        "Retiring, one visit",
        "elder",
        ["pension_04", "fund_05", "pension_05"],
    ),
    (
        "death_bundle",
        "身后一件事",
        "After a death, one visit",
        "family",
        ["residence_12", "civil_11", "pension_10"],
    ),
    (
        "disabled_bundle",
        "残疾人服务一件事",
        "Services for disabled people, one visit",
        "help",
        ["civil_07", "civil_06"],
    ),
    (
        "business_bundle",
        "开办个体户一件事",
        "Opening a small business, one visit",
        "shop",
        ["business_01", "tax_04"],
    ),
]

NOTICE = """[services.notice]
legal_basis = {{ zh = "《{zh}》办事指南（本县政务服务中心）", en = "Service guide of the county centre: {en}" }}
time_limit = {{ zh = "材料齐全的，5个工作日内办结", en = "Within 5 working days once all papers are in" }}
fees = {{ zh = "不收费", en = "Free of charge" }}
place = {{ zh = "镇便民服务中心综合窗口", en = "Town service centre, general window" }}
[[services.notice.materials]]
name = {{ zh = "申请人居民身份证", en = "The applicant's resident ID card" }}
[[services.notice.materials]]
name = {{ zh = "户口簿", en = "Household register booklet" }}
original = false
[[services.notice.materials]]
name = {{ zh = "申请表（窗口领取）", en = "Application form (from the window)" }}
"""


def q(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def build() -> str:
    out = [
        "# A town station's catalog: 120 matters in 12 categories and 5 bundles (一件事).",
        "# Written by kiosk/tools/village120.py; used by the finding tests and",
        "# `make run CATALOG=assets/catalog/village120.toml`.",
        "version = 1",
        "",
        "[station]",
        'name = { zh = "城关镇便民服务站", en = "Chengguan Town Service Station" }',
        'help_phone = "0312-5550123"',
        'duty_hours = "08:00-18:00"',
        'hotline = "12345"',
        "",
    ]
    codes: dict[str, str] = {}
    for code, zh, en, icon, _ in CATEGORIES:
        out += ["[[categories]]", f'code = "{code}"', f'name = {{ zh = "{zh}", en = "{en}" }}']
        out += [f'icon = "{icon}"', ""]
    for cat, _, _, _, items in CATEGORIES:
        for i, (zh, en, kind) in enumerate(items, 1):
            code = f"{cat}_{i:02d}"
            codes[code] = kind
            out += ["[[services]]", f'code = "{code}"', f'category = "{cat}"']
            out.append(f'name = {{ zh = "{q(zh)}", en = "{q(en)}" }}')
            if kind == "c":
                desc = ("打印盖章的证明", "A stamped certificate printed here")
                out += [
                    'icon = "document"',
                    'template = "record_certificate"',
                    'outputs = ["a4", "thermal"]',
                ]
            elif kind == "n":
                desc = ("打印所需材料的一次性告知单", "A list of everything the window will need")
                out += [
                    'icon = "list"',
                    'identity = "none"',
                    'provider = "none"',
                    'outputs = ["thermal"]',
                ]
            else:
                desc = ("打印窗口排队号", "A queue number for the window")
                out += [
                    'icon = "ticket"',
                    'identity = "none"',
                    'provider = "none"',
                    'outputs = ["thermal"]',
                ]
            out.append(f'description = {{ zh = "{desc[0]}", en = "{desc[1]}" }}')
            out.append(f'spoken = {{ zh = "{q(zh)}。{desc[0]}", en = "{q(en)}. {desc[1]}" }}')
            if kind == "n":
                out.append(NOTICE.format(zh=q(zh), en=q(en)).rstrip())
            out.append("")
    for code, zh, en, icon, parts in BUNDLES:
        parts = [p if p in codes else "residence_05" for p in parts]
        parts = list(dict.fromkeys(parts))
        cat = parts[0].rsplit("_", 1)[0]
        out += ["[[bundles]]", f'code = "{code}"', f'category = "{cat}"']
        out.append(f'name = {{ zh = "{zh}", en = "{en}" }}')
        out.append(f'description = {{ zh = "{zh}：一次办好", en = "{en}: all at once" }}')
        out.append(f'spoken = {{ zh = "{zh}", en = "{en}" }}')
        out += [f'icon = "{icon}"', f"services = {parts!r}".replace("'", '"'), ""]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else OUT
    path.write_text(build(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
