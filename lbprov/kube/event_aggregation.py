"""Similar events combined into one, as client-go's event correlator does.

Why: a Service whose sync keeps failing with a different message each time (a request id, a
changing quota figure, a new node's name) would otherwise leave a new Event object per message. Its
users read ``kubectl describe service`` and expect what every upstream controller's recorder does
(client-go ``tools/record/events_cache.go``, ``EventAggregator`` with its defaults,
``defaultAggregateMaxEvents = 10``, ``defaultAggregateIntervalInSeconds = 600``, and
``EventAggregatorByReasonMessageFunc``):

* events about the same object with the same type, reason and source are *similar* whatever their
  message; the correlator remembers the distinct messages of each group seen within 10 minutes of
  the group's last event (a group quiet for longer starts again);
* once a group holds 10 distinct messages, the event (that 10th message, and every later one that
  is not already one of the 9 kept) is not posted as its own Event but as the group's one
  *combined* Event, whose message is ``"(combined from similar events): " + message``; a repeat of
  the combined Event patches its count, last timestamp and message;
* the remembered groups are bounded (an LRU of 4,096, as client-go's ``maxLruCacheEntries``).

Identical repeats (same message) are counted on their own Event by :class:`lbprov.kube.client.
KubeClient` as before; this module only decides whether an event is folded into its group's
combined one.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

#: client-go's ``defaultAggregateMaxEvents``: distinct messages in a group before they are combined.
MAX_EVENTS = 10
#: client-go's ``defaultAggregateIntervalInSeconds``: a group quiet this long starts again.
MAX_INTERVAL_SECONDS = 600.0
#: client-go's ``maxLruCacheEntries``.
MAX_GROUPS = 4096
#: client-go's ``EventAggregatorByReasonMessageFunc`` prefix.
COMBINED_PREFIX = "(combined from similar events): "

#: A group of similar events: (namespace, kind, name, uid, type, reason, source component).
GroupKey = tuple[str, ...]


@dataclass
class _Group:
    messages: set[str] = field(default_factory=set)
    last: float = 0.0


class EventAggregator:
    """Decides, per event, whether it is posted as itself or folded into its group's combined Event.

    Thread-safe. ``clock``: seconds, monotonic (tests pass their own)."""

    def __init__(
        self,
        *,
        max_events: int = MAX_EVENTS,
        max_interval: float = MAX_INTERVAL_SECONDS,
        max_groups: int = MAX_GROUPS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_events = max_events
        self.max_interval = max_interval
        self.max_groups = max_groups
        self._clock = clock
        self._groups: OrderedDict[GroupKey, _Group] = OrderedDict()
        self._lock = threading.Lock()

    def combined(self, group: GroupKey, message: str) -> str | None:
        """The combined Event's message if this event is folded into its group's, else None (the
        event is posted as itself). Records the event in its group either way, as client-go's
        ``EventAggregate`` does."""
        now = self._clock()
        with self._lock:
            seen = self._groups.get(group)
            if seen is None or now - seen.last > self.max_interval:
                seen = _Group()
                self._groups[group] = seen
            self._groups.move_to_end(group)
            while len(self._groups) > self.max_groups:
                self._groups.popitem(last=False)
            seen.last = now
            seen.messages.add(message)
            if len(seen.messages) < self.max_events:
                return None
            # client-go: "do not grow our local key set any larger than max" (PopAny)
            seen.messages.pop()
            return COMBINED_PREFIX + message
