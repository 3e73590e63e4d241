# Audio windows (issue 21): peers' audio handed on a window at a time.
#
# Why: per 20 ms chunk an agent pays a socket read, an epoll wake-up and a Python call.
# Agents that consume 50-200 ms blocks (speech-to-text, VAD, moderation) need neither.
# Here the session core (fishjam_fast/_core/connection.py) hands every frame to _WindowAssembler.take first: a
# track_data frame is scanned where it lies (picows' receive buffer) and its samples
# are copied once, into the track's ring of NumPy int16 (no bytes, no message object,
# no Python call per chunk). A window is handed on when every sample of it arrived, or,
# when a peer stops mid-window, padded with zeros by the ticker (_windows_tick).
#
# The ring of a track is `slots` windows of `window` sample frames. A window always
# occupies one whole slot, so the view handed out is contiguous: a padded window's
# zeros are written into its slot, and audio arriving after it starts the next slot.
# The samples that arrived come first in a window, in order; `missing` zeros follow.
# When the ring is full the oldest undelivered window is dropped (counted).
#
# Coalesced reads: SO_RCVLOWAT, set to the socket bytes of about one window of the
# session's tracks, makes the kernel report the socket readable once per window
# instead of once per chunk, on any loop (asyncio's selector, uvloop's libuv) and
# transport, with nothing in their code changed. The ticker lowers the mark to 1 when
# nothing was read for a window (a peer stopped: what it sent is read at once) and
# raises it again after a padded window was handed on.

from libc.math cimport NAN, isnan
from libc.string cimport memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec

import logging as _wn_logging

from cpython.bytearray cimport PyByteArray_AS_STRING
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.ref cimport PyObject
from numpy import float64 as np_float64, int16 as np_int16, int64 as np_int64, intp as np_intp
from numpy import uint8 as np_uint8, zeros as np_zeros

cdef object _wn_logger = _wn_logging.getLogger("fishjam_fast")
cdef object _REFUSED = object()  # _WindowAssembler._ring: no room for another track

cdef extern from *:
    """
    #ifdef _WIN32
    static int fj_set_rcvlowat(int fd, int bytes) { (void)fd; (void)bytes; return -1; }
    #else
    #include <sys/socket.h>
    /* the kernel reports the socket readable once `bytes` are queued (or at EOF) */
    static int fj_set_rcvlowat(int fd, int bytes) {
        return setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes);
    }
    #endif
    """
    int fj_set_rcvlowat(int fd, int bytes) nogil

cdef extern from *:
    """
    static inline Py_ssize_t fj_refcnt(PyObject *o) { return Py_REFCNT(o); }
    static inline PyObject *fj_type(PyObject *o) { return (PyObject *)Py_TYPE(o); }
    """
    Py_ssize_t fj_refcnt(PyObject *o)
    PyObject *fj_type(PyObject *o)

cdef enum:
    WN_MAX_LOWAT = 262144   # never ask the kernel to hold more than this
    WN_IDLE_SECONDS = 2     # a track silent this long no longer sizes the low-water mark

# the ticker looks at the session (ended? reconnected?) this often, not every tick: those
# are Python attribute reads, and the ticks of every windowed session of a loop add up
cdef double WN_CHECK_SECONDS = 0.1


cdef inline double _wn_now() noexcept nogil:
    # time.monotonic()'s clock
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef inline Py_ssize_t _wn_ws_header(Py_ssize_t size) noexcept:
    # an unmasked server frame's header (RFC 6455 5.2)
    return 2 if size < 126 else (4 if size < 65536 else 10)


