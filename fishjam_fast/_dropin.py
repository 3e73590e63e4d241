"""``fishjam_fast.install()``: the plain SDK (``fishjam-server-sdk``) made to produce
fishjam_fast objects, whatever the order of the application's imports.

An application written for the plain SDK reaches its classes in three ways, and each
needs its own patch:

1. **Names looked up after install()** (``from fishjam.agent import X`` run later,
   ``import fishjam.agent as a; a.X`` used later): the attributes of ``fishjam.agent``,
   ``fishjam.agent.agent`` and ``fishjam.agent.errors`` are rebound to fishjam_fast's
   classes of the same name (``Agent``, ``AgentSession``, ``IncomingTrackData``,
   ``OutgoingAudioTrackOptions``, ``AgentAuthError``, ...).
2. **Names bound before install()** (``from fishjam.agent import IncomingTrackData`` at
   the top of a module that imported first): those still name the plain classes, so
   the plain classes must accept our objects:

   - ``isinstance`` and ``match`` (a class pattern is an ``isinstance`` check): the
     plain ``IncomingTrackData``, ``IncomingTrackImage`` and ``Track`` are betterproto
     messages, whose metaclass is ``abc.ABCMeta``: ours are registered as their virtual
     subclasses (``register``), undone by uninstall().
   - ``except AgentAuthError``: exception matching walks the real MRO and ignores
     ``__instancecheck__``, so registering is not enough. Our ``AgentError`` derives
     from a placeholder (``errors._PlainSdkBase``, an empty ``Exception`` subclass)
     that install() swaps for the plain ``AgentError`` through ``__bases__`` (same
     layout, so CPython allows it), and our ``AgentAuthError`` gains the plain one as a
     second base. uninstall() puts the original bases back.
   - ``Agent(id, room_id, token, url)`` called on the plain class makes ours (its
     ``__init__`` turns the new instance into ours), and ``connect()`` of a plain
     agent made before install() connects as ours: every session is fishjam_fast's.
3. **FishjamClient**: its ``create_agent`` (patched on the plain class, so clients made
   before install() are covered too) returns a fishjam_fast :class:`~fishjam_fast.Agent`
   with the socket URL the plain SDK chose (``peer_websocket_url``).

The plain SDK's option objects (``OutgoingAudioTrackOptions``, its ``TrackEncoding``)
need no patch: fishjam_fast's ``add_track`` takes them as they are.

The notifier (``fishjam_fast.events``, ``FishjamNotifier``, ...) is mapped the same way
when this fishjam_fast has it: the names of ``fishjam.events`` that
``fishjam_fast.events.__all__`` also has, and ``FishjamNotifier``,
``decode_server_notifications`` and ``verify_webhook_signature`` on ``fishjam``.

Not covered: ``isinstance(x, Agent)`` (or ``AgentSession``, ``OutgoingTrack``) with a
plain class bound before install() (plain classes that are not ABCs cannot accept
other classes' objects), and a plain-SDK session already open when install() runs.
"""

from __future__ import annotations

import abc
import importlib
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["install", "installed", "uninstall"]

AGENT_MODULES = ("fishjam.agent", "fishjam.agent.agent", "fishjam.agent.errors")
"""The plain SDK's agent modules whose names become fishjam_fast's."""

NOTIFIER_NAMES = ("FishjamNotifier", "decode_server_notifications", "verify_webhook_signature")
"""Names on ``fishjam`` mapped to ``fishjam_fast``'s when it has them."""

# the plain betterproto classes (all ABCMeta) that accept ours in isinstance/match
_REGISTERED = (
    ("fishjam.agent.agent", "IncomingTrackData"),
    ("fishjam.agent.agent", "IncomingTrackImage"),
    ("fishjam.events._protos.fishjam.notifications", "Track"),
)


class _Patches:
    """Everything install() changed, and how to undo it (in reverse order)."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def setattr(self, owner: Any, name: str, value: Any) -> None:
        """Rebinds ``owner.name``; undone by restoring (or deleting) the old value."""
        missing = object()
        old = (
            owner.__dict__.get(name, missing)
            if isinstance(owner, type)
            else (getattr(owner, name, missing))
        )
        setattr(owner, name, value)
        if old is missing:
            self._undo.append(lambda: delattr(owner, name))
        else:
            self._undo.append(lambda: setattr(owner, name, old))

    def set_bases(self, cls: type, bases: tuple[type, ...]) -> None:
        old = cls.__bases__
        cls.__bases__ = bases
        self._undo.append(lambda: setattr(cls, "__bases__", old))

    def register(self, abstract: abc.ABCMeta, subclass: type) -> None:
        if issubclass(subclass, abstract):
            return  # (registered by someone else: leave it so)
        abstract.register(subclass)
        self._undo.append(lambda: _unregister(abstract, subclass))

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


_installed: _Patches | None = None


def installed() -> bool:
    """Whether :func:`install` is in effect."""
    return _installed is not None


def install() -> None:
    """Makes the plain SDK (``fishjam.agent``, ``FishjamClient``) produce fishjam_fast
    objects, whenever the application imported its names.

    Call it once at start-up, before the first session connects; calling it again does
    nothing. The module docstring of ``fishjam_fast._dropin`` lists what it patches.

    Raises:
        ImportError: the plain SDK (``fishjam-server-sdk``, the ``sdk`` extra) is not
            installed.
    """
    global _installed
    if _installed is not None:
        return
    try:
        importlib.import_module("fishjam.agent")
        plain_fishjam = importlib.import_module("fishjam")
    except ImportError as exc:
        raise ImportError(
            f"fishjam_fast.install() patches the plain SDK, which is not importable ({exc}): "
            "pip install 'fishjam-fast[sdk]'"
        ) from exc
    patches = _Patches()
    try:
        _patch_agent(patches, plain_fishjam.FishjamClient)
        _patch_notifier(patches)
    except BaseException:
        patches.undo()
        raise
    _installed = patches


def uninstall() -> None:
    """Undoes :func:`install`: the plain SDK is itself again (for tests). Objects made
    while it was installed stay fishjam_fast's. Does nothing if not installed."""
    global _installed
    patches, _installed = _installed, None
    if patches is not None:
        patches.undo()


