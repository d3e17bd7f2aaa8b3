"""Driving policies in plain torch: CILRS (Codevilla et al. 2019, "Exploring the Limitations of Behavior Cloning for
Autonomous Driving", the brief's model) and an image-only waypoint model in the style of AIM (Prakash et al. 2021,
the TransFuser line of work). Both take (image, speed, command); CILRS regresses controls, the waypoint model
predicts where the car will be over the next seconds and leaves steering and pedals to PID controllers
(scalediffusion/driving.py), which is what made closed-loop imitation work in CARLA.

CILRS:

A ResNet image encoder (written here: PyPI torchvision does not work with this machine's torch build), a small MLP
for the measured speed, one control branch per navigation command and a speed-prediction head on the image
features. The branch is selected inside the graph with a gather, so the ONNX export takes (image, speed, command)
and returns the controls of the commanded branch: the CARLA agent and the embedded evaluator feed exactly what the
dataset records and need no per-command logic of their own.

Inputs:  image   float32 [N, 3, H, W] RGB in 0..1 (ImageNet normalisation happens inside the model)
         speed   float32 [N, 1] metres per second
         command int64   [N]    RoadOption number (1 LEFT .. 6 CHANGELANERIGHT; 0 / unknown -> LANEFOLLOW)
         target  float32 [N, 2] only models with use_target (presets *-tp): the route's target point in the ego frame
                                (x forward, y right, metres), as the dataset's measurements record it
Outputs: control float32 [N, 3] steer in -1..1, throttle and brake in 0..1
         speed   float32 [N, 1] predicted speed, m/s

Waypoint model (kind "waypoints"): the same ResNet encoder; its features, the speed and the command initialise a
GRU that rolls out K waypoint offsets (each step also sees the command), summed into positions.
Outputs: waypoints float32 [N, K, 2] in the ego frame (x forward, y right, metres), one per 0.5 s (the dataset's
         waypoint spacing)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

# RoadOption (protos/common.proto) -> branch. Lane changes get their own branches, as in the Leaderboard 2.0 CILRS
# baselines; UNSPECIFIED (a session recorded without a route) is treated as following the lane.
COMMAND_TO_BRANCH = {0: 3, 1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5}
BRANCH_NAMES = ("left", "right", "straight", "follow", "change_left", "change_right")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Target points further than this are fed at this distance in their direction: the next junction may be 200 m away
# down a straight road, and only which way it lies matters (TransFuser's route planner keeps them within 50 m).
TARGET_RANGE_M = 50.0


@dataclass(frozen=True)
class ModelConfig:
    """The architecture; stored in every checkpoint and in the ONNX metadata so a model is loadable on its own."""

    kind: str = "cilrs"  # "cilrs" (controls out) or "waypoints" (future ego waypoints out)
    depth: int = 34  # 10, 18 or 34 (BasicBlock ResNets; 10 = one block per stage, for CPUs)
    width: int = 64  # channels of the first stage; 64 is the published ResNet
    input_size: int = 256  # frames are resized to input_size wide ...
    input_height: int = 0  # ... and this high (0 = input_size: a square input)
    speed_scale: float = 12.0  # m/s; speeds are divided by it so inputs and the speed target are O(1)
    branch_hidden: int = 256
    dropout: float = 0.5
    pretrained: str = ""  # not supported: no downloads at run time (kept so configs can say so explicitly)
    waypoints: int = 4  # waypoint model: how many future waypoints (the dataset must have at least as many)
    gru_hidden: int = 64  # waypoint model: the GRU decoder's state
    use_speed: bool = True  # waypoint model: feed the measured speed (off = AIM's image + command only)
    # Take the route's target point (TransFuser's): a 4th input, [N, 2] ego frame metres. The command alone goes
    # back to LANEFOLLOW 10 m past a junction while the car is mid-turn; the target point still says where it leads.
    use_target: bool = False
    # Waypoint model: a traffic-light head on the image features (TransFuser++'s auxiliary classification), this
    # many classes (driving.LIGHT_CLASSES: 4), 0 = none. Trained on the processor's light labels; the controller
    # stops on it (ControllerConfig.light_stop_prob).
    light_classes: int = 0

    @property
    def input_hw(self) -> tuple[int, int]:
        """(height, width) of the image the model takes."""
        return (self.input_height or self.input_size), self.input_size

    def to_dict(self) -> dict:
        return asdict(self)


# Presets: the published model, and smaller ones for CPU runs, tests and benchmarks on this machine.
PRESETS: dict[str, ModelConfig] = {
    "cilrs-resnet34": ModelConfig(depth=34, width=64, input_size=256),
    "cilrs-resnet18-128": ModelConfig(depth=18, width=64, input_size=128),
    "cilrs-resnet18-tiny": ModelConfig(depth=18, width=16, input_size=64, branch_hidden=64, dropout=0.1),
    # Sized for two CPU cores at 128x128 (bench/trainer_bench.py): the data-value experiment's pair.
    "cilrs-resnet18-small": ModelConfig(depth=18, width=16, input_size=128, branch_hidden=128, dropout=0.2),
    # Without the measured speed, as AIM: with it, a policy learns "standing still stays still" from the waits at red
    # lights and never starts again (the inertia problem, Codevilla et al. 2019); measured in the value experiment.
    "aim-resnet18-small": ModelConfig(kind="waypoints", depth=18, width=16, input_size=128, branch_hidden=128,
                                      dropout=0.0, use_speed=False),
    "aim-resnet18-small-speed": ModelConfig(kind="waypoints", depth=18, width=16, input_size=128, branch_hidden=128, dropout=0.0),
    # The dataset frame as the processor writes it (256x144 for the game's 16:9 cameras), aspect kept: at 128x128 a
    # 640x360 frame is squashed 5x across and a traffic light's lamp 45 m ahead is gone (services/trainer/results/value).
    "aim-resnet18-wide": ModelConfig(kind="waypoints", depth=18, width=16, input_size=256, input_height=144,
                                     branch_hidden=128, dropout=0.0, use_speed=False),
    "cilrs-resnet18-wide": ModelConfig(depth=18, width=16, input_size=256, input_height=144, branch_hidden=128, dropout=0.2),
    # The wide pair with the route's target point as a 4th input (the game and the bots record it per tick).
    "aim-resnet18-wide-tp": ModelConfig(kind="waypoints", depth=18, width=16, input_size=256, input_height=144,
                                        branch_hidden=128, dropout=0.0, use_speed=False, use_target=True),
    # ... and a traffic-light head: the waypoints alone ran reds at full speed.
    "aim-resnet18-wide-tp-light": ModelConfig(kind="waypoints", depth=18, width=16, input_size=256, input_height=144,
                                              branch_hidden=128, dropout=0.0, use_speed=False, use_target=True,
                                              light_classes=4),
    "cilrs-resnet18-wide-tp": ModelConfig(depth=18, width=16, input_size=256, input_height=144, branch_hidden=128,
                                          dropout=0.2, use_target=True),
    "aim-resnet34": ModelConfig(kind="waypoints", depth=34, width=64, input_size=256, branch_hidden=256, dropout=0.0),
    "aim-resnet18-tiny": ModelConfig(kind="waypoints", depth=18, width=16, input_size=64, branch_hidden=64, dropout=0.0),
    "aim-resnet18-tiny-tp": ModelConfig(kind="waypoints", depth=18, width=16, input_size=64, branch_hidden=64, dropout=0.0,
                                        use_target=True),
}
DEFAULT_PRESET = "cilrs-resnet34"

_BLOCKS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def preset(name: str) -> ModelConfig:
    """The named preset; ValueError listing the known ones otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))