cdef int _wn_scan(
    const unsigned char *data, Py_ssize_t n,
    ReadCursor *peer, ReadCursor *track_id, ReadCursor *payload,
) except -1:
    """1 if the frame is an AgentResponse whose oneof is track_data (peer_id, track.id
    and data set in the cursors, empty when absent), else 0. The same reading as the
    decoder's (_decode in codec.pyx): fields in any order, the last occurrence wins,
    another oneof member replaces it, unknown fields skipped; a malformed frame raises
    AgentProtocolError (the caller leaves it to the decoder, which reports it)."""
    cdef ReadCursor cur, sub, inner
    cdef uint32_t field, field2, field3
    cdef int wt, wt2, wt3
    cdef uint32_t member = 0
    rcur_init(&cur, data, n)
    rcur_init(peer, data, 0)
    rcur_init(track_id, data, 0)
    rcur_init(payload, data, 0)
    while cur.remaining > 0:
        rcur_tag(&cur, &field, &wt)
        if wt != WT_LEN or field > 3:
            rcur_skip(&cur, wt)
            continue
        rcur_sub(&cur, &sub)
        if field != member:
            member = field
            rcur_init(peer, data, 0)
            rcur_init(track_id, data, 0)
            rcur_init(payload, data, 0)
        if field != 2:  # authenticated or track_image: read (validated) as the decoder does
            while sub.remaining > 0:
                rcur_tag(&sub, &field2, &wt2)
                rcur_skip(&sub, wt2)
            continue
        while sub.remaining > 0:  # TrackData{1 peer_id, 2 track, 3 data}
            rcur_tag(&sub, &field2, &wt2)
            if wt2 != WT_LEN:
                rcur_skip(&sub, wt2)
            elif field2 == 1:
                rcur_sub(&sub, peer)
            elif field2 == 2:  # Track{1 id, 2 type, 3 metadata}, merged
                rcur_sub(&sub, &inner)
                while inner.remaining > 0:
                    rcur_tag(&inner, &field3, &wt3)
                    if field3 == 1 and wt3 == WT_LEN:
                        rcur_sub(&inner, track_id)
                    else:
                        rcur_skip(&inner, wt3)
            elif field2 == 3:
                rcur_sub(&sub, payload)
            else:
                rcur_skip(&sub, wt2)
    return 1 if member == 2 else 0


cdef class _TrackRing:
    """The ring of one peer track (see the top of this file)."""

    def __init__(self, bytes peer_key, bytes track_key, Py_ssize_t slots,
                 Py_ssize_t window, Py_ssize_t channels):
        # str first: invalid UTF-8 raises here, before anything is kept
        self.peer_id = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(peer_key), len(peer_key), NULL)
        self.track_id = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(track_key), len(track_key), NULL)
        self.peer_key = peer_key
        self.track_key = track_key
        cdef cnp.ndarray ring
        if channels == 1:
            ring = np_zeros(slots * window, np_int16)
        else:
            ring = np_zeros((slots * window, channels), np_int16)
        self.ring = ring
        self.base = <char *>cnp.PyArray_DATA(ring)
        self.slots = slots
        self.oldest = 0
        self.ready = 0
        self.fill = 0
        self.starts = np_zeros(slots, np_float64)
        self.missing = np_zeros(slots, np_intp)
        self.next_start = NAN
        self.last_data = 0.0
        self.wire_bytes = 0
        self.chunk_frames = 0
        # a window is always one whole slot: its view is made once, handed on each time
        self.views = [ring[k * window:(k + 1) * window] for k in range(slots)]


