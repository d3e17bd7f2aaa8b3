"""Attention core of the diffusion engine: 3D RoPE, the rolling KV cache, and chunk attention (SDPA reference and
the Triton kernel run by Triton's CPU interpreter). The cache must be an optimisation, never a change of meaning."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from services.diffusion.engine.attention import (
    cached_chunk_attention,
    chunk_attention,
    frame_causal_mask,
    resolve_backend,
)
from services.diffusion.engine.kv_cache import RollingKVCache
from services.diffusion.engine.rope import axis_dims, rope_3d, rope_video, video_positions

REPO = Path(__file__).resolve().parents[2]
KERNEL_MODULE = "services.diffusion.engine.triton_attention"
TRITON_MISSING = importlib.util.find_spec("triton") is None
needs_triton = pytest.mark.skipif(TRITON_MISSING, reason="triton is not installed (pip install 'triton==3.9.0')")


@contextlib.contextmanager
def triton_interpreter():
    """TRITON_INTERPRET=1 for as long as kernels run: triton.jit reads it when it decorates (interpreter or
    compiler) and the interpreter reads it again while running, so it cannot be unset in between."""
    saved = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = saved


def _import_kernel_interpreted():
    """Import the kernel module under the interpreter, reloading it if something imported it compiled."""
    if TRITON_MISSING:
        return None
    with triton_interpreter():
        module = importlib.import_module(KERNEL_MODULE)
        if not module._is_interpreted(module._chunk_attention_kernel):
            module = importlib.reload(module)
        return module


@pytest.fixture(autouse=True, scope="module")
def _interpreter_for_this_module():
    """Only this module's tests see TRITON_INTERPRET=1; the rest of the session keeps its environment."""
    with triton_interpreter():
        yield


kernel = _import_kernel_interpreted()

# The kernel does the same fp32 arithmetic as the reference in another order (block-wise sums, exp2 with running-max
# rescaling); observed differences are ~1e-6. 2e-3 also covers TF32-class products should a GPU build use them.
KERNEL_TOLERANCE = 2e-3


def naive_attention(q, keys, values, mask):
    """Masked softmax attention written out in float64: the independent oracle for both backends."""
    scores = (q.double() @ keys.double().transpose(-1, -2)) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~mask, float("-inf"))
    return (scores.softmax(-1) @ values.double()).to(q.dtype)


def random_inputs(batch, heads, head_dim, ctx_tokens, chunk_frames, tokens_per_frame, seed=0, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    chunk_shape = (batch, heads, chunk_frames * tokens_per_frame, head_dim)
    ctx_shape = (batch, heads, ctx_tokens, head_dim)
    q, k_chunk, v_chunk = (torch.randn(chunk_shape, generator=generator, dtype=dtype) for _ in range(3))
    k_ctx, v_ctx = (torch.randn(ctx_shape, generator=generator, dtype=dtype) for _ in range(2))
    return q, k_ctx, v_ctx, k_chunk, v_chunk


# ---------------------------------------------------------------------------------------------------------- RoPE


def test_head_dim_splits_like_wan():
    assert axis_dims(64) == (24, 20, 20)
    assert axis_dims(128) == (44, 42, 42)
    assert axis_dims(16) == (8, 4, 4)
    for bad in (5, 7, 4):
        with pytest.raises(ValueError):
            axis_dims(bad)


def single_token(position):
    return tuple(torch.tensor([value]) for value in position)


@settings(max_examples=40, deadline=None)
@given(
    q_pos=st.tuples(*[st.integers(0, 500)] * 3),
    k_pos=st.tuples(*[st.integers(0, 500)] * 3),
    shift=st.tuples(*[st.integers(-300, 300)] * 3),
    seed=st.integers(0, 1000),
)
def test_rope_score_depends_only_on_the_position_difference(q_pos, k_pos, shift, seed):
    generator = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, 1, 1, 1, 64, generator=generator, dtype=torch.float64)
    shifted_q = tuple(p + s for p, s in zip(q_pos, shift))
    shifted_k = tuple(p + s for p, s in zip(k_pos, shift))

    def score(q_at, k_at):
        return (rope_3d(q, *single_token(q_at)) * rope_3d(k, *single_token(k_at))).sum().item()

    assert score(q_pos, k_pos) == pytest.approx(score(shifted_q, shifted_k), rel=1e-9, abs=1e-9)


