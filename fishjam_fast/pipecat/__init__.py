"""A pipecat transport on Fishjam: ``FishjamTransport(agent or session, FishjamParams())``.

Needs the ``pipecat`` extra (``pip install 'fishjam-fast[pipecat]'``); importing this
package without pipecat raises ImportError saying so. The input side's frame assembly
(``_frames``) and the shared connection (``_connection``) import no pipecat.
"""

from __future__ import annotations

try:
    import pipecat  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"fishjam_fast.pipecat needs pipecat: pip install 'fishjam-fast[pipecat]' ({error})"
    ) from error

from ._frames import FrameAssembler, FrameMixer
from .transport import (
    FishjamInputTransport,
    FishjamOutputTransport,
    FishjamParams,
    FishjamTransport,
)

__all__ = [
    "FishjamInputTransport",
    "FishjamOutputTransport",
    "FishjamParams",
    "FishjamTransport",
    "FrameAssembler",
    "FrameMixer",
]