cdef class _WindowAssembler:
    """Assembles one session's peers' audio into windows (see the top of this file).

    Made by fishjam_fast.windows (which documents the behaviour); the session core
    (Connection.dispatch_at) calls ``take`` for every frame, the per-loop ticker ``tick``.
    """

    def __init__(self, loop, make_item, Py_ssize_t sample_rate,
                 Py_ssize_t channels, Py_ssize_t window, Py_ssize_t slots,
                 Py_ssize_t max_tracks, double clock0, bint coalesce):
        self.loop = loop
        self.make_item = make_item
        self.deliver = None
        self.session = None
        self.transport = None
        self.tracks = []
        self.last = None
        self.spare = None
        self.sample_rate = sample_rate
        self.channels = channels
        self.window = window
        self.window_s = window / <double>sample_rate
        self.tick_s = min(self.window_s / 4, 0.02)
        self.stop_s = max(self.tick_s, 0.03)
        self.slots = slots
        self.max_tracks = max_tracks
        self.clock0 = clock0
        self.scheduled = False
        self.fd = -1
        self.coalesce = coalesce
        self.lowat = 0
        self.last_read = _wn_now()
        self.forced_at = 0.0
        self.check_at = 0.0
        self.lowat_stale = True
        self.next_due = 0.0
        self.closed = False

    # -- receiving (the session core's hook) -------------------------------------------

    cdef bint take(self, const unsigned char *data, Py_ssize_t size) except -1:
        cdef ReadCursor peer, track_id, payload
        if self.closed:
            return False
        try:
            if not _wn_scan(data, size, &peer, &track_id, &payload):
                return False
        except AgentProtocolError:
            return False  # the decoder reports it (and counts it skipped)
        cdef double now = _wn_now()
        found = self._ring(&peer, &track_id, now)
        if found is None:
            return False  # invalid UTF-8 in an id: the decoder reports it
        # (True from here on: the session core counts the frame as received)
        self.chunks += 1
        self.last_read = now
        if found is _REFUSED:
            self.refused_tracks += 1
            return True
        cdef _TrackRing ring = <_TrackRing>found
        cdef Py_ssize_t frame_bytes = 2 * self.channels
        if payload.remaining % frame_bytes:
            if not self.refused_chunks:
                _wn_logger.warning(
                    "audio windows: dropped a chunk of %d bytes from peer %s track %s: "
                    "not whole %d-byte sample frames (PCM16, %d channel(s)); further ones "
                    "are counted in refused_chunks", payload.remaining, ring.peer_id,
                    ring.track_id, frame_bytes, self.channels)
            self.refused_chunks += 1
            return True
        ring.wire_bytes = size + _wn_ws_header(size)
        ring.chunk_frames = payload.remaining // frame_bytes
        ring.last_data = now
        self._write(ring, payload.ptr, ring.chunk_frames, now)
        self.lowat_stale = True
        self.next_due = 0.0  # the next tick looks at this session again
        if ring.ready and not self.scheduled:
            if self._all_ready():
                # every track heard has a whole window: handed on now, where it was read
                self.flush()
            else:
                # another track is mid-window: handed on once the transport has parsed
                # all it read, which may complete it (one hand-on per read)
                self.scheduled = True
                self.loop.call_soon(self._flush_soon)
        return True

    cdef bint _all_ready(self):
        cdef _TrackRing ring
        for ring in self.tracks:
            if ring.fill and not ring.ready:
                return False
        return True

    cdef object _ring(self, ReadCursor *peer, ReadCursor *track_id, double now):
        """The ring of the track; None: an id is not UTF-8; _REFUSED: too many tracks."""
        cdef _TrackRing ring = self.last
        cdef _TrackRing idle = None
        if (
            ring is not None
            and PyBytes_GET_SIZE(ring.track_key) == track_id.remaining
            and PyBytes_GET_SIZE(ring.peer_key) == peer.remaining
            and memcmp(PyBytes_AS_STRING(ring.track_key), track_id.ptr, track_id.remaining) == 0
            and memcmp(PyBytes_AS_STRING(ring.peer_key), peer.ptr, peer.remaining) == 0
        ):
            return ring
        for ring in self.tracks:
            if (
                PyBytes_GET_SIZE(ring.track_key) == track_id.remaining
                and PyBytes_GET_SIZE(ring.peer_key) == peer.remaining
                and memcmp(PyBytes_AS_STRING(ring.track_key), track_id.ptr, track_id.remaining) == 0
                and memcmp(PyBytes_AS_STRING(ring.peer_key), peer.ptr, peer.remaining) == 0
            ):
                self.last = ring
                return ring
            if ring.ready == 0 and ring.fill == 0 and (idle is None or ring.last_data < idle.last_data):
                idle = ring
        if len(self.tracks) >= self.max_tracks:
            if idle is None:
                return _REFUSED
            self.tracks.remove(idle)  # nothing of it is pending: make room
            if idle is self.last:
                self.last = None
        try:
            ring = _TrackRing(
                PyBytes_FromStringAndSize(<const char *>peer.ptr, peer.remaining),
                PyBytes_FromStringAndSize(<const char *>track_id.ptr, track_id.remaining),
                self.slots, self.window, self.channels,
            )
        except UnicodeDecodeError:
            return None
        self.tracks.append(ring)
        self.last = ring
        return ring

    cdef int _write(self, _TrackRing ring, const unsigned char *src, Py_ssize_t n,
                    double now) except -1:
        """Copies n sample frames into the ring: the one copy of the audio."""
        cdef Py_ssize_t window = self.window
        cdef Py_ssize_t frame_bytes = 2 * self.channels
        cdef Py_ssize_t capacity = ring.slots * window
        cdef Py_ssize_t free_frames = capacity - ring.ready * window - ring.fill
        cdef Py_ssize_t drop, slot, part
        if n > free_frames:  # full: the oldest undelivered windows go
            drop = min(ring.ready, (n - free_frames + window - 1) // window)
            ring.oldest += drop
            ring.ready -= drop
            self.overflow_frames += drop * window
            free_frames += drop * window
            if n > free_frames:  # one chunk longer than the ring: its head goes
                self.overflow_frames += n - free_frames
                src += (n - free_frames) * frame_bytes
                n = free_frames
        while n > 0:
            slot = (ring.oldest + ring.ready) % ring.slots
            if ring.fill == 0:  # a new window: it continues the run, or starts one
                ring.starts[slot] = (
                    now - self.clock0 if isnan(ring.next_start) else ring.next_start
                )
                ring.missing[slot] = 0
            part = min(n, window - ring.fill)
            memcpy(ring.base + (slot * window + ring.fill) * frame_bytes, src, part * frame_bytes)
            ring.fill += part
            src += part * frame_bytes
            n -= part
            if ring.fill == window:
                ring.fill = 0
                ring.ready += 1
                ring.next_start = ring.starts[slot] + self.window_s
        return 0

    cdef int _pad(self, _TrackRing ring) except -1:
        """Completes the partial window with zeros (its peer stopped mid-window)."""
        cdef Py_ssize_t window = self.window
        cdef Py_ssize_t frame_bytes = 2 * self.channels
        cdef Py_ssize_t slot = (ring.oldest + ring.ready) % ring.slots
        cdef Py_ssize_t rest = window - ring.fill
        memset(ring.base + (slot * window + ring.fill) * frame_bytes, 0, rest * frame_bytes)
        ring.missing[slot] = rest
        self.missing_frames += rest
        ring.fill = 0
        ring.ready += 1
        ring.next_start = NAN  # what comes next starts a new run, at its arrival
        self.lowat_stale = True
        return 0

    # -- handing windows on -------------------------------------------------------------

    def _flush_soon(self):
        self.scheduled = False
        self.flush()

    cpdef flush(self):
        """Hands on every complete window, oldest first, one ``deliver(items)`` each.

        The list and its TrackAudio items are reused for the next window when nobody
        kept a reference to them (the common callback only reads them): no object is
        made per window then; a list or item kept (audio() keeps both) is never touched
        again. The pcm views are the slots' own, made once.
        """
        cdef _TrackRing ring
        cdef list items, rings
        cdef Py_ssize_t slot, k, count
        cdef PyObject *held
        while not self.closed:
            rings = [ring for ring in self.tracks if ring.ready]
            count = len(rings)
            if not count:
                return
            items = self.spare
            self.spare = None
            if items is not None and PyList_GET_SIZE(items) == count:
                for k in range(count):
                    ring = <_TrackRing>rings[k]
                    slot = ring.oldest % ring.slots
                    item = <object>PyList_GET_ITEM(items, k)
                    item.peer_id = ring.peer_id
                    item.track_id = ring.track_id
                    item.pcm = ring.views[slot]
                    item.start = ring.starts[slot]
                    item.missing = ring.missing[slot]
                item = None
            else:
                items = []
                for ring in rings:
                    slot = ring.oldest % ring.slots
                    items.append(self.make_item(
                        ring.peer_id, ring.track_id, self.sample_rate, ring.views[slot],
                        ring.starts[slot], ring.missing[slot],
                    ))
            self.windows_delivered += 1
            try:
                self.deliver(items)
            except Exception as exc:
                self.loop.call_exception_handler({
                    "message": f"exception in the on_audio callback {self.deliver!r}",
                    "exception": exc,
                })
            finally:
                for ring in rings:  # the window's slot is free again
                    if ring.ready:
                        ring.oldest += 1
                        ring.ready -= 1
            # reusable only when this frame holds the sole reference to the list and the
            # list the sole one to each item, still ours (TrackAudio): nobody can see it
            if fj_refcnt(<PyObject *>items) == 1:
                for k in range(PyList_GET_SIZE(items)):
                    held = PyList_GET_ITEM(items, k)
                    if fj_refcnt(held) != 1 or fj_type(held) != <PyObject *>self.make_item:
                        break
                else:
                    self.spare = items

    # -- the ticker ---------------------------------------------------------------------

    cdef int tick(self, double now) except -1:
        """Pads windows whose peer stopped, forces or restores coalesced reads.

        Returns 1 when the session ended (the caller stops this assembler), else 0.
        """
        cdef _TrackRing ring
        cdef double drained
        cdef bint padded = False
        if now < self.next_due:
            # most ticks: nothing of this session can be due (it is not even looked at
            # further: with hundreds of sessions a tick is their cache misses)
            return 0
        if now >= self.check_at:
            self.check_at = now + WN_CHECK_SECONDS
            self.lowat_stale = True  # a track may have gone idle (WN_IDLE_SECONDS)
            session = self.session  # the session core: its declared fields
            if session is not None:
                if session.closed is not None:
                    # the session ended: what its peers sent last is handed on, padded
                    for ring in self.tracks:
                        if ring.fill:
                            self._pad(ring)
                            padded = True
                    if padded:
                        self.flush()
                    return 1
                transport = session.transport
                if transport is not self.transport:
                    self._attach(transport)
        # until when the kernel surely holds nothing unread for us
        if self.lowat <= 1:
            drained = now
        elif self.forced_at and now - self.forced_at >= self.tick_s * 0.5:
            drained = now
        else:
            drained = self.last_read
        for ring in self.tracks:
            if ring.fill and drained - ring.last_data >= self.stop_s:
                self._pad(ring)
                padded = True
        if self.fd >= 0 and self.coalesce:
            if self.forced_at:
                if now - self.forced_at >= self.stop_s + self.tick_s:
                    self.forced_at = 0.0
                    self.lowat_stale = False
                    self._set_lowat(self._wanted_lowat(now))
            elif self.lowat > 1 and now - self.last_read >= self.window_s + self.tick_s:
                # nothing read for a window: a peer stopped, or the mark is too high
                self._set_lowat(1)
                self.forced_at = now
                self.forced_reads += 1
            elif self.lowat_stale:  # (the mark moves only when the rings' fill did)
                self.lowat_stale = False
                self._set_lowat(self._wanted_lowat(now))
        if padded and not self.scheduled:
            self.flush()
        self.next_due = self._next_due()
        return 0

    cdef double _next_due(self):
        """When tick has work here at the earliest, with no chunk taken before (take()
        sets it to 0): the session's check, and with the socket read once per window,
        the forced read; in the other states (reading per chunk, a forced read, no
        mark) every tick looks, as padding then depends on the time alone."""
        if self.lowat_stale or self.forced_at or self.lowat <= 1 or self.fd < 0 or not self.coalesce:
            return 0.0
        return min(self.check_at, self.last_read + self.window_s + self.tick_s)

    cdef Py_ssize_t _wanted_lowat(self, double now):
        """The socket bytes that complete the current window of the tracks heard lately
        (a whole window's once reads are aligned with the windows), less half a chunk:
        the read happens as the window's last chunk arrives; 1 when none."""
        cdef _TrackRing ring
        cdef double wanted = 0.0
        cdef Py_ssize_t smallest = 0
        for ring in self.tracks:
            if ring.chunk_frames and now - ring.last_data < WN_IDLE_SECONDS:
                wanted += ring.wire_bytes * (<double>(self.window - ring.fill) / ring.chunk_frames)
                if smallest == 0 or ring.wire_bytes < smallest:
                    smallest = ring.wire_bytes
        wanted -= smallest / 2
        if wanted < 1:
            return 1
        return <Py_ssize_t>min(wanted, <double>WN_MAX_LOWAT)

    cdef int _set_lowat(self, Py_ssize_t value) except -1:
        if value == self.lowat or (value <= 1 and self.lowat <= 1 and self.lowat):
            return 0
        if fj_set_rcvlowat(self.fd, <int>value) != 0:
            self.coalesce = False  # (not a socket, or no SO_RCVLOWAT: read per chunk)
            self.lowat = 0
            return 0
        self.lowat = value
        return 0

    def _attach(self, transport):
        """Follows the session onto a new connection (a reconnection)."""
        self.transport = transport
        self.fd = -1
        self.lowat = 0
        self.forced_at = 0.0
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            try:
                self.fd = sock.fileno()
            except Exception:
                self.fd = -1

    def stop(self):
        """Takes nothing more; the socket reads per chunk again."""
        self.closed = True
        if self.fd >= 0 and self.lowat > 1:
            fj_set_rcvlowat(self.fd, 1)
        self.lowat = 0
        self.fd = -1

    def track_count(self):
        return len(self.tracks)

    def take_frame(self, frame):
        """take() for a frame held in any buffer (Connection.dispatch's hook)."""
        cdef Py_buffer view
        PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)
        try:
            return self.take(<const unsigned char *>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)


