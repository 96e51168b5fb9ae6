"""The demo catalog with the bundles of issue 25: four notices, a mixed one, one with a ticket."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from flows.catalog import Catalog, catalog_table, parse_catalog

DEMO = Path(__file__).resolve().parents[2] / "assets" / "catalog" / "demo.toml"
NOTICES = [
    "disability_certificate_checklist",
    "temporary_assistance_checklist",
    "elderly_allowance_checklist",
    "food_licence_renewal_checklist",
]


def _bundle(code: str, zh: str, en: str, services: list[str]) -> dict[str, Any]:
    return {
        "code": code,
        "category": "civil",
        "name": {"zh": zh, "en": en},
        "description": {"zh": f"{zh}，一次办好。", "en": f"{en}, in one visit."},
        "spoken": {"zh": zh, "en": en},
        "services": services,
    }


def demo_table() -> dict[str, Any]:
    return catalog_table(DEMO.read_bytes(), source=str(DEMO))


def bundle_catalog(table: dict[str, Any] | None = None) -> Catalog:
    data = copy.deepcopy(table or demo_table())
    for service in data["services"]:
        if service["code"] in ("temporary_assistance_checklist", "elderly_allowance_checklist"):
            service["window"] = "window_3"
    data["bundles"] += [
        _bundle("support_bundle", "帮扶一件事", "Support: everything at once", NOTICES),
        _bundle(
            "pension_bundle",
            "养老一件事",
            "Pension: everything at once",
            [
                "social_insurance_certificate",
                "retirement_status",
                "elderly_allowance_checklist",
                "temporary_assistance_checklist",
            ],
        ),
        _bundle(
            "disability_bundle",
            "残疾人服务一件事",
            "Disability services: everything at once",
            ["disability_certificate_checklist", "queue_ticket"],
        ),
    ]
    return parse_catalog(data, source="bundles")
