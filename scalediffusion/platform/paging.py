"""Opaque page tokens for List RPCs: the last object key of a page, base64url-encoded. Pure, no I/O."""

from __future__ import annotations

import base64
import binascii

import grpc

from scalediffusion.platform.rpc import RpcError


def encode_page_token(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode()).decode()


def decode_page_token(token: str) -> str:
    """The key to list after ("" for the first page).

    Raises:
        RpcError: INVALID_ARGUMENT when the token was not issued by encode_page_token.
    """
    if not token:
        return ""
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "page_token is not a token this server issued") from None