def _windows_tick(list assemblers, double now):
    """One tick of a loop's ticker over its assemblers: those whose session ended."""
    cdef _WindowAssembler assembler
    ended = None
    for assembler in assemblers:
        if assembler.tick(now):
            if ended is None:
                ended = []
            ended.append(assembler)
    return ended




# -- sending a window: its frames masked into one buffer, one socket write ---------------

cdef uint64_t _wn_rng = 0  # xorshift64* state, seeded from os.urandom on first use


cdef inline uint32_t _wn_mask_key() noexcept:
    # RFC 6455 5.3: a fresh, unpredictable masking key per frame
    global _wn_rng
    _wn_rng ^= _wn_rng >> 12
    _wn_rng ^= _wn_rng << 25
    _wn_rng ^= _wn_rng >> 27
    return <uint32_t>((_wn_rng * 0x2545F4914F6CDD1DULL) >> 32)


cdef int _wn_seed() except -1:
    """Seeds the masking keys' generator from os.urandom, once, before the first frame."""
    global _wn_rng
    if _wn_rng == 0:
        import os
        _wn_rng = int.from_bytes(os.urandom(8), "little") | 1
    return 0


cdef inline unsigned char *_wn_ws_head(unsigned char *p, Py_ssize_t n) noexcept:
    """Writes a masked binary frame's header for an ``n``-byte payload (RFC 6455 5.2),
    its masking key last; returns where the payload goes."""
    cdef Py_ssize_t i
    cdef uint32_t key = _wn_mask_key()
    p[0] = 0x82  # FIN, binary
    if n < 126:
        p[1] = 0x80 | <unsigned char>n
        p += 2
    elif n < 65536:
        p[1] = 0x80 | 126
        p[2] = <unsigned char>(n >> 8)
        p[3] = <unsigned char>n
        p += 4
    else:
        p[1] = 0x80 | 127
        for i in range(8):
            p[2 + i] = <unsigned char>((<uint64_t>n) >> (8 * (7 - i)))
        p += 10
    memcpy(p, &key, 4)
    return p + 4


