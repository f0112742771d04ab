"""Splitting and encoding texts for SMPP (interop/sms.py), sending hours, and the sms config section's
errors. The wire itself is tested against the SMSC simulator in tests/integration/test_sms.py."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from core.config import ConfigError, load_config
from aiosmpplib.state import TON

from interop.sms import UDHI, smpp_address, smpp_number, split, submit_pdu, within
from simulators.smsc import pdu_data_coding
from tests.config_tree import ROOT

TIBETAN = "བོད་ཡིག"      # 7 characters


def test_short_latin_text_is_one_gsm_sms():
    [p] = split("Your appointment is confirmed: 10 Dec 09:30, code A1B2C3D4", 7)
    assert (p.encoding, p.esm_class) == ("gsm0338", 0)


def test_160_gsm_characters_fit_one_sms_and_161_need_two_parts_of_153():
    assert len(split("a" * 160, 1)) == 1
    parts = split("a" * 161, 1)
    assert [len(p.text) for p in parts] == [153, 8]
    assert all(p.esm_class == UDHI for p in parts)


def test_chinese_is_ucs2_70_per_sms_and_67_per_part():
    [one] = split("法" * 70, 1)
    assert (one.encoding, one.data) == ("ucs2", ("法" * 70).encode("utf-16-be"))
    parts = split("法" * 71, 9)
    assert [len(p.text) for p in parts] == [67, 4]
    assert all(p.encoding == "ucs2" and len(p.data) <= 140 for p in parts)


def test_tibetan_in_three_parts_carries_one_reference_and_numbered_udh():
    text = TIBETAN * 20                        # 140 characters: 67 + 67 + 6
    parts = split(text, 0x2A)
    assert len(parts) == 3
    for n, p in enumerate(parts, 1):
        assert p.data[:6] == bytes([0x05, 0x00, 0x03, 0x2A, 3, n])    # IEI 0: 8-bit reference
        assert p.data[6:].decode("utf-16-be") == p.text
    assert "".join(p.text for p in parts) == text


def test_the_reference_is_one_octet_of_the_message_id():
    assert split("法" * 80, 0x1234)[0].data[3] == 0x34


def test_a_surrogate_pair_is_never_cut_between_parts():
    text = "法" * 66 + "😀" + "法" * 10
    parts = split(text, 1)
    assert "".join(p.text for p in parts) == text


def test_empty_and_huge_texts_are_refused():
    with pytest.raises(ValueError, match="empty"):
        split("", 1)
    with pytest.raises(ValueError, match="too long"):
        split("法" * 67 * 256, 1)


def test_destination_numbers_lose_the_plus_and_say_they_are_international():
    assert smpp_number("+86 138-0013-8000") == "8613800138000"
    assert smpp_address("008613800138000") == ("8613800138000", TON.INTERNATIONAL)
    assert smpp_address("13800138000") == ("13800138000", TON.UNKNOWN)


def test_a_part_asks_for_a_receipt_and_carries_its_coding():
    [p] = split("法律援助", 1)
    sm = submit_pdu(p, "12348", "+8613800138000")
    pdu = sm.pdu()
    assert (sm.registered_delivery, sm.destination.ton, sm.source.ton) == (1, TON.INTERNATIONAL, TON.UNKNOWN)
    assert pdu_data_coding(pdu) == 8 and pdu.endswith("法律援助".encode("utf-16-be"))
    assert submit_pdu(p, "HOTLINE", "13800138000").source.ton == TON.ALPHANUMERIC


def test_sending_hours_are_local_time():
    tz = "Asia/Shanghai"
    assert within(datetime(2026, 12, 6, 2, 0, tzinfo=timezone.utc), "09:00-20:00", tz)       # 10:00 there
    assert not within(datetime(2026, 12, 6, 15, 0, tzinfo=timezone.utc), "09:00-20:00", tz)  # 23:00 there


@pytest.mark.parametrize("sms, field", [
    ({"enabled": True, "system_id": "hotline"}, "sms: Value error, enabled needs host"),
    ({"system_id": "a-very-long-system-id"}, "sms.system_id"),
    ({"sending_hours": "21:00-07:00"}, "sms.sending_hours"),
    ({"throughput_per_second": 0}, "sms.throughput_per_second"),
    ({"source_address": "12348 hotline"}, "sms.source_address"),
    ({"reconnect_seconds": 10, "reconnect_max_seconds": 5}, "reconnect_seconds (10.0) is more than"),
])
def test_config_errors_name_the_field(sms, field):
    with pytest.raises(ConfigError) as e:
        load_config(ROOT, {"sms": sms})
    assert field in str(e.value), str(e.value)       # the source (file or override) comes first


def test_the_section_is_off_by_default_and_complete_when_on():
    assert load_config(ROOT).system.sms.enabled is False
    s = load_config(ROOT, {"sms": {"enabled": True, "host": "smsc.example", "system_id": "hotline"}}).system.sms
    assert (s.port, s.sending_hours, s.source_address) == (2775, "09:00-20:00", "12348")