def test_rope_preserves_norms_is_identity_at_origin_and_keeps_dtype():
    x = torch.randn(2, 3, 5 * 4 * 3, 32)
    t, h, w = video_positions(torch.arange(5) + 97, 4, 3)
    rotated = rope_3d(x, t, h, w)
    torch.testing.assert_close(rotated.norm(dim=-1), x.norm(dim=-1), rtol=1e-5, atol=1e-5)
    zeros = torch.zeros(x.shape[2], dtype=torch.int64)
    torch.testing.assert_close(rope_3d(x, zeros, zeros, zeros), x)
    assert rope_3d(x.to(torch.bfloat16), t, h, w).dtype == torch.bfloat16


def test_each_axis_rotates_only_its_own_band():
    x = torch.randn(1, 1, 1, 64)
    t_band, h_band, _ = axis_dims(64)
    base = rope_3d(x, *single_token((3, 4, 5)))
    moved_h = rope_3d(x, *single_token((3, 9, 5)))
    changed = (base - moved_h).abs()[0, 0, 0] > 1e-7
    assert not changed[:t_band].any() and changed[t_band:t_band + h_band].any()
    assert not changed[t_band + h_band:].any()


def test_video_positions_are_frame_major_then_row_major():
    t, h, w = video_positions(torch.tensor([7, 8]), 2, 3)
    assert t.tolist() == [7] * 6 + [8] * 6
    assert h.tolist() == [0, 0, 0, 1, 1, 1] * 2
    assert w.tolist() == [0, 1, 2] * 4


# ------------------------------------------------------------------------------------------- reference attention


def test_frame_causal_mask_is_frame_granular():
    mask = frame_causal_mask(num_ctx=2, num_chunk=4, tokens_per_frame=2)
    assert mask.tolist() == [
        [True, True, True, True, False, False],
        [True, True, True, True, False, False],  # sees the later token of its own frame
        [True, True, True, True, True, True],
        [True, True, True, True, True, True],
    ]


@pytest.mark.parametrize("ctx_tokens", [0, 7])
def test_sdpa_reference_matches_the_written_out_softmax(ctx_tokens):
    q, k_ctx, v_ctx, k_chunk, v_chunk = random_inputs(2, 3, 16, ctx_tokens, chunk_frames=3, tokens_per_frame=5)
    out = chunk_attention(q, k_ctx, v_ctx, k_chunk, v_chunk, 5, backend="sdpa")
    mask = frame_causal_mask(ctx_tokens, q.shape[2], 5)
    expected = naive_attention(q, torch.cat((k_ctx, k_chunk), 2), torch.cat((v_ctx, v_chunk), 2), mask)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(chunk_attention(q, None, None, k_chunk, v_chunk, 5, backend="sdpa"),
                               chunk_attention(q, k_ctx[:, :, :0], v_ctx[:, :, :0], k_chunk, v_chunk, 5, "sdpa"))


def test_auto_backend_is_sdpa_on_cpu_and_bad_input_is_rejected():
    q, k_ctx, v_ctx, k_chunk, v_chunk = random_inputs(1, 1, 16, 3, chunk_frames=1, tokens_per_frame=4)
    assert resolve_backend("auto", q) == "sdpa"
    with pytest.raises(ValueError, match="unknown attention backend"):
        chunk_attention(q, k_ctx, v_ctx, k_chunk, v_chunk, 4, backend="cuda")
    with pytest.raises(ValueError, match="whole frames"):
        chunk_attention(q, k_ctx, v_ctx, k_chunk, v_chunk, 3)
    with pytest.raises(ValueError, match="k_ctx"):
        chunk_attention(q, k_ctx[..., :8], v_ctx[..., :8], k_chunk, v_chunk, 4)


# ------------------------------------------------------------------------------------ Triton kernel (interpreter)