cdef inline void _wn_mask(unsigned char *payload, Py_ssize_t n) noexcept:
    """Masks the payload after its key (the 4 bytes before it), in place."""
    cdef uint32_t key, word
    cdef unsigned char *mask = payload - 4
    cdef Py_ssize_t i = 0
    memcpy(&key, mask, 4)
    while i + 4 <= n:
        memcpy(&word, payload + i, 4)
        word ^= key
        memcpy(payload + i, &word, 4)
        i += 4
    while i < n:
        payload[i] ^= mask[i & 3]
        i += 1


def _ws_client_frames(cnp.ndarray buffer, cnp.ndarray offsets):
    """The messages ``buffer[offsets[i]:offsets[i+1]]`` as masked binary WebSocket frames
    (RFC 6455 5.2), back to back in one new bytearray: what a client writes for them,
    in one socket write."""
    _wn_seed()
    if buffer.dtype != np_uint8 or offsets.dtype != np_int64 or not buffer.flags.c_contiguous:
        raise TypeError("buffer must be contiguous uint8 and offsets int64")
    cdef const unsigned char *src = <const unsigned char *>cnp.PyArray_DATA(buffer)
    cdef const int64_t *offs = <const int64_t *>cnp.PyArray_DATA(offsets)
    cdef Py_ssize_t count = offsets.shape[0] - 1
    cdef Py_ssize_t size = buffer.shape[0]
    cdef Py_ssize_t total = 0, k, n
    for k in range(count):
        n = offs[k + 1] - offs[k]
        if offs[k] < 0 or n < 0 or offs[k + 1] > size:
            raise ValueError("offsets outside the buffer")
        total += _wn_ws_header(n) + 4 + n
    out = bytearray(total)
    cdef unsigned char *p = <unsigned char *>PyByteArray_AS_STRING(out)
    cdef unsigned char *payload
    for k in range(count):
        n = offs[k + 1] - offs[k]
        payload = _wn_ws_head(p, n)
        memcpy(payload, src + offs[k], n)
        _wn_mask(payload, n)
        p = payload + n
    return out


