"""Admission to the training slots: the one place on the server that every run passes (a training run,
a live sweep, live LogME), whatever started it: the page, the API, a made-up session.

At most `slots` runs work at once and as many again wait their turn (TRAININGS_PER_SLOT x slots in
all). The place is taken before the run enters Gradio's queue (reserve, the event's validator), so a
run beyond that is refused with a message and never sits in that queue, whose max_size counts every
event together: no number of training submissions can fill the queue that predictions use. The run
then claims its place (admit) and waits for its turn inside its handler, showing its place once a
second. A run whose visitor has gone is dropped before it starts: Gradio closes it when the page closes
or the call is cancelled, and a run whose updates nobody reads (a script that submits and never
listens) does no work: it starts only once Listener has seen its visitor read (and one that already
works stops at its next step, its model dropped); a place reserved and never claimed (the event left
the queue before it ran) is given back after RESERVED_SECONDS."""

import dataclasses
import threading
import time

import gradio as gr

from mtl.errors import MTLError

TRAININGS_PER_SLOT = 2  # runs admitted per training slot: one working, one waiting its turn
# a run is dropped before it starts when nobody has read any of its updates: LISTEN_SECONDS after its first
# look, or as soon as UNREAD_UPDATES wait (a page that listens falls a few behind at worst: 4 measured on a
# loaded machine, where a page's reader is seen within a fraction of a second)
LISTEN_SECONDS = 10.0
UNREAD_UPDATES = 10
TICK_SECONDS = 1.0  # a waiting run tells its place (and notices Stop) once a tick
RESERVED_SECONDS = 30.0  # a place reserved before queueing and not claimed by its run within this is given back
# Predictions come first: while visitors are asking for predictions or embeddings, each training step
# is followed by a pause this many times as long as the step (training then takes a quarter of the
# CPU time it would), so a run slows down instead of everyone's predictions. See bench/load_test.py.
YIELD_TO_REQUESTS = 3.0


class TrainingRefused(MTLError):
    """A run the training slots cannot take now; the message says why and what to do."""


@dataclasses.dataclass(eq=False)
class Ticket:
    """One admitted run: it holds its place until released (a `with` block releases it)."""

    gate: "TrainingGate"
    session: object  # the Session that asked: one place per session
    what: str  # "training run", "sweep", "LogME": for messages
    abandoned: bool = False  # dropped before it started: nobody was listening
    claimed: bool = True  # False while reserved for a run that has not started yet (see reserve)
    since: float = dataclasses.field(default_factory=time.monotonic)

    def ahead(self) -> int:
        """Runs that start before this one (0: it may start now)."""
        return self.gate.ahead(self)

    def waiting(self, stop: threading.Event, listener: "Listener | None" = None, tick: float = TICK_SECONDS):
        """Yields the number of runs ahead, once a `tick`, until this run's turn comes or `stop` is set.
        When nobody reads the updates (`listener`), the run is dropped (released, `abandoned` set) instead."""
        while (ahead := self.ahead()) > 0 and not stop.is_set():
            if listener is not None and listener.gone():
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

    def reserve(self, session, what: str = "training run") -> Ticket:
        """A place for a run of `session`'s that is about to be queued (its event's validator): the run
        claims it when it starts (admit). TrainingRefused when the session has a run or all places are
        taken."""
        with self._changed:
            return self._new(session, what, claimed=False)

    def admit(self, session, what: str = "training run") -> Ticket:
        """The place `session` reserved for this run, or a new one; TrainingRefused as for reserve."""
        with self._changed:
            held = self._held(session)
            if held is not None and not held.claimed:
                held.claimed, held.what = True, what
                return held
            return self._new(session, what, claimed=True)

    def _held(self, session) -> Ticket | None:
        now = time.monotonic()
        expired = [t for t in self._tickets if not t.claimed and now - t.since > RESERVED_SECONDS]
        for t in expired:
            self._tickets.remove(t)
        if expired:
            self._changed.notify_all()
        return next((t for t in self._tickets if t.session is session), None)

    def _new(self, session, what: str, claimed: bool) -> Ticket:
        held = self._held(session)
        if held is not None:
            raise TrainingRefused(
                f"This session already has a {held.what}, queued or running: wait for it to end or press Stop."
            )
        if len(self._tickets) >= self.capacity:
            raise TrainingRefused(
                f"The demo is busy: {self.capacity} training runs (sweeps and LogME included) are running or "
                "waiting, the most it takes at once. Try again in a few minutes; predictions and embeddings "
                "work meanwhile."
            )
        ticket = Ticket(self, session, what, claimed=claimed)
        self._tickets.append(ticket)
        return ticket

    def tickets(self) -> list[Ticket]:
        """The runs holding a place (reserved or claimed), oldest first."""
        with self._changed:
            self._held(None)  # gives back expired reservations
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


