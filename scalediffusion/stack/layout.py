"""Which port every part of the local stack uses. Pure data; `offset_layout` gives a second stack its own ports."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from scalediffusion.stack.procs import port_in_use

SERVICES = ("ingest", "diffusion", "processor", "trainer")


@dataclass(frozen=True)
class ServicePorts:
    grpc: int
    grpc_web: int  # 0 = no gRPC-Web endpoint
    metrics: int


@dataclass(frozen=True)
class WeedPorts:
    """SeaweedFS `weed mini` listens on many ports (each also on +10000 for its gRPC side)."""

    s3: int
    master: int
    volume: int
    filer: int
    webdav: int
    admin: int
    iceberg: int
    lance: int

    def args(self) -> list[str]:
        return [
            f"-s3.port={self.s3}",
            f"-master.port={self.master}",
            f"-volume.port={self.volume}",
            f"-filer.port={self.filer}",
            f"-webdav.port={self.webdav}",
            f"-admin.port={self.admin}",
            f"-s3.port.iceberg={self.iceberg}",
            f"-s3.port.lance={self.lance}",
        ]

    def all_ports(self) -> list[int]:
        ports = list(asdict(self).values())
        return ports + [p + 10000 for p in ports if p not in (self.iceberg, self.lance, self.webdav)]


@dataclass(frozen=True)
class Layout:
    host: str
    weed: WeedPorts
    kafka: int
    services: dict[str, ServicePorts]
    web: int = 8088  # the built game, served by the stack

    @property
    def web_url(self) -> str:
        return f"http://{self.host}:{self.web}"

    @property
    def s3_endpoint(self) -> str:
        return f"{self.host}:{self.weed.s3}"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka}"

    def all_ports(self) -> dict[int, str]:
        """port -> what uses it, for the 'port is taken' check."""
        owners = {p: "SeaweedFS" for p in self.weed.all_ports()}
        owners[self.kafka] = "Tansu (Kafka)"
        owners[self.web] = "game (web)"
        for name, ports in self.services.items():
            for kind, port in asdict(ports).items():
                if port:
                    owners[port] = f"{name} {kind}"
        return owners

    def to_dict(self) -> dict:
        return {
            "host": self.host, "weed": asdict(self.weed), "kafka": self.kafka, "web": self.web,
            "services": {k: asdict(v) for k, v in self.services.items()},
        }

    @classmethod
    def from_dict(cls, doc: dict) -> Layout:
        return cls(
            host=doc["host"],
            weed=WeedPorts(**doc["weed"]),
            kafka=doc["kafka"],
            services={k: ServicePorts(**v) for k, v in doc["services"].items()},
            web=doc.get("web", 8088),
        )


def default_layout(host: str = "127.0.0.1") -> Layout:
    """The well-known ports: S3 8333, Kafka 9092, services 5005x (gRPC) / 808x (gRPC-Web) / 940x (metrics)."""
    return Layout(
        host=host,
        weed=WeedPorts(s3=8333, master=9333, volume=18080, filer=18888, webdav=17333, admin=23646, iceberg=18181, lance=19101),
        kafka=9092,
        services={
            "ingest": ServicePorts(50051, 8080, 9400),
            "diffusion": ServicePorts(50052, 8081, 9401),
            "processor": ServicePorts(50053, 0, 9402),
            "trainer": ServicePorts(50054, 8083, 9403),
        },
    )


def offset_layout(base: int, host: str = "127.0.0.1") -> Layout:
    """Every port in [base, base+32) (weed's gRPC side at +10000), for a second stack beside the first (tests)."""
    if not 1024 <= base <= 55000 - 40:
        raise ValueError(f"base port must be in 1024..54960 so weed's +10000 gRPC ports fit, got {base}")
    weed = WeedPorts(*(base + i for i in range(8)))
    services = {name: ServicePorts(base + 10 + 3 * i, base + 11 + 3 * i if name != "processor" else 0, base + 12 + 3 * i) for i, name in enumerate(SERVICES)}
    return Layout(host=host, weed=weed, kafka=base + 8, services=services, web=base + 9)


def free_layout(exclude: set[int] | None = None) -> Layout:
    """A layout whose every port is free now (tries random bases).

    Bases stay below the kernel's ephemeral range (32768+ here, /proc/sys/net/ipv4/ip_local_port_range): outgoing
    connections take local ports from that range, and a server port there can be taken between check and bind.
    weed's gRPC side sits at +10000, so bases go up to ~22700.
    """
    for _ in range(50):
        base = random.randrange(10000, 22700, 40)
        layout = offset_layout(base)
        ports = set(layout.all_ports())
        if exclude and ports & exclude:
            continue
        if not any(port_in_use(layout.host, p) for p in ports):
            return layout
    raise RuntimeError("no free port range found for a second stack")
