"""How a round's messages travel: the Grid adapter our ServerApp wraps Flower's grid in.

``TransportGrid`` (``grid``) packs weights for the nodes that read them
(``protocol.packing``), unpacks replies, streams them as they are pulled
(``streaming``) and retries reply objects sooner (``object_retry``). Every
strategy above it, ours, Flower's or a Flower wrapper, sends and reads named
arrays and never sees any of this.
"""

from server.transport.grid import TransportGrid
from server.transport.streaming import ReplyStream

__all__ = ["ReplyStream", "TransportGrid"]
