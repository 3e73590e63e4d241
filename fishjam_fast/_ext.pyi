"""Type stub of the native extension (src_ext/_ext.pyx); see _codec_py.py for the
reference semantics, which the extension shares."""

from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt
from typing_extensions import Buffer

from .enums import TrackType

# exactly NAMES of fishjam_fast/_codec.py, and NATIVE (tests/test_build.py checks)
NATIVE: Final[bool]

class Track:
    __match_args__: ClassVar[tuple[str, ...]]
    id: str
    type: TrackType | int
    metadata: str
    def __init__(self, id: str = "", type: TrackType | int = ..., metadata: str = "") -> None: ...

class IncomingTrackData:
    __match_args__: ClassVar[tuple[str, ...]]
    peer_id: str
    track: Track
    data: bytes
    def __init__(
        self, peer_id: str = "", track: Track | None = None, data: bytes = b""
    ) -> None: ...
    @property
    def pcm(self) -> npt.NDArray[np.int16]: ...
    def samples(self) -> npt.NDArray[np.float32]: ...

class IncomingTrackImage:
    __match_args__: ClassVar[tuple[str, ...]]
    track_id: str
    content_type: str
    data: bytes
    def __init__(self, track_id: str = "", content_type: str = "", data: bytes = b"") -> None: ...

class Authenticated:
    __match_args__: ClassVar[tuple[str, ...]]

class UnknownResponse:
    __match_args__: ClassVar[tuple[str, ...]]
    field_number: int
    def __init__(self, field_number: int = 0) -> None: ...

def encode_auth_request(token: str) -> bytes: ...
def encode_add_track(
    track_id: str,
    metadata: str,
    encoding: int,
    sample_rate: int,
    channels: int,
    track_type: int = 2,
) -> bytes: ...
def encode_remove_track(track_id: str) -> bytes: ...
def encode_interrupt_track(track_id: str) -> bytes: ...
def encode_capture_image(track_id: str) -> bytes: ...
def encode_track_data(track_id: str, data: Buffer) -> bytes: ...

class TrackDataEncoder:
    @property
    def track_id(self) -> str: ...
    def __init__(self, track_id: str) -> None: ...
    def encode(self, data: Buffer, /) -> bytes: ...

def frame_track_data(
    track_id: str, payload: Buffer, chunk_size: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]: ...
def decode_response(
    frame: Buffer,
    /,
) -> IncomingTrackData | IncomingTrackImage | Authenticated | UnknownResponse: ...

# The ServerMessage decoder (src_ext/notifications.pyx); _notifications_py documents it
def decode_server_message(frame: Buffer, /) -> list[Any]: ...

# PCM16 kernels (src_ext/pcm.pyx); fishjam_fast.pcm documents them
def pcm16_bytes(samples: npt.NDArray[np.generic] | Buffer) -> bytes: ...
def pcm16_into(samples: npt.NDArray[np.generic] | Buffer, out: Buffer) -> int: ...
def pcm16_to_float32(data: Buffer) -> npt.NDArray[np.float32]: ...
def frame_pcm16(
    track_id: str, samples: npt.NDArray[np.generic] | Buffer, channels: int, samples_per_chunk: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]: ...
