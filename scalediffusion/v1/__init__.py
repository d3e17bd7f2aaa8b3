"""Generated from protos/ by tools/genproto.py. DO NOT EDIT."""
