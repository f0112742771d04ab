"""A restart's resynchronisation runs while the AMI events keep coming (callcenter/controller.py): a
call that begins after Asterisk's channel listing is in no listing, yet live. Only the calls followed
before the listing was asked for can have ended unheard."""
import asyncio
import tempfile

from callcenter.controller import Controller
from core.config import load_config
from core.contract import TRUNK_CONTEXT
from store.secrets import Secrets

DID = "02812348"


def newchannel(call_id: str, n: int) -> dict:
    return {"Event": "Newchannel", "Context": TRUNK_CONTEXT, "Uniqueid": call_id, "Linkedid": call_id,
            "Channel": f"PJSIP/carrier-{n:08x}", "Exten": DID, "CallerIDNum": f"1380000{n:04d}",
            "Timestamp": f"{1795600000 + n}.000000"}


class ListingAmi:
    """Lists no channel; a call begins while the listing is on its way (its Newchannel handled by the
    controller's consumer in the meantime)."""

    def __init__(self, during_listing):
        self.during_listing = during_listing

    async def list_action(self, act, **kw):
        assert act["Action"] == "CoreShowChannels"
        self.during_listing()
        return []

    async def action(self, act, **kw):
        raise AssertionError(f"no channel listed, nothing to ask: {act}")


def test_a_call_that_begins_during_the_listing_stays_live():
    d = tempfile.mkdtemp(prefix="resync-")
    cfg = load_config(overrides={"database": {"url": f"sqlite:///{d}/t.db"}, "redis": {"url": None},
                                 "state_dir": d, "transcription": {"live": {"enabled": False}}})

    async def go():
        ctl = Controller(cfg, Secrets("hotline", "secret", {}, privacy_key="k", bus_key="k"))
        ctl.tracker.apply(newchannel("1795600001.10", 1))            # followed, then ended while we were away
        ctl.ami = ListingAmi(lambda: ctl.tracker.apply(newchannel("1795600002.20", 2)))
        try:
            return ctl, await ctl._resync_calls()
        finally:
            await ctl.db.engine.dispose()

    ctl, (listed, _) = asyncio.run(go())
    assert listed == set()
    gone, begun = ctl.tracker.calls["1795600001.10"], ctl.tracker.calls["1795600002.20"]
    assert (gone.status, gone.outcome) == ("ended", "unobserved")
    assert begun.status == "ivr" and not begun.outcome, "a call begun after the listing was closed as ended"


class HangsUpDuringGetvar:
    """Lists one caller channel, which hangs up after three of its variables were read: Asterisk then
    answers Getvar with an error, and the call's Hangup reaches the consumer."""

    def __init__(self, on_hangup):
        self.on_hangup, self.asked = on_hangup, 0

    async def list_action(self, act, **kw):
        return [{"Event": "CoreShowChannel", "Channel": "PJSIP/carrier-00000003", "Uniqueid": "1795600003.30",
                 "Linkedid": "1795600003.30", "CallerIDNum": "13800000003", "Duration": "00:00:09"}]

    async def action(self, act, **kw):
        assert act["Action"] == "Getvar"
        self.asked += 1
        if self.asked < 4:
            return {"Response": "Success", "Variable": act["Variable"], "Value": ""}
        if self.asked == 4:
            self.on_hangup()
        return {"Response": "Error", "Message": "No such channel"}


def test_a_call_that_hangs_up_while_its_variables_are_read_is_left_to_the_cdr():
    """Adopted from half its variables it would be recorded without its number or the number dialled,
    and the CDR's full line would then never replace that record (the CDR rebuilds only calls without
    one)."""
    d = tempfile.mkdtemp(prefix="resync-")
    cfg = load_config(overrides={"database": {"url": f"sqlite:///{d}/t.db"}, "redis": {"url": None},
                                 "state_dir": d, "transcription": {"live": {"enabled": False}}})
    hangup = {"Event": "Hangup", "Uniqueid": "1795600003.30", "Linkedid": "1795600003.30",
              "Channel": "PJSIP/carrier-00000003", "Cause": "16", "Timestamp": "1795600010.000000"}

    async def go():
        ctl = Controller(cfg, Secrets("hotline", "secret", {}, privacy_key="k", bus_key="k"))
        ctl.ami = ami = HangsUpDuringGetvar(lambda: ctl.tracker.apply(hangup))
        try:
            return ctl, ami, await ctl._resync_calls()
        finally:
            await ctl.db.engine.dispose()

    ctl, ami, (listed, _) = asyncio.run(go())
    assert ami.asked == 4, "the variables are no longer read once the channel is gone"
    assert listed == set() and "1795600003.30" not in ctl.tracker.calls
