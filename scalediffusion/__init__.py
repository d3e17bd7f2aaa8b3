"""Code shared by the Scale Diffusion services: generated stubs (scalediffusion.v1), settings, logging,
S3 and Kafka clients, the gRPC server bootstrap, and the local stack."""
