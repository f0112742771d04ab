"""The legal-aid pre-screen over the controller's real HTTP API, as an agent's desk session calls it."""


def test_prescreen_over_http(clean_stack):
    s = clean_stack
    household = {"matter": "maintenance", "household_size": 3, "household_monthly_income": 5400,
                 "places": {"respondent_domicile": "meishan"}}
    chengdu = s.api("/api/legal-aid/prescreen", "POST", {"city": "chengdu", **household})
    leshan = s.api("/api/legal-aid/prescreen", "POST", {"city": "leshan", **household})
    assert chengdu["eligibility"] == "likely" and leshan["eligibility"] == "not"
    assert chengdu["jurisdiction"]["cities"] == ["meishan"] and chengdu["rules_version"]
    code, err = s.api_error("/api/legal-aid/prescreen", "POST", {"city": "leshan", "matter": "maintenance",
                                                                "household_size": 2, "household_monthly_income": -5})
    assert code == 400 and "negative" in err["error"]
    code, err = s.api_error("/api/legal-aid/prescreen", "POST", raw=b"{not json")
    assert code == 400
