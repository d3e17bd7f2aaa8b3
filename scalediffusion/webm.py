"""A WebM/Matroska probe that counts video frames and measures their time span without decoding. Pure, no I/O.

The ingest service uses it to check an uploaded browser recording against its telemetry: a video that holds
fewer frames, or spans less time, than the telemetry claims cannot have come from that session.

The walk follows the EBML structure (RFC 8794) and the Matroska element IDs (RFC 9559) one element at a time,
reading element headers and skipping payloads, so frame data is never copied. The nesting it follows is fixed
(Segment > Cluster > BlockGroup > Block, Segment > Tracks > TrackEntry > Video), so there is no recursion.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

# EBML header (RFC 8794).
EBML_ID = 0x1A45DFA3
DOC_TYPE_ID = 0x4282
ACCEPTED_DOC_TYPES = frozenset({"webm", "matroska"})

# Matroska top level and Segment children (RFC 9559 section 5.1).
SEGMENT_ID = 0x18538067
SEEK_HEAD_ID = 0x114D9B74
INFO_ID = 0x1549A966
TRACKS_ID = 0x1654AE6B
CLUSTER_ID = 0x1F43B675
CUES_ID = 0x1C53BB6B
CHAPTERS_ID = 0x1043A770
TAGS_ID = 0x1254C367
ATTACHMENTS_ID = 0x1941A469

# Info children.
TIMESTAMP_SCALE_ID = 0x2AD7B1
DURATION_ID = 0x4489
DEFAULT_TIMESTAMP_SCALE_NS = 1_000_000

# Tracks children.
TRACK_ENTRY_ID = 0xAE
TRACK_NUMBER_ID = 0xD7
TRACK_TYPE_ID = 0x83
CODEC_ID_ID = 0x86
VIDEO_ID = 0xE0
PIXEL_WIDTH_ID = 0xB0
PIXEL_HEIGHT_ID = 0xBA
TRACK_TYPE_VIDEO = 1

# Cluster children.
CLUSTER_TIMESTAMP_ID = 0xE7
SIMPLE_BLOCK_ID = 0xA3
BLOCK_GROUP_ID = 0xA0
BLOCK_ID = 0xA1

# An unknown-size Element ends where an Element that cannot be its child starts (RFC 8794 section 6.2).
# Clusters hold no Segment-level or top-level Elements, so any of these ends an unknown-size Cluster.
SEGMENT_LEVEL_IDS = frozenset(
    {SEEK_HEAD_ID, INFO_ID, TRACKS_ID, CLUSTER_ID, CUES_ID, CHAPTERS_ID, TAGS_ID, ATTACHMENTS_ID}
)
TOP_LEVEL_IDS = frozenset({EBML_ID, SEGMENT_ID})
CLUSTER_TERMINATOR_IDS = SEGMENT_LEVEL_IDS | TOP_LEVEL_IDS

MIN_ID_LEAD_BYTE = 0x10  # EBMLMaxIDLength is 4: a first ID byte below this would start a 5+ byte ID
MAX_UINT_BYTES = 8
MAX_STRING_BYTES = 256  # DocType and CodecID are short; never copy a huge corrupt "string"
BLOCK_LACING_MASK = 0x06  # flag bits 1-2: 00 none, 01 Xiph, 10 fixed-size, 11 EBML
NS_PER_MS = 1_000_000


class WebmError(ValueError):
    """Not a WebM/Matroska stream we can read; message says why."""


class _Truncated(Exception):
    """Internal: the data ends inside an element (a cut-off upload)."""


@dataclass(frozen=True)
class WebmInfo:
    """What a probe found about the first video track.

    Attributes:
        frame_count: Frames in the video track's blocks (SimpleBlock or BlockGroup/Block); a laced block counts
            each of its frames.
        duration_ms: Latest minus earliest video block timestamp, in ms (no frame duration added).
        first_timestamp_ms: Earliest video block timestamp, in ms.
        width: The track's PixelWidth, 0 if absent.
        height: The track's PixelHeight, 0 if absent.
        codec_id: The track's CodecID, e.g. "V_VP8".
        truncated: True when the data ends inside an element (a cut-off upload).
        declared_duration_ms: Segment Info Duration scaled by TimestampScale, if present (MediaRecorder omits it).
        timestamps_ms: The video track's block timestamps in file order, in ms (one per block: a laced block's
            extra frames have no timestamp of their own, so with lacing this is shorter than frame_count).
    """

    frame_count: int
    duration_ms: float
    first_timestamp_ms: float
    width: int
    height: int
    codec_id: str
    truncated: bool
    declared_duration_ms: float | None
    timestamps_ms: tuple[float, ...] = ()


@dataclass
class _VideoTrack:
    number: int
    codec_id: str
    width: int
    height: int


@dataclass(slots=True)
class _TrackBlocks:
    """One track's blocks so far: frames, earliest and latest timestamp (ticks), timestamps in file order."""

    frames: int
    first: int
    last: int
    ticks: list[int]


