"""Diffusion: repaints players' rendered frames with a streaming video diffusion model."""
