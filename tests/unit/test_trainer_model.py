"""CILRS model, losses, data helpers and the ONNX export (parity on onnxruntime's CPU provider)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scalediffusion.platform.datasets import IndexEntry
from scalediffusion.policy import OnnxPolicy, PolicyError
from scalediffusion.v1 import processor_pb2, trainer_pb2
from services.trainer import data
from services.trainer.model import BRANCH_NAMES, PRESETS, build_model, preset
from services.trainer.onnx_export import PARITY_TOLERANCE, export_onnx, parity_max_abs_diff
from services.trainer.train import ConfigError, ErrorByCommand, TrainConfig, cilrs_loss


def tiny():
    torch.manual_seed(0)
    return build_model(preset("cilrs-resnet18-tiny")).eval()


def test_outputs_have_the_documented_shapes_and_ranges():
    model = tiny()
    control, speed = model(torch.rand(5, 3, 64, 64), torch.rand(5, 1) * 10, torch.tensor([0, 1, 2, 3, 4]))
    assert control.shape == (5, 3) and speed.shape == (5, 1)
    assert (control[:, 0].abs() <= 1).all() and ((control[:, 1:] >= 0) & (control[:, 1:] <= 1)).all()


def test_the_command_selects_its_branch():
    model = tiny()
    image, speed = torch.rand(1, 3, 64, 64), torch.tensor([[3.0]])
    with torch.no_grad():
        out = model.forward_all(image.repeat(7, 1, 1, 1), speed.repeat(7, 1), torch.arange(7))
    raw = out.all_branches[0]  # every row sees the same input: the same six branch outputs
    expected_branch = [3, 0, 1, 2, 3, 4, 5]  # UNSPECIFIED follows the lane; 1..6 are LEFT..CHANGELANERIGHT
    for command, branch in enumerate(expected_branch):
        assert torch.allclose(out.control[command, 0], torch.tanh(raw[branch, 0]), atol=1e-6), (command, branch)
    assert len(BRANCH_NAMES) == 6


def test_the_resnet34_preset_is_the_published_size():
    model = build_model(preset("cilrs-resnet34"))
    encoder_params = sum(p.numel() for p in model.encoder.parameters())
    assert 21.0e6 < encoder_params < 21.5e6  # ResNet-34 without its classifier: 21.28 M


def test_unknown_presets_and_pretrained_weights_are_refused():
    with pytest.raises(ValueError, match="unknown model preset"):
        preset("vgg")
    with pytest.raises(ValueError, match="nothing is downloaded"):
        build_model(PRESETS["cilrs-resnet34"].__class__(pretrained="imagenet"))


def test_loss_weights_controls_and_speed_as_configured():
    config = TrainConfig()
    control = torch.tensor([[0.5, 0.5, 0.0]])
    target = torch.tensor([[0.0, 0.5, 0.0]])
    total, control_l1, speed_l1 = cilrs_loss(control, torch.tensor([[6.0]]), target, torch.tensor([[0.0]]), config, 12.0)
    assert control_l1.item() == pytest.approx(0.5 / 3)
    assert speed_l1.item() == pytest.approx(0.5)
    assert total.item() == pytest.approx(0.95 * 0.5 / 3 + 0.05 * 0.5)


def test_error_by_command_groups_by_branch():
    errors = ErrorByCommand.empty()
    errors.add(torch.tensor([[0.1, 0, 0], [0.0, 0, 0]]), torch.zeros(2, 3), torch.tensor([1, 0]))
    assert errors.means() == pytest.approx({"left": 0.1 / 3, "follow": 0.0})


def test_training_config_validation_names_the_field():
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig.from_dict({"batch_size": 0})
    with pytest.raises(ConfigError, match="wrong type"):
        TrainConfig.from_dict({"epochs": "many"})
    assert TrainConfig.from_dict({"epochs": 3}).epochs == 3


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_onnx_export_matches_pytorch(tmp_path, name):
    torch.manual_seed(1)
    model = build_model(preset(name)).eval()
    path = export_onnx(model, tmp_path / "m.onnx", {"run_id": "r1"})
    diff = parity_max_abs_diff(model, path, batch=3 if name == "cilrs-resnet34" else 8)
    assert diff <= PARITY_TOLERANCE, diff
    policy = OnnxPolicy(path)
    assert policy.input_size == PRESETS[name].input_size and policy.metadata["run_id"] == "r1"
    assert "CPUExecutionProvider" in policy.providers
    # A frame of the camera's size reaches the model at the model's own (height, width): square or aspect-kept.
    assert policy.preprocess(np.zeros((360, 640, 3), np.uint8)).shape == (1, 3, *PRESETS[name].input_hw)


def test_a_perturbed_export_fails_parity(tmp_path):
    """The parity check can fail: weights changed after export are caught."""
    model = tiny()
    path = export_onnx(model, tmp_path / "m.onnx")
    with torch.no_grad():
        model.branches[3][-1].bias.add_(0.01)
    assert parity_max_abs_diff(model, path) > PARITY_TOLERANCE


def test_policy_refuses_files_that_are_not_policies(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(PolicyError, match="not a loadable ONNX model"):
        OnnxPolicy(bad)


def _entries(sessions: list[str]) -> list[IndexEntry]:
    return [IndexEntry(processor_pb2.SegmentInfo(segment_id=f"route_{s}_{i:03d}", session_id=s, frame_count=10), [], "p")
            for s in sessions for i in range(2)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text("abcdef0123456789", min_size=4, max_size=8), min_size=2, max_size=30, unique=True),
       st.floats(0.05, 0.6), st.integers(0, 5))
def test_split_is_by_session_and_stable(sessions, fraction, seed):
    train, val = data.split_by_session(_entries(sessions), fraction, seed)
    train_s, val_s = {e.segment.session_id for e in train}, {e.segment.session_id for e in val}
    assert not train_s & val_s and train_s | val_s == set(sessions) and val_s and train_s
    natural_val = {s for s in sessions if data.session_score(s, seed) < fraction}
    if 0 < len(natural_val) < len(sessions):  # no small-dataset adjustment: growing the dataset moves nobody
        train2, val2 = data.split_by_session(_entries(sessions + ["zzzz-new"]), fraction, seed)
        assert train_s <= {e.segment.session_id for e in train2} and val_s <= {e.segment.session_id for e in val2}


def test_split_refuses_an_empty_dataset_and_keeps_one_session_for_training():
    with pytest.raises(data.DatasetError, match="no segments"):
        data.split_by_session([], 0.1, 0)
    with pytest.raises(data.DatasetError, match="val_fraction"):
        data.split_by_session(_entries(["a", "b"]), 1.0, 0)
    train, val = data.split_by_session(_entries(["a"]), 0.5, 0)
    assert len(train) == 2 and not val  # one session: nothing to validate on, all of it trains


def test_targets_from_measurements_reports_malformed_entries():
    targets, commands = data.targets_from_measurements([{"steer": 0.1, "throttle": 0.5, "brake": 0, "speed": 3.0, "command": 2}])
    assert targets[:, :4].tolist() == [[pytest.approx(0.1), 0.5, 0.0, 3.0]] and commands.tolist() == [2]
    with pytest.raises(data.DatasetError, match="measurement 0"):
        data.targets_from_measurements([{"steer": 0.1}])
    with pytest.raises(data.DatasetError, match="non-finite"):
        data.targets_from_measurements([{"steer": float("nan"), "throttle": 0, "brake": 0, "speed": 0}])


def test_augmentation_is_photometric_bounded_and_seeded():
    images = torch.rand(4, 3, 16, 16)
    a = data.augment_batch(images, torch.Generator().manual_seed(5))
    b = data.augment_batch(images, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, images)
    assert a.min() >= 0 and a.max() <= 1 and a.shape == images.shape
    assert np.corrcoef(a.flatten().numpy(), images.flatten().numpy())[0, 1] > 0.8  # same picture, not a new one


# ---------------------------------------------------------------- the waypoint model


def test_waypoint_model_outputs_k_points_per_frame_and_the_command_matters():
    torch.manual_seed(0)
    model = build_model(preset("aim-resnet18-tiny")).eval()
    image, speed = torch.rand(1, 3, 64, 64).repeat(3, 1, 1, 1), torch.full((3, 1), 4.0)
    with torch.no_grad():
        wps = model(image, speed, torch.tensor([1, 2, 4]))
    assert wps.shape == (3, model.config.waypoints, 2)
    assert not torch.allclose(wps[0], wps[1])  # LEFT and RIGHT see the same image and speed, differ by command


def test_waypoint_onnx_export_matches_pytorch_and_carries_camera_and_controller(tmp_path):
    import json

    torch.manual_seed(0)
    model = build_model(preset("aim-resnet18-tiny")).eval()
    meta = {"camera": json.dumps({"width": 320, "height": 180, "vertical_fov_deg": 50.0, "mode": "dash"}),
            "controller": json.dumps({"turn_kp": 0.9, "stuck_after_s": 12.0})}
    path = export_onnx(model, tmp_path / "wp.onnx", meta)
    assert parity_max_abs_diff(model, path) <= PARITY_TOLERANCE
    policy = OnnxPolicy(path)
    assert policy.kind == "waypoints" and (policy.camera.width, policy.camera.height) == (320, 180)
    assert policy.controller.turn_kp == 0.9 and policy.controller.stuck_after_s == 12.0
    wps = policy.waypoints(np.zeros((180, 320, 3), np.uint8), 3.0, 4)
    assert len(wps) == 4 and all(len(p) == 2 for p in wps)
    with pytest.raises(PolicyError, match="PolicyDriver"):
        policy(np.zeros((64, 64, 3), np.uint8), 3.0, 4)  # controls come from the controller, not the model


def _measurement(k: int, valid: int, expert: bool) -> dict:
    m = {"steer": 0.1, "throttle": 0.5, "brake": 0.0, "speed": 3.0, "command": 4, "target_speed": 4.0,
         "waypoints": [[1.0 * (i + 1), 0.1 * i] for i in range(k)], "waypoints_valid": valid}
    if expert:
        m["expert"] = {"steer": -0.2, "throttle": 0.6, "brake": 0.0}
    return m


def test_target_rows_carry_expert_controls_and_waypoints():
    from services.trainer.train import control_targets

    rows, _ = data.targets_from_measurements([_measurement(4, 4, True), _measurement(4, 2, False)])
    assert rows.shape == (2, data.WAYPOINTS_AT + 8)
    assert rows[0, data.COL["has_expert"]] == 1 and rows[1, data.COL["has_expert"]] == 0
    clean = control_targets(torch.from_numpy(rows), TrainConfig())
    assert clean[0].tolist() == pytest.approx([-0.2, 0.6, 0.0])  # the expert's action where a bot recorded it
    assert clean[1].tolist() == pytest.approx([0.1, 0.5, 0.0])  # the applied controls elsewhere (human play)
    assert control_targets(torch.from_numpy(rows), TrainConfig(expert_labels=False))[0].tolist() == pytest.approx([0.1, 0.5, 0.0])
    with pytest.raises(data.DatasetError, match="waypoints"):
        data.targets_from_measurements([_measurement(4, 4, False), _measurement(3, 3, False)])


def test_waypoint_loss_ignores_waypoints_past_the_end_of_a_recording():
    from services.trainer.train import waypoint_l1

    rows, _ = data.targets_from_measurements([_measurement(4, 2, False)])
    target = torch.from_numpy(rows)
    truth = target[:, data.WAYPOINTS_AT:].reshape(1, 4, 2)
    off_after_valid = truth.clone()
    off_after_valid[:, 2:] += 50.0  # wrong only where the recording had ended
    loss, per_sample = waypoint_l1(off_after_valid, target)
    assert loss.item() == 0.0 and per_sample.tolist() == [0.0]
    off = truth.clone()
    off[:, 0, 0] += 2.0
    assert waypoint_l1(off, target)[0].item() == pytest.approx(2.0 / 2 / 2)  # |dx| averaged over x,y and 2 points


def test_data_minutes_slices_whole_sessions_and_smaller_slices_nest():
    entries = [IndexEntry(processor_pb2.SegmentInfo(segment_id=f"route_s{s}_{i:03d}", session_id=f"s{s}", frame_count=50,
                                                    duration_s=5.0), [], "p") for s in range(30) for i in range(12)]
    five, fifteen = data.first_minutes(entries, 5, 0), data.first_minutes(entries, 15, 0)
    assert sum(e.segment.duration_s for e in five) == 300.0  # whole sessions of 60 s
    assert {e.segment.segment_id for e in five} <= {e.segment.segment_id for e in fifteen}
    assert len({e.segment.session_id for e in fifteen}) == 15


def test_command_weights_draw_rare_turns_more_often():
    commands = np.array([4] * 90 + [1] * 10)
    weights = data.command_weights(commands)
    assert weights[0] == pytest.approx(1.0) and weights[-1] == pytest.approx(3.0)  # sqrt(90 / 10)
    share = weights[commands == 1].sum() / weights.sum()
    assert 0.2 < share < 0.3  # 10 % of the frames, a quarter of the draws


def test_the_training_config_from_the_contract_carries_slices_and_step_caps():
    from scalediffusion.v1 import trainer_pb2

    config = TrainConfig.from_proto(trainer_pb2.TrainingConfig(preset="aim-resnet18-tiny", data_minutes=3.5, max_steps_per_epoch=7))
    assert (config.data_minutes, config.max_steps_per_epoch) == (3.5, 7)
    with pytest.raises(ConfigError, match="data_minutes"):
        TrainConfig.from_proto(trainer_pb2.TrainingConfig(data_minutes=-1))


# ---------------------------------------------------------------- the route's target point (presets *-tp)


def test_a_target_point_model_needs_the_target_and_reads_it():
    from services.trainer.model import TARGET_RANGE_M, target_input

    torch.manual_seed(0)
    model = build_model(preset("aim-resnet18-tiny-tp")).eval()
    image, speed, command = torch.rand(1, 3, 64, 64).repeat(2, 1, 1, 1), torch.full((2, 1), 4.0), torch.tensor([4, 4])
    with pytest.raises(ValueError, match="target point"):
        model(image, speed, command)
    with torch.no_grad():
        wps = model(image, speed, command, torch.tensor([[30.0, -20.0], [30.0, 20.0]]))
    assert not torch.allclose(wps[0], wps[1])  # same image, speed and command; the target lies left vs right
    far = target_input(torch.tensor([[300.0, 400.0], [30.0, 40.0], [3.0, 4.0]]))
    assert far[0].tolist() == pytest.approx(far[1].tolist())  # beyond the range only the direction counts
    assert far[2].tolist() == pytest.approx([3.0 / TARGET_RANGE_M, 4.0 / TARGET_RANGE_M])
    cilrs = build_model(preset("cilrs-resnet18-wide-tp")).eval()
    with torch.no_grad():
        a = cilrs(torch.rand(1, 3, 144, 256), torch.ones(1, 1), torch.tensor([4]), torch.tensor([[20.0, 0.0]]))[0]
    assert a.shape == (1, 3)


def test_a_target_point_policy_file_takes_a_fourth_input(tmp_path):
    torch.manual_seed(0)
    model = build_model(preset("aim-resnet18-tiny-tp")).eval()
    path = export_onnx(model, tmp_path / "tp.onnx")
    assert parity_max_abs_diff(model, path) <= PARITY_TOLERANCE
    policy = OnnxPolicy(path)
    assert policy.uses_target and {i.name for i in policy.session.get_inputs()} == {"image", "speed", "command", "target"}
    with pytest.raises(PolicyError, match="target point"):
        policy.waypoints(np.zeros((64, 64, 3), np.uint8), 3.0, 4)
    left = policy.waypoints(np.zeros((64, 64, 3), np.uint8), 3.0, 4, (20.0, -15.0))
    right = policy.waypoints(np.zeros((64, 64, 3), np.uint8), 3.0, 4, (20.0, 15.0))
    assert left != right
    assert not OnnxPolicy(export_onnx(tiny(), tmp_path / "plain.onnx")).uses_target


def test_target_rows_carry_the_target_point_and_models_that_need_it_drop_segments_without():
    from services.trainer.train import losses

    with_tp = [_measurement(4, 4, True) | {"target_point": [25.0, -3.5]} for _ in range(3)]
    rows, _ = data.targets_from_measurements(with_tp)
    c = data.COL
    assert rows[0, c["target_x"]] == 25.0 and rows[0, c["target_y"]] == -3.5 and rows[0, c["has_target"]] == 1
    without, _ = data.targets_from_measurements([_measurement(4, 4, True)])
    assert without[0, c["has_target"]] == 0 and without[0, c["target_x"]] == 0
    assert rows.shape[1] == without.shape[1]  # one row shape either way

    torch.manual_seed(0)
    model = build_model(preset("aim-resnet18-tiny-tp")).eval()
    images, speed, command = torch.rand(3, 3, 64, 64), torch.full((3, 1), 3.0), torch.tensor([4, 4, 4])
    target = torch.from_numpy(rows)
    moved = target.clone()
    moved[:, c["target_y"]] = 30.0
    with torch.no_grad():
        assert losses(model, images, speed, command, target, TrainConfig())[0] != losses(model, images, speed, command, moved, TrainConfig())[0]


def test_segments_without_target_points_are_left_out(tmp_path):
    segments = []
    for name, has in (("a", [1, 1]), ("b", [1, 0]), ("c", [0, 0])):
        rows = np.zeros((2, data.WAYPOINTS_AT), np.float32)
        rows[:, data.COL["has_target"]] = has
        (tmp_path / name).mkdir()
        np.save(tmp_path / name / "targets.npy", rows)
        segments.append(data.CachedSegment(name, "s", tmp_path / name, 2))
    kept, dropped = data.with_target_points(segments)
    assert [s.segment_id for s in kept] == ["a"] and dropped == 4


def test_turning_paths_are_drawn_more_often_with_a_turn_weight(tmp_path):
    from services.trainer.train import sampling_weights

    def rows(paths: list[list[list[float]]], valid: int = 4) -> np.ndarray:
        out = np.zeros((len(paths), data.WAYPOINTS_AT + 8), np.float32)
        out[:, data.COL["waypoints_valid"]] = valid
        out[:, data.WAYPOINTS_AT:] = np.array(paths, np.float32).reshape(len(paths), 8)
        return out

    straight = [[2, 0], [4, 0], [6, 0], [8, 0]]
    quarter = [[2, 0.5], [4, 2], [5, 4], [5, 6]]  # a right turn: the last point 50 degrees right
    slight = [[2, 0], [4, 0.3], [6, 0.8], [8, 1.6]]  # 11 degrees
    standing = [[0.1, 0.3], [0.1, 0.4], [0.2, 0.5], [0.2, 0.6]]  # under 2 m: a wait, whatever the noise
    amounts = data.turn_amounts(rows([straight, quarter, slight, standing]))
    assert amounts[0] == 0 and amounts[1] == 1.0 and 0.2 < amounts[2] < 0.3 and amounts[3] == 0
    # Only the real waypoints count: with 2 valid, the quarter turn has barely started.
    assert data.turn_amounts(rows([quarter], valid=2))[0] == pytest.approx(math.atan2(2, 4) / (math.pi / 4))

    (tmp_path / "s").mkdir()
    np.save(tmp_path / "s" / "targets.npy", rows([straight, quarter]))
    np.save(tmp_path / "s" / "commands.npy", np.array([4, 4], np.int64))
    np.save(tmp_path / "s" / "frames.npy", np.zeros((2, 8, 8, 3), np.uint8))
    frames = data.CilrsFrames([data.CachedSegment("s", "s", tmp_path / "s", 2)])
    assert sampling_weights(frames, TrainConfig()).tolist() == [1.0, 1.0]  # one command, no turn weight
    assert sampling_weights(frames, TrainConfig(turn_weight=2.0)).tolist() == [1.0, 3.0]
    with pytest.raises(ConfigError, match="turn_weight"):
        TrainConfig(turn_weight=-1.0).validate()
    assert TrainConfig.from_proto(trainer_pb2.TrainingConfig(turn_weight=1.5)).turn_weight == 1.5


def test_target_rows_carry_the_light_label_or_minus_one_and_refuse_unknown_colours():
    labelled = {**_measurement(4, 4, True), "light": "red", "stop_ahead": {"control": "traffic_light", "distance_m": 12.0}}
    rows, _ = data.targets_from_measurements([labelled, {**_measurement(4, 4, True), "light": "none"}, _measurement(4, 4, True)])
    assert data.light_labels(rows).tolist() == [3, 0, -1]  # driving.LIGHT_CLASSES index; -1: the session had no labels
    with pytest.raises(data.DatasetError, match="purple"):
        data.targets_from_measurements([{**_measurement(4, 4, True), "light": "purple"}])


def test_the_light_loss_counts_only_labelled_frames_and_the_waypoint_loss_is_unchanged():
    from services.trainer.train import light_ce, losses

    rows, commands = data.targets_from_measurements([{**_measurement(4, 4, True), "light": "red"}, _measurement(4, 4, True)])
    target = torch.from_numpy(rows)
    logits = torch.tensor([[0.0, 0.0, 0.0, 5.0], [9.0, -9.0, -9.0, -9.0]])  # right on frame 0; frame 1 has no label
    assert light_ce(logits, target).item() == pytest.approx(-torch.log_softmax(logits[0], 0)[3].item())
    assert light_ce(logits, torch.from_numpy(data.targets_from_measurements([_measurement(4, 4, True)])[0]).repeat(2, 1)).item() == 0.0
    torch.manual_seed(0)
    model = build_model(preset("aim-resnet18-tiny-tp").__class__(**{**preset("aim-resnet18-tiny-tp").to_dict(), "light_classes": 4}))
    images = torch.rand(2, 3, 64, 64)
    total, l1, ce, _ = losses(model, images, target[:, 3:4], torch.from_numpy(commands), target, TrainConfig(light_weight=2.0))
    assert total.item() == pytest.approx(l1.item() + 2.0 * ce.item()) and ce.item() > 0


def test_frames_before_a_red_are_drawn_more_often_by_light_models_only(tmp_path):
    from services.trainer.train import sampling_weights

    light = [{**_measurement(4, 4, True), "light": c} for c in ("none", "green", "yellow", "red")]
    light += [{**_measurement(4, 4, True), "light": c, "speed": 0.0} for c in ("green", "red", "none")]  # standing
    rows, commands = data.targets_from_measurements(light)
    (tmp_path / "s").mkdir()
    np.save(tmp_path / "s" / "targets.npy", rows)
    np.save(tmp_path / "s" / "commands.npy", commands)
    np.save(tmp_path / "s" / "frames.npy", np.zeros((7, 8, 8, 3), np.uint8))
    frames = data.CilrsFrames([data.CachedSegment("s", "s", tmp_path / "s", 7)])
    # Red/yellow x3; a car standing at a green x9 (the frames where only the lamp tells it from a red).
    assert sampling_weights(frames, TrainConfig(preset="aim-resnet18-wide-tp-light")).tolist() == [1.0, 1.0, 3.0, 3.0, 9.0, 3.0, 1.0]
    assert sampling_weights(frames, TrainConfig(preset="aim-resnet18-wide-tp")).tolist() == [1.0] * 7
    with pytest.raises(ConfigError, match="red_draw_weight"):
        TrainConfig(red_draw_weight=-1).validate()
    with pytest.raises(ConfigError, match="green_stand_draw_weight"):
        TrainConfig(green_stand_draw_weight=-1).validate()


def test_a_light_policy_file_outputs_the_light_and_the_driver_stops_on_red(tmp_path):
    from scalediffusion.policy import PolicyDriver

    torch.manual_seed(0)
    config = preset("aim-resnet18-tiny-tp").__class__(**{**preset("aim-resnet18-tiny-tp").to_dict(), "light_classes": 4})
    model = build_model(config).eval()
    with torch.no_grad():  # a head that always says red, and waypoints that always go
        model.light[-1].weight.zero_()
        model.light[-1].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 8.0]))
    path = export_onnx(model, tmp_path / "light.onnx")
    assert parity_max_abs_diff(model, path) <= PARITY_TOLERANCE  # both outputs
    policy = OnnxPolicy(path)
    assert policy.output_names == ["waypoints", "light"]
    driver = PolicyDriver(policy)
    controls = driver(np.zeros((64, 64, 3), np.uint8), 8.0, 4, target=(30.0, 0.0))
    assert policy.last_light is not None and policy.last_light[3] > 0.99 and sum(policy.last_light) == pytest.approx(1.0)
    assert controls.light_stop and controls.brake == 1.0 and controls.throttle == 0.0
    ignoring = PolicyDriver(policy, controller_overrides={"light_stop_prob": 0.0})
    assert not ignoring(np.zeros((64, 64, 3), np.uint8), 8.0, 4, target=(30.0, 0.0)).light_stop