def validation(inputs: int, refused: Exception | None = None, at: int = 0) -> list[dict]:
    """What an event's validator returns (gr.validate per input): all valid, or `refused`'s message on
    input `at`. Gradio then answers the submission with that message (HTTP 422) and never queues it."""
    return [gr.validate(refused is None or i != at, str(refused or "")) for i in range(inputs)]


def reserving(ctx, what: str, session_at: int, message_at: int = 0):
    """The validator of an event that starts a run (`what`): Gradio calls it with the event's inputs
    before it queues the event; it reserves the run's place (ctx.reserve_training) for the Session
    among the inputs (at `session_at`), or refuses the event with the reason shown on input `message_at`."""

    def reserve(*inputs):
        try:
            ctx.reserve_training(inputs[session_at], what)
        except MTLError as e:
            return validation(len(inputs), e, at=message_at)
        return validation(len(inputs))

    return reserve


class Listener:
    """Is anyone reading a run's updates? A page or gradio_client reads its session's updates as they
    come (Gradio's server-sent events): the pile empties, or at least goes down. A script that submits
    a run and never listens reads none: from Gradio's first message ("process starts") on, its pile only
    grows. Gradio keeps that pile in a queue per session that it does not expose: where this Gradio has
    none, or there is no request (a direct call), the visitor counts as listening."""

    def __init__(self, request=None, seconds: float = LISTEN_SECONDS):
        self.request, self.seconds = request, seconds
        self.unread = 0  # updates waiting to be read at the last look
        self.first: float | None = None  # time of the first look
        self.heard = False  # someone read: no need to look again

    def gone(self) -> bool:
        """True when nobody has read anything: `seconds` after the first look, or UNREAD_UPDATES waiting."""
        if self.heard:
            return False
        unread = unread_updates(self.request)
        if unread is None or unread == 0 or unread < self.unread:
            self.heard = True
            return False
        self.unread, self.first = unread, self.first or time.monotonic()
        return unread >= UNREAD_UPDATES or time.monotonic() - self.first > self.seconds

    def confirmed(self, poll: float = 0.1) -> bool:
        """Wait until someone is seen reading (True; at once for a page) or is gone (False)."""
        while not self.heard:
            if self.gone():
                return False
            time.sleep(poll)
        return True


def unread_updates(request) -> int | None:
    """How many updates wait, unread, for the session of `request` (a gr.Request); None if unknown."""
    try:
        pending = request.request.app.get_blocks()._queue.pending_messages_per_session
        updates = pending.get(request.session_hash)
        return 0 if updates is None else updates.qsize()
    except Exception:  # no request (called directly), or another Gradio: unknown
        return None


class Pace:
    """How a run that holds a slot shares the machine: what mtl's loops read as `stop` (mtl.train and
    mtl.sweep look before every step; live LogME before every chunk). It is set by Stop, by the time
    limit (never at the first look, so a run always does one step), or when nobody has read any of the
    run's updates (`listener`: the visitor has gone). Each look pauses while visitors are predicting
    (ctx.serving()), YIELD_TO_REQUESTS times as long as the work since the last look, so long work slows
    down instead of everyone's predictions."""

    def __init__(self, ctx, stop: threading.Event, seconds: float, listener: "Listener | None" = None):
        self.ctx, self.stop, self.seconds = ctx, stop, seconds
        self.listener = listener or Listener()
        self.started = self._since = time.monotonic()
        self.looks, self.timed_out, self.abandoned = 0, False, False

    def is_set(self) -> bool:
        now = time.monotonic()
        if YIELD_TO_REQUESTS and self.ctx.serving():
            self.stop.wait(min(2.0, YIELD_TO_REQUESTS * (now - self._since)))  # Stop cuts the pause short
        if self.looks and time.monotonic() - self.started > self.seconds and not self.stop.is_set():
            self.timed_out = True
        if self.listener.gone():
            self.abandoned = True
        self._since, self.looks = time.monotonic(), self.looks + 1
        return self.stopped

    @property
    def stopped(self) -> bool:
        """Stopped, timed out or abandoned (a look without a pause)."""
        return self.timed_out or self.abandoned or self.stop.is_set()
