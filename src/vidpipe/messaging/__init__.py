"""Messaging (DeepStream's test4 path): event metadata on frames -> msgconv (JSON payloads) ->
msgbroker (a durable outbox, then Kafka / MQTT / Redis Streams / AMQP / NATS / a JSON-lines file);
and back: commands from a broker topic (CommandListener). See docs/messaging.md."""
from .commands import Command, CommandListener, parse_command
from .events import EventMsgMeta, attach_event
from .msgconv import MsgConvConfig, Payload, PayloadMaker, load_msgconv_config
from .outbox import Outbox

__all__ = ["Command", "CommandListener", "EventMsgMeta", "MsgConvConfig", "Outbox", "Payload", "PayloadMaker",
           "attach_event", "load_msgconv_config", "parse_command"]
