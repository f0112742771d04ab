"""Asterisk took the generated settings it is asked for: a misplaced or misspelt option in a generated
file is only an ERROR line in Asterisk's log, and the setting silently stays at Asterisk's default."""


def test_pjsip_ignores_new_requests_only_when_its_own_queues_are_full(stack):
    # core/config/system.py AsteriskSettings.overload_trigger: with Asterisk's default ("global") a peak's
    # momentary backlog of channel events made PJSIP ignore new callers' INVITEs for seconds
    settings = stack.asterisk.rx("pjsip show settings")
    line = next((l for l in settings.splitlines() if "taskprocessor_overload_trigger" in l), "")
    assert line.split(":", 1)[-1].strip() == stack.cfg.system.asterisk.overload_trigger == "pjsip_only", settings
