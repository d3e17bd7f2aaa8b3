"""Rolling KV cache for causal video self-attention: a preallocated ring buffer of whole frames.

Layout: slots [0, sink_frames) hold the first frames of the stream and are never evicted (attention sinks keep the
softmax anchored, as in StreamingLLM / StreamDiffusionV2); slots [sink_frames, sink_frames + window_frames) are a
ring holding the most recent non-sink frames, the oldest overwritten when full. Both tensors are allocated once;
an append is one slice copy per frame (no torch.cat, no reallocation).

Keys are stored UN-rotated. RoPE is applied at read time with refreshed temporal positions: the cached frames are
numbered 0..n-1 in temporal order and the current chunk continues from n. Positions therefore never exceed
sink + window + chunk frames, however long the stream runs. The alternative, storing rotated keys and re-rotating
the whole cache by −1 frame on every eviction, costs the same pass over the cache, but does it as a read-modify-write
whose rounding error accumulates in bf16/fp16 over thousands of evictions; rotating fresh from the stored keys is
exact every time and keeps the buffer's meaning independent of position. The price is one rotation of the cached
keys per attention call instead of once per frame, a pass a fused kernel can absorb into its key loads.
"""

from __future__ import annotations

import torch


class RollingKVCache:
    """Keys/values of `sink_frames` first frames plus up to `window_frames` latest frames, each `tokens_per_frame`
    tokens, for a batch of `batch` streams that advance together. Tensors are [batch, heads, tokens, head_dim]."""

    def __init__(self, batch: int, heads: int, head_dim: int, tokens_per_frame: int, sink_frames: int,
                 window_frames: int, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> None:
        for name, value in (("batch", batch), ("heads", heads), ("head_dim", head_dim),
                            ("tokens_per_frame", tokens_per_frame)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if sink_frames < 0 or window_frames < 0 or sink_frames + window_frames < 1:
            raise ValueError(f"need sink_frames, window_frames >= 0 and at least one frame of capacity, "
                             f"got sink_frames={sink_frames}, window_frames={window_frames}")
        self.batch, self.heads, self.head_dim = batch, heads, head_dim
        self.tokens_per_frame = tokens_per_frame
        self.sink_frames, self.window_frames = sink_frames, window_frames
        shape = (batch, heads, (sink_frames + window_frames) * tokens_per_frame, head_dim)
        self.keys = torch.empty(shape, dtype=dtype, device=device)
        self.values = torch.empty(shape, dtype=dtype, device=device)
        self.frames_seen = 0

    @property
    def capacity_frames(self) -> int:
        return self.sink_frames + self.window_frames

    @property
    def frames_cached(self) -> int:
        sinks = min(self.frames_seen, self.sink_frames)
        return sinks + min(self.frames_seen - sinks, self.window_frames)

    def reset(self) -> None:
        """Start a new stream in the same buffers."""
        self.frames_seen = 0

    def _slot_of(self, frame_index: int) -> int | None:
        """Slot holding stream frame `frame_index` (None for non-sink frames when there is no window)."""
        if frame_index < self.sink_frames:
            return frame_index
        if self.window_frames == 0:
            return None
        return self.sink_frames + (frame_index - self.sink_frames) % self.window_frames

    def frame_indices(self) -> list[int]:
        """Stream indices of the cached frames in temporal order: sinks, then the window oldest first."""
        sinks = list(range(min(self.frames_seen, self.sink_frames)))
        n_window = self.frames_cached - len(sinks)
        return sinks + list(range(self.frames_seen - n_window, self.frames_seen))

    def append(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Store one or more whole frames of un-rotated keys/values [batch, heads, frames·tokens_per_frame,
        head_dim]; when the window is full each new frame overwrites the oldest non-sink frame."""
        expected = (self.batch, self.heads, self.head_dim)
        for name, tensor in (("keys", keys), ("values", values)):
            if tensor.dim() != 4 or (tensor.shape[0], tensor.shape[1], tensor.shape[3]) != expected:
                raise ValueError(f"{name} must be [{self.batch}, {self.heads}, frames*{self.tokens_per_frame}, "
                                 f"{self.head_dim}], got {tuple(tensor.shape)}")
        if keys.shape != values.shape or keys.shape[2] % self.tokens_per_frame:
            raise ValueError(f"keys {tuple(keys.shape)} and values {tuple(values.shape)} must match and hold whole "
                             f"frames of {self.tokens_per_frame} tokens")
        tpf = self.tokens_per_frame
        n_frames = keys.shape[2] // tpf
        # A non-sink frame followed by >= window_frames frames in this same append would be overwritten: skip it.
        first_kept = n_frames - self.window_frames
        for frame in range(n_frames):
            slot = self._slot_of(self.frames_seen + frame)
            if slot is None or (frame < first_kept and slot >= self.sink_frames):
                continue
            self.keys[:, :, slot * tpf:(slot + 1) * tpf].copy_(keys[:, :, frame * tpf:(frame + 1) * tpf])
            self.values[:, :, slot * tpf:(slot + 1) * tpf].copy_(values[:, :, frame * tpf:(frame + 1) * tpf])
        self.frames_seen += n_frames

    def _temporal_slots(self) -> list[int]:
        return [self._slot_of(index) for index in self.frame_indices()]  # type: ignore[misc]

    def view(self, ordered: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(keys, values, frame_positions) of the cached frames, keys un-rotated.

        ordered=True: tokens in temporal order [sinks | window oldest→newest], positions 0..n-1; a copy only when
        the ring has wrapped. ordered=False: a zero-copy view in slot order with each frame's refreshed temporal
        position; attention over the context is unmasked, so slot order gives the same result once keys are
        rotated by these positions."""
        n_frames = self.frames_cached
        tpf = self.tokens_per_frame
        device = self.keys.device
        slots = self._temporal_slots()
        # Slots fill in order, so the occupied slots are always the prefix [0, n_frames).
        keys, values = self.keys[:, :, :n_frames * tpf], self.values[:, :, :n_frames * tpf]
        if slots == list(range(n_frames)):
            return keys, values, torch.arange(n_frames, device=device)
        if not ordered:
            position_of_slot = [0] * n_frames
            for position, slot in enumerate(slots):
                position_of_slot[slot] = position
            return keys, values, torch.tensor(position_of_slot, device=device)
        slot_tensor = torch.tensor(slots, device=device)
        token_index = (slot_tensor[:, None] * tpf + torch.arange(tpf, device=device)[None, :]).flatten()
        return (self.keys.index_select(2, token_index), self.values.index_select(2, token_index),
                torch.arange(n_frames, device=device))