class _Scan:
    """Mutable state of one probe: what Info and Tracks said, and per-track block statistics."""

    __slots__ = ("block_budget", "blocks", "duration", "timestamp_scale", "tracks_seen", "video")

    def __init__(self, max_blocks: int) -> None:
        self.timestamp_scale = DEFAULT_TIMESTAMP_SCALE_NS
        self.duration: float | None = None
        self.tracks_seen = False
        self.video: _VideoTrack | None = None
        # track number -> its blocks; kept for every track because Matroska does not require Tracks to precede
        # the Clusters, so the video track may be known only at the end.
        self.blocks: dict[int, _TrackBlocks] = {}
        self.block_budget = max_blocks

    def result(self, truncated: bool) -> WebmInfo:
        if not self.tracks_seen:
            raise WebmError("no complete Tracks element before the data ends")
        video = self.video
        if video is None:
            raise WebmError("no video track in Tracks")
        ms_per_tick = self.timestamp_scale / NS_PER_MS
        stats = self.blocks.get(video.number, _TrackBlocks(0, 0, 0, []))
        frames, first, last, ticks = stats.frames, stats.first, stats.last, stats.ticks
        declared = None
        if self.duration is not None and math.isfinite(self.duration) and self.duration >= 0:
            declared = self.duration * ms_per_tick
        return WebmInfo(
            frame_count=frames,
            duration_ms=(last - first) * ms_per_tick,
            first_timestamp_ms=first * ms_per_tick,
            width=video.width,
            height=video.height,
            codec_id=video.codec_id,
            truncated=truncated,
            declared_duration_ms=declared,
            timestamps_ms=tuple(t * ms_per_tick for t in ticks),
        )


def probe_webm(data: bytes, max_blocks: int = 2_000_000) -> WebmInfo:
    """Counts the video frames of a WebM/Matroska stream and measures their time span, without decoding.

    Handles unknown-size Segments and Clusters (as MediaRecorder writes them) and cut-off data: when the
    EBML header and the Tracks were readable, a truncated stream yields what was seen, with truncated=True.
    Only the first Segment is probed. Durations come from block timestamps: earliest to latest, so frames
    stored out of presentation order still measure the span they cover.

    Args:
        data: The whole file, any bytes-like object (read through a memoryview: frame data is never copied).
        max_blocks: Work limit: blocks of all tracks to look at before giving up.

    Returns:
        What the probe found about the first video track.

    Raises:
        WebmError: Not an EBML stream of DocType "webm" or "matroska", no readable Tracks with a video track,
            a malformed element, or more than max_blocks blocks.
    """
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1:
        view = memoryview(view.tobytes())
    view = view.cast("B") if view.format != "B" else view
    pos = _read_ebml_header(view)
    scan = _Scan(max_blocks)
    truncated = False
    try:
        _walk_top_level(view, pos, scan)
    except _Truncated:
        truncated = True
    return scan.result(truncated)