# (batch, heads, head_dim, context tokens, chunk frames, tokens per frame, block): context lengths 0, below, equal
# to and past a block, never all multiples; odd and even frame sizes; frames straddling query and key blocks.
KERNEL_CASES = [
    (1, 1, 16, 0, 1, 5, 16),
    (1, 2, 16, 0, 3, 7, 16),
    (2, 1, 32, 1, 2, 6, 16),
    (1, 3, 32, 16, 3, 9, 16),
    (2, 2, 64, 37, 1, 16, 16),
    (1, 1, 64, 70, 2, 11, 32),
    (1, 2, 32, 45, 3, 4, 32),
]


@needs_triton
@pytest.mark.parametrize("batch,heads,head_dim,ctx_tokens,chunk_frames,tokens_per_frame,block", KERNEL_CASES)
def test_triton_kernel_matches_sdpa(batch, heads, head_dim, ctx_tokens, chunk_frames, tokens_per_frame, block):
    inputs = random_inputs(batch, heads, head_dim, ctx_tokens, chunk_frames, tokens_per_frame, seed=ctx_tokens)
    expected = chunk_attention(*inputs, tokens_per_frame, backend="sdpa")
    out = kernel.triton_chunk_attention(*inputs, tokens_per_frame, block_m=block, block_n=block)
    assert (out - expected).abs().max().item() <= KERNEL_TOLERANCE


@needs_triton
@settings(max_examples=12, deadline=None)
@given(
    batch=st.integers(1, 2), heads=st.integers(1, 2), head_dim=st.sampled_from([16, 32, 64]),
    ctx_tokens=st.integers(0, 60), chunk_frames=st.integers(1, 3), tokens_per_frame=st.integers(1, 12),
    block=st.sampled_from([16, 32]), seed=st.integers(0, 2**16),
)
def test_triton_kernel_matches_sdpa_on_random_ragged_shapes(batch, heads, head_dim, ctx_tokens, chunk_frames,
                                                            tokens_per_frame, block, seed):
    inputs = random_inputs(batch, heads, head_dim, ctx_tokens, chunk_frames, tokens_per_frame, seed=seed)
    expected = chunk_attention(*inputs, tokens_per_frame, backend="sdpa")
    out = kernel.triton_chunk_attention(*inputs, tokens_per_frame, block_m=block, block_n=block)
    assert (out - expected).abs().max().item() <= KERNEL_TOLERANCE


@needs_triton
def test_triton_kernel_reads_strided_inputs_and_custom_scale():
    # [B, N, H, D] storage seen as [B, H, N, D]: the layout a fused qkv projection produces.
    q, k_ctx, v_ctx, k_chunk, v_chunk = (t.transpose(1, 2).contiguous().transpose(1, 2)
                                         for t in random_inputs(2, 3, 32, 19, 2, 5, seed=3))
    assert not q.is_contiguous()
    expected = chunk_attention(q, k_ctx, v_ctx, k_chunk, v_chunk, 5, backend="sdpa", scale=0.3)
    out = chunk_attention(q, k_ctx, v_ctx, k_chunk, v_chunk, 5, backend="triton", scale=0.3)
    assert (out - expected).abs().max().item() <= KERNEL_TOLERANCE


@needs_triton
def test_triton_kernel_in_half_precision_accumulates_in_fp32():
    inputs = random_inputs(1, 2, 32, 40, 2, 6, seed=5, dtype=torch.float16)
    expected = naive_attention(inputs[0], torch.cat((inputs[1], inputs[3]), 2), torch.cat((inputs[2], inputs[4]), 2),
                               frame_causal_mask(40, 12, 6))
    out = kernel.triton_chunk_attention(*inputs, 6, block_m=16, block_n=16)
    assert out.dtype == torch.float16
    # fp16 keeps ~3 significant digits: the bound is fp16 rounding of p and of the output, not accumulation.
    assert (out.float() - expected.float()).abs().max().item() <= 1e-2


