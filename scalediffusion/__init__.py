"""Code shared by the Scale Diffusion services, in layers (docs/ARCHITECTURE.md; tests/unit/test_layers.py):

- scalediffusion.v1: the generated contract (protos/), imported by every layer;
- scalediffusion.platform: settings, structured logs, the gRPC/gRPC-Web server bootstrap, S3 and Kafka clients,
  the S3 key layout and the records kept there. Nothing domain-specific;
- the domain: scalediffusion.sim (the game's simulator ported: vehicle, routing, renderer, autopilot, bots,
  evaluator), scalediffusion.city, driving and policy (waypoints to controls, ONNX policies), leaderboard metrics,
  media formats (webm, vp8, imaging), synthetic sessions and the upload client;
- services/ (ingest, processor, trainer, diffusion) on top of those;
- scalediffusion.stack: the local dev stack and the command line, which may import everything."""