class ResNetEncoder(nn.Module):
    """ResNet-18/34 without the classifier: image -> feature vector of 8 * width channels."""

    def __init__(self, depth: int, width: int) -> None:
        super().__init__()
        if depth not in _BLOCKS:
            raise ValueError(f"ResNet depth must be one of {sorted(_BLOCKS)}, got {depth}")
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        )
        stages: list[nn.Sequential] = []
        blocks_built: list[BasicBlock] = []
        in_ch = width
        for i, blocks in enumerate(_BLOCKS[depth]):
            out_ch = width * 2**i
            layers = [BasicBlock(in_ch, out_ch, 1 if i == 0 else 2)]
            layers += [BasicBlock(out_ch, out_ch, 1) for _ in range(blocks - 1)]
            blocks_built += layers
            stages.append(nn.Sequential(*layers))
            in_ch = out_ch
        self.stages = nn.Sequential(*stages)
        self.out_features = in_ch
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for block in blocks_built:  # zero-init the last BN of each residual branch: each block starts as the identity
            nn.init.zeros_(block.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.stages(self.stem(x)), 1), 1)


def _mlp(sizes: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers += [nn.ReLU(inplace=True), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


def _register_input_buffers(model: nn.Module) -> None:
    """ImageNet normalisation and the command -> branch lookup, as non-persistent buffers (they follow .to(device)
    and are baked into the ONNX graph, but are not weights)."""
    model.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
    model.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
    lut = torch.full((16,), COMMAND_TO_BRANCH[4], dtype=torch.long)
    for command, branch in COMMAND_TO_BRANCH.items():
        lut[command] = branch
    model.register_buffer("command_lut", lut, persistent=False)


def target_input(target: torch.Tensor) -> torch.Tensor:
    """[N, 2] ego-frame metres -> the model's target features: within TARGET_RANGE_M as is, further ones pulled in
    along their direction, then divided by TARGET_RANGE_M (so O(1))."""
    norm = target.norm(dim=1, keepdim=True).clamp(min=1e-6)
    return target * (TARGET_RANGE_M / norm).clamp(max=1.0) / TARGET_RANGE_M


def _require_target(config: ModelConfig, target: torch.Tensor | None) -> torch.Tensor | None:
    if config.use_target and target is None:
        raise ValueError("this model takes the route's target point: pass target [N, 2]")
    return target if config.use_target else None


@dataclass
class CilrsOutput:
    control: torch.Tensor  # [N, 3] of the commanded branch
    speed: torch.Tensor  # [N, 1] m/s
    all_branches: torch.Tensor | None = field(repr=False, default=None)  # [N, B, 3] raw, before activations


class _InputBuffers:
    """The buffers _register_input_buffers adds (and WaypointNet's one_hot), typed for the checker."""

    mean: torch.Tensor
    std: torch.Tensor
    command_lut: torch.Tensor


class Cilrs(_InputBuffers, nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ResNetEncoder(config.depth, config.width)
        feat = self.encoder.out_features
        self.speed_in = _mlp([1, 128, 128], 0.0)
        self.target_in = _mlp([2, 64, 64], 0.0) if config.use_target else None
        self.join = nn.Sequential(nn.Linear(feat + 128 + (64 if config.use_target else 0), 512), nn.ReLU(inplace=True))
        h = config.branch_hidden
        self.branches = nn.ModuleList([_mlp([512, h, h, 3], config.dropout) for _ in BRANCH_NAMES])
        self.speed_head = _mlp([feat, h, h, 1], config.dropout)
        _register_input_buffers(self)

    def forward_all(self, image: torch.Tensor, speed: torch.Tensor, command: torch.Tensor,
                    target: torch.Tensor | None = None) -> CilrsOutput:
        target = _require_target(self.config, target)
        features = self.encoder((image - self.mean) / self.std)
        parts = [features, self.speed_in(speed / self.config.speed_scale)]
        if target is not None and self.target_in is not None:
            parts.append(self.target_in(target_input(target)))
        joined = self.join(torch.cat(parts, dim=1))
        raw = torch.stack([branch(joined) for branch in self.branches], dim=1)  # [N, B, 3]
        branch = self.command_lut[command.clamp(0, self.command_lut.numel() - 1)]
        index = branch.view(-1, 1, 1).expand(-1, 1, 3)
        chosen = torch.gather(raw, 1, index).squeeze(1)
        control = torch.cat([torch.tanh(chosen[:, :1]), torch.sigmoid(chosen[:, 1:])], dim=1)
        return CilrsOutput(control=control, speed=self.speed_head(features) * self.config.speed_scale, all_branches=raw)

    def forward(self, image: torch.Tensor, speed: torch.Tensor, command: torch.Tensor,
                target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.forward_all(image, speed, command, target)
        return out.control, out.speed


class WaypointNet(_InputBuffers, nn.Module):
    """AIM-style: ResNet features + speed + command -> GRU rolled out K steps -> K waypoints (cumulative offsets)."""

    one_hot: torch.Tensor

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ResNetEncoder(config.depth, config.width)
        feat = self.encoder.out_features
        commands = len(BRANCH_NAMES)
        self.speed_in = _mlp([1, 64, 64], 0.0)
        speed_feat = 64 if config.use_speed else 0
        target_feat = 2 if config.use_target else 0
        self.join = nn.Sequential(nn.Linear(feat + speed_feat + commands + target_feat, config.branch_hidden),
                                  nn.ReLU(inplace=True), nn.Linear(config.branch_hidden, config.gru_hidden))
        # Each GRU step sees its last waypoint, the command and (as TransFuser's decoder) the target point.
        self.gru = nn.GRUCell(2 + commands + target_feat, config.gru_hidden)
        self.delta = nn.Linear(config.gru_hidden, 2)
        self.light = _mlp([feat, config.branch_hidden, config.light_classes], 0.0) if config.light_classes else None
        _register_input_buffers(self)
        self.register_buffer("one_hot", torch.eye(commands), persistent=False)

    def forward(self, image: torch.Tensor, speed: torch.Tensor, command: torch.Tensor,
                target: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Waypoints (N, K, 2); with a light head, (waypoints, light logits (N, light_classes))."""
        target = _require_target(self.config, target)
        features = self.encoder((image - self.mean) / self.std)  # (N, feat)
        onehot = self.one_hot[self.command_lut[command.clamp(0, self.command_lut.numel() - 1)]]  # (N, commands)
        step_in = [onehot] if target is None else [onehot, target_input(target)]
        parts = [features, *step_in]
        if self.config.use_speed:
            parts.insert(1, self.speed_in(speed / self.config.speed_scale))
        h = self.join(torch.cat(parts, dim=1))  # (N, gru_hidden)
        x = torch.zeros(image.shape[0], 2, dtype=image.dtype, device=image.device)
        out = []
        for _ in range(self.config.waypoints):
            h = self.gru(torch.cat([x, *step_in], dim=1), h)
            x = x + self.delta(h)
            out.append(x)
        waypoints = torch.stack(out, dim=1)  # (N, K, 2) ego frame, metres
        return waypoints if self.light is None else (waypoints, self.light(features))


def model_config(model: nn.Module) -> ModelConfig:
    """The ModelConfig of a model built here, also through a DistributedDataParallel wrapper (its .module)."""
    core = getattr(model, "module", model)
    config = getattr(core, "config", None)
    if not isinstance(config, ModelConfig):
        raise TypeError(f"{type(core).__name__} is not a model built by build_model (no ModelConfig)")
    return config


def build_model(config: ModelConfig) -> nn.Module:
    if config.pretrained:
        raise ValueError("pretrained weights are not supported: nothing is downloaded at run time; train from scratch")
    if config.kind == "waypoints":
        return WaypointNet(config)
    if config.kind != "cilrs":
        raise ValueError(f"unknown model kind {config.kind!r}: 'cilrs' or 'waypoints'")
    return Cilrs(config)
