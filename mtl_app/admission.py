"""Admission to the training slots: the one place on the server that every run passes (a training run,
a live sweep, live LogME), whatever started it: the page, the API, a made-up session that skipped the
prepare step.

At most `slots` runs work at once and as many again wait their turn (TRAININGS_PER_SLOT x slots in
all). A run beyond that is refused at once, with a message: it never sits in Gradio's queue, whose
max_size counts every event together, so no number of training submissions can fill the queue that
predictions use. A waiting run shows its place once a second, and a run whose visitor has gone is
dropped before it starts: Gradio closes it when the page closes or the call is cancelled, and a run
whose updates nobody reads (a script that submits and never listens) is dropped by `nobody_listening`."""

import dataclasses
import threading

from mtl.errors import MTLError

TRAININGS_PER_SLOT = 2  # runs admitted per training slot: one working, one waiting its turn
UNREAD_UPDATES = 3  # a run whose visitor has left this many updates unread is dropped before it starts
TICK_SECONDS = 1.0  # a waiting run tells its place (and notices Stop) once a tick


class TrainingRefused(MTLError):
    """A run the training slots cannot take now; the message says why and what to do."""


@dataclasses.dataclass(eq=False)
class Ticket:
    """One admitted run: it holds its place until released (a `with` block releases it)."""

    gate: "TrainingGate"
    session: object  # the Session that asked: one place per session
    what: str  # "training run", "sweep", "LogME": for messages
    abandoned: bool = False  # dropped before it started: nobody was listening

    def ahead(self) -> int:
        """Runs that start before this one (0: it may start now)."""
        return self.gate.ahead(self)

    def waiting(self, stop: threading.Event, request=None, tick: float = TICK_SECONDS):
        """Yields the number of runs ahead, once a `tick`, until this run's turn comes or `stop` is set.
        When nobody reads the updates, the run is dropped (released, `abandoned` set) instead."""
        while (ahead := self.ahead()) > 0 and not stop.is_set():
            if nobody_listening(request):
                self.abandoned = True
                self.release()
                return
            yield ahead
            self.gate.wait_for_change(tick)

    def release(self) -> None:
        self.gate.release(self)

    def __enter__(self) -> "Ticket":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class TrainingGate:
    """Everything that trains takes a Ticket from here first (AppContext.admit_training)."""

    def __init__(self, slots: int):
        self.slots = max(1, int(slots))
        self.capacity = TRAININGS_PER_SLOT * self.slots  # working + waiting, at most
        self._tickets: list[Ticket] = []  # in admission order: the first `slots` work, the others wait
        self._changed = threading.Condition()

    def admit(self, session, what: str = "training run") -> Ticket:
        """A place for `session`'s run, or TrainingRefused (the session has one already, or all are taken)."""
        with self._changed:
            held = next((t for t in self._tickets if t.session is session), None)
            if held is not None:
                raise TrainingRefused(
                    f"This session already has a {held.what}, queued or running: wait for it to end or press Stop."
                )
            if len(self._tickets) >= self.capacity:
                raise TrainingRefused(
                    f"The demo is busy: {self.capacity} training runs (sweeps and LogME included) are running or "
                    f"waiting, the most it takes at once. Try again in a few minutes; predictions and "
                    "embeddings work meanwhile."
                )
            ticket = Ticket(self, session, what)
            self._tickets.append(ticket)
            return ticket

    def tickets(self) -> list[Ticket]:
        """The runs holding a place, oldest first."""
        with self._changed:
            return list(self._tickets)

    def ahead(self, ticket: Ticket) -> int:
        with self._changed:
            if ticket not in self._tickets:
                return 0
            return max(0, self._tickets.index(ticket) - self.slots + 1)

    def wait_for_change(self, seconds: float) -> None:
        """Sleep until a place is released, at most `seconds`."""
        with self._changed:
            self._changed.wait(seconds)

    def release(self, ticket: Ticket) -> None:
        with self._changed:
            if ticket in self._tickets:
                self._tickets.remove(ticket)
                self._changed.notify_all()


def nobody_listening(request) -> bool:
    """True when the visitor behind `request` (a gr.Request) has left UNREAD_UPDATES or more updates
    unread. A page or gradio_client reads its session's updates as they come (Gradio's server-sent
    events); a script that submits a run and never listens reads none. Gradio keeps those updates in a
    queue per session that it does not expose: where this Gradio has none, the answer is False (the
    run is kept), never an error."""
    try:
        pending = request.request.app.get_blocks()._queue.pending_messages_per_session
        updates = pending.get(request.session_hash)
        return updates is not None and updates.qsize() >= UNREAD_UPDATES
    except Exception:  # no request (called directly), or another Gradio: keep the run
        return False