def _patch_agent(patches: _Patches, plain_fishjam_client: Any) -> None:
    from . import agent as fast_agent
    from . import errors as fast_errors
    from .session import IncomingAgentMessage

    ours: dict[str, Any] = {name: getattr(fast_agent, name) for name in fast_agent.__all__}
    ours["IncomingAgentMessage"] = IncomingAgentMessage
    plain_errors = sys.modules["fishjam.agent.errors"]
    plain_agent_module = sys.modules["fishjam.agent.agent"]
    plain_agent_class = plain_agent_module.Agent
    fast_agent_class = fast_agent.Agent

    # 2. names bound before install(): the plain classes accept ours
    patches.set_bases(fast_errors.AgentError, (plain_errors.AgentError,))
    patches.set_bases(
        fast_errors.AgentAuthError, (fast_errors.AgentError, plain_errors.AgentAuthError)
    )
    for module_name, name in _REGISTERED:
        patches.register(getattr(sys.modules[module_name], name), ours[name])

    plain_init = plain_agent_class.__init__

    def init_agent(self: Any, *args: Any, **kwargs: Any) -> None:
        if type(self) is not plain_agent_class:  # a subclass of the plain Agent stays plain
            plain_init(self, *args, **kwargs)
            return
        # the plain constructor makes ours: same layout (plain classes with a __dict__),
        # so the instance can change class; not __new__, which CPython cannot restore
        # cleanly (deleting it leaves a slot that passes the arguments to object.__new__)
        self.__class__ = fast_agent_class
        fast_agent_class.__init__(self, *args, **kwargs)

    def connect(self: Any) -> Any:  # a plain agent made before install()
        return fast_agent_class.from_sdk(self).connect()

    patches.setattr(plain_agent_class, "__init__", init_agent)
    patches.setattr(plain_agent_class, "connect", connect)

    # 3. FishjamClient.create_agent, on the class: clients made before install() too
    plain_create_agent = plain_fishjam_client.create_agent

    def create_agent(self: Any, room_id: str, options: Any = None, **agent_options: Any) -> Any:
        # the plain method asks REST for the peer and picks the socket URL
        # (peer_websocket_url); from_sdk takes that URL and the token over
        return fast_agent_class.from_sdk(
            plain_create_agent(self, room_id, options), **agent_options
        )

    create_agent.__doc__ = plain_create_agent.__doc__
    patches.setattr(plain_fishjam_client, "create_agent", create_agent)

    # 1. names looked up after install()
    for module_name in AGENT_MODULES:
        module = sys.modules[module_name]
        for name, value in ours.items():
            if name in vars(module):
                patches.setattr(module, name, value)


def _patch_notifier(patches: _Patches) -> None:
    """Maps the plain notifier's names to fishjam_fast's, where fishjam_fast has them
    (guarded: this fishjam_fast may have no ``events`` module)."""
    import fishjam_fast

    try:
        fast_events: ModuleType | None = importlib.import_module("fishjam_fast.events")
    except ModuleNotFoundError as exc:
        if exc.name != "fishjam_fast.events":
            raise
        fast_events = None
    if fast_events is not None:
        plain_events = importlib.import_module("fishjam.events")
        for name in getattr(fast_events, "__all__", ()):
            plain = getattr(plain_events, name, None)
            if plain is None:
                continue
            ours = getattr(fast_events, name)
            if isinstance(plain, abc.ABCMeta) and isinstance(ours, type):
                patches.register(plain, ours)  # names bound before install()
            patches.setattr(plain_events, name, ours)
    plain_fishjam = importlib.import_module("fishjam")
    for name in NOTIFIER_NAMES:
        ours = getattr(fishjam_fast, name, None)
        if ours is not None and hasattr(plain_fishjam, name):
            patches.setattr(plain_fishjam, name, ours)


def _unregister(abstract: abc.ABCMeta, subclass: type) -> None:
    """Undoes ``abstract.register(subclass)`` (abc has no API for it): clears the
    registry and registers again every other class it held."""
    try:
        get_dump: Any = importlib.import_module("_abc")._get_dump
    except (ImportError, AttributeError):  # the pure-Python abc (_py_abc)
        held = set(abstract._abc_registry)  # type: ignore[attr-defined]
    else:
        held = {ref() for ref in get_dump(abstract)[0]}
    abstract._abc_registry_clear()  # type: ignore[attr-defined]
    abstract._abc_caches_clear()  # type: ignore[attr-defined]
    for cls in held:
        if cls is not None and cls is not subclass:
            abstract.register(cls)
