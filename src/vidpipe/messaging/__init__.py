"""Messaging (DeepStream's test4 path): event metadata on frames -> msgconv (JSON payloads) ->
msgbroker (a durable outbox, then MQTT / Redis Streams / a JSON-lines file). See docs/messaging.md."""
from .events import EventMsgMeta, attach_event
from .msgconv import MsgConvConfig, Payload, PayloadMaker, load_msgconv_config
from .outbox import Outbox

__all__ = ["EventMsgMeta", "MsgConvConfig", "Outbox", "Payload", "PayloadMaker", "attach_event", "load_msgconv_config"]