def _fail(pos: int, end: int | None, n: int, what: str) -> NoReturn:
    """Raises _Truncated when `what` runs past the data's end, WebmError when past a parent that ends sooner."""
    if end is None or end > n:
        raise _Truncated
    raise WebmError(f"{what} at byte {pos} overruns its parent element ending at byte {end}")


def _read_header(buf: memoryview, pos: int, end: int | None) -> tuple[int, int | None, int]:
    """Reads an element header: (ID with its marker bits, data size or None for unknown size, data offset).

    Args:
        buf: The stream.
        pos: Where the header starts.
        end: Where the parent ends (None: unknown size, so the data's end).

    Raises:
        _Truncated: The data ends inside the header.
        WebmError: Not a valid header, or it overruns a parent that ends within the data.
    """
    n = len(buf)
    bound = n if end is None or end > n else end
    if pos >= bound:
        _fail(pos, end, n, "element header")
    first = buf[pos]
    if first < MIN_ID_LEAD_BYTE:
        raise WebmError(f"invalid element ID byte 0x{first:02X} at byte {pos}")
    id_len = 9 - first.bit_length()
    size_pos = pos + id_len
    if size_pos >= bound:
        _fail(pos, end, n, "element header")
    eid = first if id_len == 1 else int.from_bytes(buf[pos:size_pos], "big")
    lead = buf[size_pos]
    if lead == 0:  # a size VINT is at most 8 bytes
        raise WebmError(f"invalid element size at byte {size_pos}")
    size_len = 9 - lead.bit_length()
    data_pos = size_pos + size_len
    if data_pos > bound:
        _fail(pos, end, n, "element header")
    size = lead & (0xFF >> size_len)
    for i in range(size_pos + 1, data_pos):
        size = (size << 8) | buf[i]
    if size == (1 << (7 * size_len)) - 1:  # all VINT_DATA bits set: the reserved "unknown size"
        return eid, None, data_pos
    return eid, size, data_pos


