"""The Scale Diffusion services, one deployable each."""