@needs_triton
def test_triton_kernel_compiles_for_h100_without_a_gpu():
    """The interpreter does not check what only the compiler does (tensor loop bounds, dot shapes, precision
    options), so compile the same kernel ahead of time to a cubin for sm_90 in a process without the interpreter."""
    script = textwrap.dedent("""
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource, compile
        from services.diffusion.engine.triton_attention import _chunk_attention_kernel as kernel
        pointers = {"Q", "K_CTX", "V_CTX", "K_CHUNK", "V_CHUNK", "OUT"}
        for dtype, head_dim, precision in (("fp32", 64, "ieee"), ("bf16", 128, None)):
            signature = {name: "*" + dtype if name in pointers else "fp32" if name == "qk_scale"
                         else "constexpr" if name.isupper() else "i32" for name in kernel.arg_names}
            constants = {"HEAD_DIM": head_dim, "BLOCK_D": head_dim, "BLOCK_M": 64, "BLOCK_N": 64 if head_dim <= 64
                         else 32, "DOT_PRECISION": precision}
            source = ASTSource(fn=kernel, signature=signature,
                               constexprs={(kernel.arg_names.index(k),): v for k, v in constants.items()})
            compiled = compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 4, "num_stages": 2})
            assert compiled.asm["cubin"], dtype
        print("compiled")
    """)
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"} | {"TRITON_DEFAULT_FP_FUSION": "1"}
    result = subprocess.run([sys.executable, "-c", script], check=False, cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "compiled" in result.stdout, result.stderr[-3000:]


# ------------------------------------------------------------------------------------------------ rolling cache

HEIGHT, WIDTH = 2, 3
TOKENS_PER_FRAME = HEIGHT * WIDTH


def stream_frames(n_frames, batch=2, heads=2, head_dim=16, seed=0):
    """Per frame: un-rotated (q, k, v), each [batch, heads, tokens_per_frame, head_dim]."""
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, heads, TOKENS_PER_FRAME, head_dim)
    return [tuple(torch.randn(shape, generator=generator) for _ in range(3)) for _ in range(n_frames)]


def recompute_over_window(history, chunk, sink_frames, window_frames):
    """From scratch: keys of exactly [first sink frames | last window frames before the chunk | chunk], at refreshed
    positions 0..n-1, through the written-out softmax (no cache, no kernel)."""
    first_chunk_frame = len(history)
    sinks = list(range(min(sink_frames, first_chunk_frame)))
    window = [i for i in range(max(0, first_chunk_frame - window_frames), first_chunk_frame) if i >= sink_frames]
    frames = [history[i] for i in sinks + window] + list(chunk)
    positions = torch.arange(len(frames))
    keys = rope_video(torch.cat([k for _, k, _ in frames], 2), positions, HEIGHT, WIDTH)
    values = torch.cat([v for _, _, v in frames], 2)
    chunk_positions = positions[len(frames) - len(chunk):]
    queries = rope_video(torch.cat([q for q, _, _ in chunk], 2), chunk_positions, HEIGHT, WIDTH)
    mask = frame_causal_mask(keys.shape[2] - queries.shape[2], queries.shape[2], TOKENS_PER_FRAME)
    return naive_attention(queries, keys, values, mask), sinks + window


@pytest.mark.parametrize("chunk_frames,backend", [(1, "sdpa"), (2, "sdpa"), (3, "sdpa"), (1, "triton")])
def test_rolling_cache_output_equals_recomputing_over_the_cached_window(chunk_frames, backend):
    if backend == "triton" and TRITON_MISSING:
        pytest.skip("triton is not installed (pip install 'triton==3.9.0')")
    sink_frames, window_frames, n_frames = 1, 4, 12
    frames = stream_frames(n_frames)
    cache = RollingKVCache(2, 2, 16, TOKENS_PER_FRAME, sink_frames, window_frames)
    pointers = (cache.keys.data_ptr(), cache.values.data_ptr())
    for start in range(0, n_frames, chunk_frames):
        chunk = frames[start:start + chunk_frames]
        q, k, v = (torch.cat(parts, 2) for parts in zip(*chunk))
        out = cached_chunk_attention(cache, q, k, v, HEIGHT, WIDTH, backend=backend)
        expected, cached_frames = recompute_over_window(frames[:start], chunk, sink_frames, window_frames)
        assert cache.frame_indices() == cached_frames
        assert (out - expected).abs().max().item() <= 1e-5, f"chunk starting at frame {start}"
        # Refreshed positions: the newest chunk frame never sits past sink + window + chunk frames.
        _, _, positions = cache.view()
        assert positions.numel() + len(chunk) <= sink_frames + window_frames + chunk_frames
        cache.append(k, v)
        assert (cache.keys.data_ptr(), cache.values.data_ptr()) == pointers  # allocated once, never regrown
    assert cache.frames_seen == n_frames


