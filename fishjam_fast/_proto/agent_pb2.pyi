from fishjam_fast._proto import notifications_pb2 as _notifications_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentRequest(_message.Message):
    __slots__ = ("auth_request", "add_track", "remove_track", "track_data", "interrupt_track", "capture_image")
    class AuthRequest(_message.Message):
        __slots__ = ("token",)
        TOKEN_FIELD_NUMBER: _ClassVar[int]
        token: str
        def __init__(self, token: _Optional[str] = ...) -> None: ...
    class AddTrack(_message.Message):
        __slots__ = ("track", "codec_params")
        class CodecParameters(_message.Message):
            __slots__ = ("encoding", "sample_rate", "channels")
            ENCODING_FIELD_NUMBER: _ClassVar[int]
            SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
            CHANNELS_FIELD_NUMBER: _ClassVar[int]
            encoding: _notifications_pb2.TrackEncoding
            sample_rate: int
            channels: int
            def __init__(self, encoding: _Optional[_Union[_notifications_pb2.TrackEncoding, str]] = ..., sample_rate: _Optional[int] = ..., channels: _Optional[int] = ...) -> None: ...
        TRACK_FIELD_NUMBER: _ClassVar[int]
        CODEC_PARAMS_FIELD_NUMBER: _ClassVar[int]
        track: _notifications_pb2.Track
        codec_params: AgentRequest.AddTrack.CodecParameters
        def __init__(self, track: _Optional[_Union[_notifications_pb2.Track, _Mapping]] = ..., codec_params: _Optional[_Union[AgentRequest.AddTrack.CodecParameters, _Mapping]] = ...) -> None: ...
    class RemoveTrack(_message.Message):
        __slots__ = ("track_id",)
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        track_id: str
        def __init__(self, track_id: _Optional[str] = ...) -> None: ...
    class TrackData(_message.Message):
        __slots__ = ("track_id", "data")
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        DATA_FIELD_NUMBER: _ClassVar[int]
        track_id: str
        data: bytes
        def __init__(self, track_id: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...
    class InterruptTrack(_message.Message):
        __slots__ = ("track_id",)
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        track_id: str
        def __init__(self, track_id: _Optional[str] = ...) -> None: ...
    class CaptureImage(_message.Message):
        __slots__ = ("track_id",)
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        track_id: str
        def __init__(self, track_id: _Optional[str] = ...) -> None: ...
    AUTH_REQUEST_FIELD_NUMBER: _ClassVar[int]
    ADD_TRACK_FIELD_NUMBER: _ClassVar[int]
    REMOVE_TRACK_FIELD_NUMBER: _ClassVar[int]
    TRACK_DATA_FIELD_NUMBER: _ClassVar[int]
    INTERRUPT_TRACK_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    auth_request: AgentRequest.AuthRequest
    add_track: AgentRequest.AddTrack
    remove_track: AgentRequest.RemoveTrack
    track_data: AgentRequest.TrackData
    interrupt_track: AgentRequest.InterruptTrack
    capture_image: AgentRequest.CaptureImage
    def __init__(self, auth_request: _Optional[_Union[AgentRequest.AuthRequest, _Mapping]] = ..., add_track: _Optional[_Union[AgentRequest.AddTrack, _Mapping]] = ..., remove_track: _Optional[_Union[AgentRequest.RemoveTrack, _Mapping]] = ..., track_data: _Optional[_Union[AgentRequest.TrackData, _Mapping]] = ..., interrupt_track: _Optional[_Union[AgentRequest.InterruptTrack, _Mapping]] = ..., capture_image: _Optional[_Union[AgentRequest.CaptureImage, _Mapping]] = ...) -> None: ...

class AgentResponse(_message.Message):
    __slots__ = ("authenticated", "track_data", "track_image")
    class Authenticated(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class TrackData(_message.Message):
        __slots__ = ("peer_id", "track", "data")
        PEER_ID_FIELD_NUMBER: _ClassVar[int]
        TRACK_FIELD_NUMBER: _ClassVar[int]
        DATA_FIELD_NUMBER: _ClassVar[int]
        peer_id: str
        track: _notifications_pb2.Track
        data: bytes
        def __init__(self, peer_id: _Optional[str] = ..., track: _Optional[_Union[_notifications_pb2.Track, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...
    class TrackImage(_message.Message):
        __slots__ = ("track_id", "content_type", "data")
        TRACK_ID_FIELD_NUMBER: _ClassVar[int]
        CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
        DATA_FIELD_NUMBER: _ClassVar[int]
        track_id: str
        content_type: str
        data: bytes
        def __init__(self, track_id: _Optional[str] = ..., content_type: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...
    AUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
    TRACK_DATA_FIELD_NUMBER: _ClassVar[int]
    TRACK_IMAGE_FIELD_NUMBER: _ClassVar[int]
    authenticated: AgentResponse.Authenticated
    track_data: AgentResponse.TrackData
    track_image: AgentResponse.TrackImage
    def __init__(self, authenticated: _Optional[_Union[AgentResponse.Authenticated, _Mapping]] = ..., track_data: _Optional[_Union[AgentResponse.TrackData, _Mapping]] = ..., track_image: _Optional[_Union[AgentResponse.TrackImage, _Mapping]] = ...) -> None: ...
