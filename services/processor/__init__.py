"""Processor: raw sessions in, CILRS segments out (ALIGN -> SPLICE -> CLEAN)."""
