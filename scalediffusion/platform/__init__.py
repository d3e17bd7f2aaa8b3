"""The platform layer: what every service stands on and nothing domain-specific. Settings from the environment,
structured logs, the gRPC/gRPC-Web server bootstrap and RPC plumbing, S3 and Kafka clients, the S3 key layout and
the records kept there (session manifests, dataset index), Kafka payload framing, page tokens, process lifetime.

It imports only the generated contract (scalediffusion.v1) and third-party packages: no domain code (sim, city,
driving, ...), no service, no dev stack. tests/unit/test_layers.py enforces that, and the layers above it."""