def test_eviction_keeps_the_sinks_and_orders_the_window():
    frames = stream_frames(15)
    cache = RollingKVCache(2, 2, 16, TOKENS_PER_FRAME, sink_frames=2, window_frames=3)
    for _, k, v in frames:
        cache.append(k, v)
    assert cache.frame_indices() == [0, 1, 12, 13, 14]
    keys, values, positions = cache.view()
    assert positions.tolist() == [0, 1, 2, 3, 4]
    order = [0, 1, 12, 13, 14]
    torch.testing.assert_close(keys, torch.cat([frames[i][1] for i in order], 2), rtol=0, atol=0)
    torch.testing.assert_close(values, torch.cat([frames[i][2] for i in order], 2), rtol=0, atol=0)
    # The sinks' slots still hold the first frames' keys after 13 evictions.
    torch.testing.assert_close(cache.keys[:, :, :2 * TOKENS_PER_FRAME], torch.cat([frames[0][1], frames[1][1]], 2))
    # The zero-copy slot-order view carries each slot's temporal position instead.
    slot_keys, _, slot_positions = cache.view(ordered=False)
    assert slot_keys.data_ptr() == cache.keys.data_ptr()
    for slot, position in enumerate(slot_positions.tolist()):
        tokens = slice(slot * TOKENS_PER_FRAME, (slot + 1) * TOKENS_PER_FRAME)
        torch.testing.assert_close(slot_keys[:, :, tokens], frames[order[position]][1])


def test_one_append_longer_than_the_window_keeps_its_last_frames():
    frames = stream_frames(7)
    cache = RollingKVCache(2, 2, 16, TOKENS_PER_FRAME, sink_frames=1, window_frames=3)
    cache.append(torch.cat([k for _, k, _ in frames], 2), torch.cat([v for _, _, v in frames], 2))
    assert cache.frames_seen == 7 and cache.frame_indices() == [0, 4, 5, 6]
    keys, _, _ = cache.view()
    torch.testing.assert_close(keys, torch.cat([frames[i][1] for i in (0, 4, 5, 6)], 2))


def test_sink_only_cache_and_reset():
    frames = stream_frames(4)
    cache = RollingKVCache(2, 2, 16, TOKENS_PER_FRAME, sink_frames=2, window_frames=0)
    for _, k, v in frames:
        cache.append(k, v)
    assert cache.frame_indices() == [0, 1]
    cache.reset()
    assert cache.frames_seen == 0 and cache.view()[0].shape[2] == 0


def test_cache_rejects_bad_shapes_and_configs():
    with pytest.raises(ValueError, match="capacity"):
        RollingKVCache(1, 1, 16, 4, sink_frames=0, window_frames=0)
    cache = RollingKVCache(1, 2, 16, 4, sink_frames=1, window_frames=2)
    with pytest.raises(ValueError, match="whole"):
        cache.append(torch.zeros(1, 2, 6, 16), torch.zeros(1, 2, 6, 16))
    with pytest.raises(ValueError, match="keys must be"):
        cache.append(torch.zeros(1, 3, 4, 16), torch.zeros(1, 3, 4, 16))
    with pytest.raises(ValueError, match="tokens per frame"):
        cached_chunk_attention(cache, *(torch.zeros(1, 2, 6, 16) for _ in range(3)), height=2, width=3)


# ------------------------------------------------------------------------------------------- CUDA C++ (compile only)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed: the CUDA C++ kernel is compile-checked "
                    "only where the CUDA toolkit is")
def test_cuda_kernel_compiles_for_h100(tmp_path):
    """Compiled, not run: there is no GPU on the developers' machines or CI."""
    source = REPO / "services" / "diffusion" / "engine" / "csrc" / "attention.cu"
    result = subprocess.run(["nvcc", "-c", "-arch=sm_90", "-std=c++17", "--Werror", "all-warnings",
                             "-Xcompiler", "-Wall,-Wextra", "-o", str(tmp_path / "attention.o"), str(source)],
                            check=False, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "attention.o").stat().st_size > 0