def _children(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """Yields (ID, data start, data end) of each child of a known-size master element.

    Raises:
        _Truncated: The data ends inside the parent.
        WebmError: A child is malformed, has an unknown size, or overruns the parent.
    """
    n = len(buf)
    pos = start
    while pos < end:
        eid, size, data_pos = _read_header(buf, pos, end)
        if size is None:
            raise WebmError(f"element 0x{eid:X} at byte {pos} has an unknown size where none is allowed")
        child_end = data_pos + size
        if child_end > end:
            raise WebmError(f"element 0x{eid:X} at byte {pos} overruns its parent ending at byte {end}")
        if child_end > n:
            raise _Truncated
        yield eid, data_pos, child_end
        pos = child_end


def _uint(buf: memoryview, start: int, end: int) -> int:
    if end - start > MAX_UINT_BYTES:
        raise WebmError(f"unsigned integer of {end - start} bytes at byte {start}")
    return int.from_bytes(buf[start:end], "big")


def _float(buf: memoryview, start: int, end: int) -> float:
    size = end - start
    if size == 0:
        return 0.0
    if size == 4:
        return struct.unpack(">f", buf[start:end])[0]
    if size == 8:
        return struct.unpack(">d", buf[start:end])[0]
    raise WebmError(f"float of {size} bytes at byte {start}")


def _string(buf: memoryview, start: int, end: int) -> str:
    # EBML strings may be padded with NULs.
    raw = bytes(buf[start : min(end, start + MAX_STRING_BYTES)])
    return raw.split(b"\0", 1)[0].decode("ascii", errors="replace")


def _read_ebml_header(buf: memoryview) -> int:
    """Checks the EBML header and its DocType; returns the offset just past it.

    Raises:
        WebmError: No EBML header first, a cut-off header, or a DocType other than webm/matroska.
    """
    if len(buf) < 4 or int.from_bytes(buf[:4], "big") != EBML_ID:
        raise WebmError("no EBML header at the start: not a WebM/Matroska stream")
    try:
        _, size, data_pos = _read_header(buf, 0, None)
        if size is None:
            raise WebmError("EBML header has an unknown size")
        header_end = data_pos + size
        if header_end > len(buf):
            raise _Truncated
        doc_type = None
        for eid, start, end in _children(buf, data_pos, header_end):
            if eid == DOC_TYPE_ID:
                doc_type = _string(buf, start, end)
    except _Truncated:
        raise WebmError("data ends inside the EBML header") from None
    if doc_type not in ACCEPTED_DOC_TYPES:
        raise WebmError(f"DocType {doc_type!r} is not webm or matroska")
    return header_end


def _walk_top_level(buf: memoryview, pos: int, scan: _Scan) -> None:
    """Skips to the first Segment and walks it."""
    while True:
        eid, size, data_pos = _read_header(buf, pos, None)
        if eid == SEGMENT_ID:
            _walk_segment(buf, data_pos, None if size is None else data_pos + size, scan)
            return
        if size is None:
            raise WebmError(f"top-level element 0x{eid:X} at byte {pos} has an unknown size")
        pos = data_pos + size  # an element EBML readers may ignore (Void, CRC-32, unknown IDs)


def _walk_segment(buf: memoryview, pos: int, end: int | None, scan: _Scan) -> None:
    """Walks a Segment's children; end is None for an unknown-size Segment."""
    n = len(buf)
    limit = n if end is None else min(end, n)
    while pos < limit:
        eid, size, data_pos = _read_header(buf, pos, end)
        if end is None and eid in TOP_LEVEL_IDS:
            return  # an unknown-size Segment ends where the next EBML document or Segment starts
        if size is None:
            if eid != CLUSTER_ID:
                raise WebmError(f"element 0x{eid:X} at byte {pos} has an unknown size where none is allowed")
            pos = _walk_cluster(buf, data_pos, None, end, scan)
            continue
        child_end = data_pos + size
        if end is not None and child_end > end:
            raise WebmError(f"element 0x{eid:X} at byte {pos} overruns the Segment ending at byte {end}")
        if eid == CLUSTER_ID:
            _walk_cluster(buf, data_pos, child_end, end, scan)
        elif eid == INFO_ID:
            _read_info(buf, data_pos, child_end, scan)
        elif eid == TRACKS_ID:
            _read_tracks(buf, data_pos, child_end, scan)
        elif child_end > n:
            raise _Truncated
        pos = child_end
    if end is not None and end > n:
        raise _Truncated


def _read_info(buf: memoryview, start: int, end: int, scan: _Scan) -> None:
    for eid, child_start, child_end in _children(buf, start, end):
        if eid == TIMESTAMP_SCALE_ID:
            scale = _uint(buf, child_start, child_end)
            if scale == 0:
                raise WebmError("TimestampScale is 0")
            scan.timestamp_scale = scale
        elif eid == DURATION_ID:
            scan.duration = _float(buf, child_start, child_end)


def _read_tracks(buf: memoryview, start: int, end: int, scan: _Scan) -> None:
    """Records the first video TrackEntry; entries cut off by the data's end are not used."""
    for eid, entry_start, entry_end in _children(buf, start, end):
        if eid == TRACK_ENTRY_ID and scan.video is None:
            scan.video = _read_track_entry(buf, entry_start, entry_end)
    scan.tracks_seen = True


def _read_track_entry(buf: memoryview, start: int, end: int) -> _VideoTrack | None:
    """The TrackEntry as a video track, or None when it is not one (or has no TrackNumber)."""
    number = track_type = width = height = 0
    codec_id = ""
    for eid, child_start, child_end in _children(buf, start, end):
        if eid == TRACK_NUMBER_ID:
            number = _uint(buf, child_start, child_end)
        elif eid == TRACK_TYPE_ID:
            track_type = _uint(buf, child_start, child_end)
        elif eid == CODEC_ID_ID:
            codec_id = _string(buf, child_start, child_end)
        elif eid == VIDEO_ID:
            for video_eid, video_start, video_end in _children(buf, child_start, child_end):
                if video_eid == PIXEL_WIDTH_ID:
                    width = _uint(buf, video_start, video_end)
                elif video_eid == PIXEL_HEIGHT_ID:
                    height = _uint(buf, video_start, video_end)
    if track_type != TRACK_TYPE_VIDEO or number == 0:
        return None
    return _VideoTrack(number=number, codec_id=codec_id, width=width, height=height)


def _walk_cluster(buf: memoryview, pos: int, end: int | None, segment_end: int | None, scan: _Scan) -> int:
    """Walks a Cluster's children, recording its blocks; returns where the Cluster ends.

    Args:
        buf: The stream.
        pos: Where the Cluster's data starts.
        end: Where the Cluster ends, None for an unknown-size Cluster (which ends where a Segment-level or
            top-level element starts, or where the Segment or the data ends).
        segment_end: Where the Segment ends (None: unknown size).
        scan: Receives the block statistics.
    """
    n = len(buf)
    unknown = end is None
    bound = segment_end if unknown else end
    limit = n if bound is None else min(bound, n)
    cluster_ticks = 0
    blocks = scan.blocks
    while pos < limit:
        eid, size, data_pos = _read_header(buf, pos, bound)
        if unknown and eid in CLUSTER_TERMINATOR_IDS:
            return pos
        if size is None:
            raise WebmError(f"element 0x{eid:X} at byte {pos} has an unknown size where none is allowed")
        child_end = data_pos + size
        if bound is not None and child_end > bound:
            raise WebmError(f"element 0x{eid:X} at byte {pos} overruns its parent ending at byte {bound}")
        if child_end > n:
            raise _Truncated  # a block cut off by the data's end is not counted
        if eid == SIMPLE_BLOCK_ID or eid == BLOCK_GROUP_ID:
            if eid == SIMPLE_BLOCK_ID:
                block = (data_pos, child_end)
            else:
                block = None
                for group_eid, group_start, group_end in _children(buf, data_pos, child_end):
                    if group_eid == BLOCK_ID:
                        block = (group_start, group_end)
            if block is not None:
                scan.block_budget -= 1
                if scan.block_budget < 0:
                    raise WebmError("more blocks than max_blocks")
                track, relative, frames = _read_block_header(buf, *block)
                ticks = cluster_ticks + relative
                stats = blocks.get(track)
                if stats is None:
                    blocks[track] = _TrackBlocks(frames, ticks, ticks, [ticks])
                else:
                    stats.ticks.append(ticks)
                    stats.frames += frames
                    if ticks < stats.first:
                        stats.first = ticks
                    elif ticks > stats.last:
                        stats.last = ticks
        elif eid == CLUSTER_TIMESTAMP_ID:
            cluster_ticks = _uint(buf, data_pos, child_end)
        pos = child_end
    if bound is not None and bound > n:
        raise _Truncated
    return pos


def _read_block_header(buf: memoryview, start: int, end: int) -> tuple[int, int, int]:
    """(track number, timestamp relative to the Cluster, frame count) of a SimpleBlock or Block."""
    if start >= end:
        raise WebmError(f"empty block at byte {start}")
    lead = buf[start]
    if lead == 0:
        raise WebmError(f"invalid track number in the block at byte {start}")
    track_len = 9 - lead.bit_length()
    flags_pos = start + track_len + 2
    if flags_pos >= end:
        raise WebmError(f"block at byte {start} too short for its header")
    track = lead & (0xFF >> track_len)
    for i in range(start + 1, start + track_len):
        track = (track << 8) | buf[i]
    relative = int.from_bytes(buf[start + track_len : flags_pos], "big", signed=True)
    frames = 1
    if buf[flags_pos] & BLOCK_LACING_MASK:
        # Every lacing kind starts with "number of frames minus one".
        if flags_pos + 1 >= end:
            raise WebmError(f"laced block at byte {start} has no frame count")
        frames = buf[flags_pos + 1] + 1
    return track, relative, frames
