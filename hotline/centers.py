"""`hotline centers check`: what operators still have to fill in about the legal-aid centers
(config/legal_aid_offices.yaml): Sichuan's 21 city-level and 183 county-level divisions and
Chongqing's, each center's name, address, phone number and hours."""
from __future__ import annotations

import json

from rich.table import Table

from hotline.common import _config, console, out


def centers_report(cfg) -> dict:
    """Every Sichuan city and county without a center in the file, and every listed center's missing fields."""
    from core.places import SICHUAN, counties, divisions
    by_code = cfg.legal_aid_offices.by_code
    sichuan_cities = [d for d in divisions().values() if d.province == SICHUAN and d.level == "city"]
    sichuan_counties = counties(SICHUAN)
    unlisted = [{"code": d.code, "division": d.full_name, "level": d.level}
                for d in sorted(sichuan_cities, key=lambda d: d.code) + sichuan_counties if d.code not in by_code]
    incomplete = [{"code": o.code, "division": divisions()[o.code].full_name, "name": o.name, "missing": o.missing()}
                  for o in cfg.legal_aid_offices.offices if o.missing()]
    return {"sichuan_cities": len(sichuan_cities), "sichuan_counties": len(sichuan_counties),
            "listed": len(by_code), "unlisted": unlisted, "incomplete": incomplete}


def cmd_centers(args) -> int:
    r = centers_report(_config(args))
    if args.json:
        print(json.dumps(r, ensure_ascii=False, indent=2))
    else:
        t = Table("code", "division", "center", "missing", title=f"{len(r['incomplete'])} listed centers incomplete")
        for row in r["incomplete"]:
            t.add_row(row["code"], row["division"], row["name"], ", ".join(row["missing"]))
        out.print(t)
        t = Table("code", "division", "level", title=f"{len(r['unlisted'])} Sichuan divisions without a center in "
                                                     f"config/legal_aid_offices.yaml")
        for row in r["unlisted"]:
            t.add_row(row["code"], row["division"], row["level"])
        out.print(t)
        console.print(f"{r['listed']} centers listed; Sichuan has {r['sichuan_cities']} cities and "
                      f"{r['sichuan_counties']} county-level divisions", highlight=False)
    return 1 if (args.strict and (r["unlisted"] or r["incomplete"])) else 0


def register(sub) -> None:
    s = sub.add_parser("centers", help="legal-aid centers: what is still missing (names, addresses, phones, hours)")
    s.add_argument("action", choices=["check"])
    s.add_argument("--json", action="store_true")
    s.add_argument("--strict", action="store_true", help="exit 1 if anything is missing")
    s.set_defaults(func=cmd_centers)
