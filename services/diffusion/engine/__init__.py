"""The streaming video-to-video diffusion engine: attention core, caches, scheduling, motion-aware noise."""
