"""Operator commands for the ingest service. They hold the same settings as the service (SD_S3_*, SD_INGEST_TOKEN_KEY),
e.g. `kubectl exec deploy/ingest -- sd-ingest-admin ...`.

Examples:
    sd-ingest-admin issue-token --player alice --wallet 7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV
    sd-ingest-admin issue-token --player ops --operator --ttl 3600
    sd-ingest-admin revoke --token-id 3f2a...
    sd-ingest-admin export-payouts --out payouts.csv --mark-paid 2026-11
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time

from scalediffusion.platform import keys
from scalediffusion.platform.rpc import RpcError
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.platform.settings import S3Settings, SettingsError, env_str
from scalediffusion.v1 import ingest_pb2
from services.ingest import auth
from services.ingest.records import IngestRecords


def _records() -> IngestRecords:
    s3 = S3Settings.from_env()
    return IngestRecords(ObjectStore(s3), s3.bucket_raw)


def issue_token(
    records: IngestRecords, signer: auth.TokenSigner, player_id: str, role: str, ttl_s: int, wallet: str = "", display_name: str = ""
) -> tuple[str, auth.Claims, ingest_pb2.Player]:
    """Signs a token and records the player (wallet, name); the IssueToken RPC and this command share it.

    Raises:
        ValueError: a bad player id, wallet address, role or lifetime, with the reason.
    """
    keys.check_id("player id", player_id)
    player = records.load_player(player_id)
    if wallet:
        player.wallet_address = auth.validate_wallet(wallet)
    if display_name:
        player.display_name = display_name[:64]
    token, claims = signer.issue(player_id, role, ttl_s, time.time())
    records.save_player(player)
    return token, claims, player


def payouts(records: IngestRecords) -> list[dict]:
    """Pending points per player with a wallet: credited minus already exported."""
    rows = []
    for player in records.players():
        if not player.wallet_address:
            continue
        credited = sum(e.points for e in records.rewards(player.player_id))
        pending = credited - records.paid_points(player.player_id)
        if pending > 0:
            rows.append({"wallet_address": player.wallet_address, "player_id": player.player_id, "points": pending})
    return sorted(rows, key=lambda r: r["player_id"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sd-ingest-admin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    issue = sub.add_parser("issue-token", help="sign a player (or operator) token")
    issue.add_argument("--player", required=True)
    issue.add_argument("--operator", action="store_true")
    issue.add_argument("--ttl", type=int, default=7 * 24 * 3600, help="lifetime in seconds")
    issue.add_argument("--wallet", default="", help="Solana wallet address to record")
    issue.add_argument("--name", default="", help="display name")
    revoke = sub.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("--token-id", required=True)
    export = sub.add_parser("export-payouts", help="pending payouts per wallet as CSV")
    export.add_argument("--out", default="-", help="file, or - for stdout")
    export.add_argument("--mark-paid", metavar="BATCH", default="", help="record the exported points as paid under this batch id")
    args = parser.parse_args(argv)
    try:
        records = _records()
        if args.command == "issue-token":
            signer = auth.TokenSigner(env_str("SD_INGEST_TOKEN_KEY").encode())
            role = auth.OPERATOR if args.operator else auth.PLAYER
            token, claims, _ = issue_token(records, signer, args.player, role, args.ttl, args.wallet, args.name)
            print(json.dumps({"token": token, "token_id": claims.token_id, "player_id": claims.player_id, "role": claims.role, "expires_at": claims.expires_at}))
        elif args.command == "revoke":
            records.revoke(keys.check_id("token id", args.token_id))
            print(json.dumps({"revoked": args.token_id}))
        else:
            if args.mark_paid:
                keys.check_id("payout batch", args.mark_paid)  # before anything is written
            rows = payouts(records)
            out = sys.stdout if args.out == "-" else open(args.out, "w", newline="")
            writer = csv.DictWriter(out, fieldnames=["wallet_address", "player_id", "points"])
            writer.writeheader()
            writer.writerows(rows)
            if out is not sys.stdout:
                out.close()
            if args.mark_paid:
                for row in rows:
                    records.record_payout(row["player_id"], args.mark_paid, row["points"], row["wallet_address"])
    except (SettingsError, ValueError, RpcError) as err:
        print(f"sd-ingest-admin: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