def _frame_window(TrackDataEncoder encoder, Py_ssize_t frame_bytes, double seconds_per_byte,
                  samples, chunk_ms):
    """send_pcm_nowait's framing, in C: PCM16 ``bytes`` or a C-contiguous native int16
    array of a PCM16 track (``frame_bytes`` per sample frame, ``seconds_per_byte``),
    framed every ``chunk_ms`` as the track_data send_chunk makes and masked as
    WebSocket client frames, into one buffer the session core writes to the socket at
    once (``Connection.write_client_frames``, which counts them).

    Returns ``(frames, count, payload_bytes, seconds)``, or None: declined (the
    general path frames, or says what is wrong).
    """
    if not seconds_per_byte:
        return None  # Opus
    if type(chunk_ms) is not int or not 10 <= chunk_ms <= 1000:
        return None  # (the general path says what is wrong)
    # the track's rate: seconds_per_byte is 1 / (rate * frame_bytes)
    cdef Py_ssize_t rate = <Py_ssize_t>(1.0 / (seconds_per_byte * frame_bytes) + 0.5)
    cdef Py_ssize_t per_chunk = rate * <Py_ssize_t>chunk_ms // 1000
    cdef Py_buffer view
    if PyBytes_CheckExact(samples):
        pass
    elif not (
        isinstance(samples, cnp.ndarray)
        and (<cnp.ndarray>samples).dtype == np_int16
        and (<cnp.ndarray>samples).dtype.isnative
        and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>samples)
        and (
            cnp.PyArray_NDIM(<cnp.ndarray>samples) == 1
            or (cnp.PyArray_NDIM(<cnp.ndarray>samples) == 2
                and (<cnp.ndarray>samples).shape[1] * 2 == frame_bytes)
        )
    ):
        return None
    PyObject_GetBuffer(samples, &view, PyBUF_SIMPLE)
    cdef bytes id_field = encoder._id_field
    cdef const char *id_s = PyBytes_AS_STRING(id_field)
    cdef Py_ssize_t id_n = PyBytes_GET_SIZE(id_field)
    cdef Py_ssize_t size, chunk_bytes, count, k, n, message, total = 0, sent_bytes = 0
    cdef const unsigned char *src
    cdef unsigned char *p
    cdef unsigned char *payload
    try:
        size = view.len
        if size % frame_bytes or size == 0 or per_chunk <= 0:
            return None
        _wn_seed()
        chunk_bytes = per_chunk * frame_bytes
        count = (size + chunk_bytes - 1) // chunk_bytes
        for k in range(count):
            n = min(chunk_bytes, size - k * chunk_bytes)
            message = _track_data_size(id_n, n)
            total += _wn_ws_header(message) + 4 + message
        out = bytearray(total)
        p = <unsigned char *>PyByteArray_AS_STRING(out)
        src = <const unsigned char *>view.buf
        for k in range(count):
            n = min(chunk_bytes, size - k * chunk_bytes)
            message = _track_data_size(id_n, n)
            payload = _wn_ws_head(p, message)
            p = _write_track_data(payload, id_s, id_n, n)
            memcpy(p, src + k * chunk_bytes, n)
            p += n
            _wn_mask(payload, message)
            sent_bytes += message
        wbuf_check_written(<unsigned char *>PyByteArray_AS_STRING(out), p, total, "_frame_window")
    finally:
        PyBuffer_Release(&view)
    return out, count, sent_bytes, size * seconds_per_byte
