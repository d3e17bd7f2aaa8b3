"""gRPC-Web for real: @connectrpc/connect-web's gRPC-Web transport in Node calls the ingest server over HTTP/1.1,
and a browser-style CORS preflight is answered for the game's origin only."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import urllib3

from tests.conftest import REPO

WEB = REPO / "clients" / "web"
TSX = WEB / "node_modules" / ".bin" / "tsx"


def grpc_web_call(base_url: str, service: str, method: str, request: dict, token: str = "") -> dict:
    if not TSX.exists():
        pytest.fail("clients/web/node_modules is missing: run `npm ci` in clients/web (make test does)")
    result = subprocess.run(
        [str(TSX), "scripts/grpcweb-call.ts", base_url, service, method, json.dumps(request)]
        + (["--header", f"authorization: Bearer {token}"] if token else []),
        cwd=WEB, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_start_session_over_grpc_web_returns_upload_targets(stack):
    token = stack.token("web-player")
    reply = grpc_web_call(stack.grpc_web_url("ingest"), "IngestService", "StartSession", {}, token)
    assert reply["ok"], reply
    response = reply["response"]
    assert response["playerId"] == "web-player"
    kinds = sorted(t["kind"] for t in response["targets"])
    assert kinds == ["UPLOAD_KIND_TELEMETRY", "UPLOAD_KIND_VIDEO"]
    assert all(t["method"] == "POST" and t["formFields"]["key"] == t["key"] for t in response["targets"])
    # The session the browser started is the one native gRPC sees (same servicer, same store).
    again = grpc_web_call(stack.grpc_web_url("ingest"), "IngestService", "GetSession", {"sessionId": response["sessionId"]}, token)
    assert again["response"]["state"] == "SESSION_STATE_CREATED"


def test_grpc_web_errors_carry_code_and_reason(stack):
    reply = grpc_web_call(stack.grpc_web_url("ingest"), "IngestService", "CompleteSession", {"sessionId": "00000000000000000000"}, stack.token("web-player"))
    assert reply == {"ok": False, "code": "not_found", "message": reply["message"]}
    assert "does not exist" in reply["message"]
    reply = grpc_web_call(stack.grpc_web_url("ingest"), "IngestService", "StartSession", {})
    assert reply["code"] == "unauthenticated" and reply["message"].startswith("missing")
    reply = grpc_web_call(stack.grpc_web_url("diffusion"), "DiffusionService", "TransformFrame", {})
    assert reply["code"] == "invalid_argument" and "frame is required" in reply["message"]


def test_cors_preflight_allows_the_game_origin_only(stack):
    http = urllib3.PoolManager()
    url = stack.grpc_web_url("ingest") + "/scalediffusion.v1.IngestService/StartSession"
    allowed = http.request(
        "OPTIONS", url,
        headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-grpc-web"},
    )
    assert allowed.status == 204
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "x-grpc-web" in allowed.headers["access-control-allow-headers"]
    denied = http.request("OPTIONS", url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert denied.status == 403
    assert "access-control-allow-origin" not in denied.headers


def test_node_is_available():
    assert shutil.which("node"), "Node 20 is needed for the gRPC-Web and web client tests"


def test_the_raw_bucket_lets_the_game_origin_upload_from_a_browser(stack):
    """Ingest sets the bucket's CORS at start: a browser preflight for a POST upload from the game's origin passes."""
    response = urllib3.PoolManager().request(
        "OPTIONS", f"http://{stack.layout.s3_endpoint}/raw",
        headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
    )
    assert response.status == 200
    assert response.headers["access-control-allow-origin"] in ("http://localhost:5173", "*")
    # The rule ingest stored names the game's origins (SeaweedFS answers bucket-level preflights with "*").
    rules = stack.store().client._execute("GET", "raw", query_params={"cors": ""}).data.decode()
    assert "<AllowedOrigin>http://localhost:5173</AllowedOrigin>" in rules and "<AllowedMethod>POST</AllowedMethod>" in rules
    put = urllib3.PoolManager().request(
        "OPTIONS", f"http://{stack.layout.s3_endpoint}/raw/p/s/video.webm",
        headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "PUT"},
    )
    assert put.headers["access-control-allow-origin"] == "http://localhost:5173"


def test_the_game_gets_the_world_over_grpc_web_without_a_token(stack):
    from scalediffusion.city import catalog, world_stats

    reply = grpc_web_call(stack.grpc_web_url("ingest"), "WorldService", "GetWorld", {})
    assert reply["ok"], reply
    world = reply["response"]
    expected = world_stats(catalog.get_world(catalog.DEFAULT_WORLD))
    assert world["worldId"] == expected["worldId"]
    assert len(world["roads"]) == expected["roadCount"] and len(world["buildings"]) == expected["buildingCount"]
    missing = grpc_web_call(stack.grpc_web_url("ingest"), "WorldService", "GetWorld", {"worldId": "atlantis"})
    assert missing["code"] == "not_found" and "manhattan-grid" in missing["message"]
