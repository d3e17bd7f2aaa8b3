"""The local stack: SeaweedFS (S3) + Tansu (Kafka protocol) + the four services as local processes."""
