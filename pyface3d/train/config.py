"""Training configuration: a TOML (or JSON) file read into :class:`TrainConfig`.

Example (``configs/train_3d_example.toml``)::

    out_dir = "runs/shufflenet3d"
    model = "shufflenet3d"
    morphable = "ict"            # our shipped model, or a path to a MorphableModel .npz
    loss = "l2"                  # wpdc | vdc | wing | l1 | l2 (thesis: L2 = 0.7 Wing + WPDC)
    epochs = 50
    batch_size = 64
    lr = 1e-3
    [[data]]
    type = "300w_lp"
    root = "/data/300W_LP"

Unknown keys are an error (a typo must not silently fall back to a default).
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, Dict, List, Optional


@dataclasses.dataclass
class TrainConfig:
    out_dir: str
    data: List[Dict[str, Any]]
    model: str = "shufflenet3d"
    model_kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    morphable: str = "ict"
    loss: str = "l2"
    loss_kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    epochs: int = 50
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 5e-4
    optimizer: str = "adamw"  # adamw | sgd
    warmup_epochs: float = 1.0
    workers: int = 2
    seed: int = 0
    amp: bool = True  # only on CUDA
    log_every: int = 20
    checkpoint_every_steps: int = 0  # 0: at the end of each epoch only
    max_steps: int = 0  # stop after this many steps (0: no limit); the schedule is unchanged
    # length of the run (and of its cosine schedule) in optimizer steps instead of epochs
    # (0: epochs x steps per epoch); for mixes of very different sizes trained on one budget
    total_steps: int = 0
    warmup_steps: int = 0  # 0: warmup_epochs x steps per epoch (capped at a tenth of the run)
    val_every_steps: int = 0  # also validate (and keep best.pt) every N steps; 0: per epoch
    # start from these weights (a checkpoint from `pyface3d train` or the shipped default):
    # model weights only, with a fresh optimizer and schedule (fine-tuning / warm restart)
    init: Optional[str] = None
    # a data table like those of `data` (samples with 68 landmarks or params): the landmark
    # NME is logged after every epoch and the best weights kept as best.pt. Never point it
    # at a test set you report on.
    val: Optional[Dict[str, Any]] = None
    tensorboard: bool = True

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"training config: unknown key(s) {unknown}; known keys: "
                             f"{sorted(names)}")
        missing = [k for k in ("out_dir", "data") if k not in d]
        if missing:
            raise ValueError(f"training config: missing required key(s) {missing}")
        if not isinstance(d["data"], list) or not d["data"]:
            raise ValueError("training config: `data` must be a non-empty list of tables "
                             "(each with a `type`)")
        cfg = cls(**d)
        for name in ("epochs", "batch_size"):
            if getattr(cfg, name) < 1:
                raise ValueError(f"training config: `{name}` must be >= 1, got "
                                 f"{getattr(cfg, name)}")
        for name in ("total_steps", "warmup_steps", "val_every_steps", "max_steps"):
            if getattr(cfg, name) < 0:
                raise ValueError(f"training config: `{name}` must be >= 0, got "
                                 f"{getattr(cfg, name)}")
        if not cfg.lr > 0:
            raise ValueError(f"training config: `lr` must be > 0, got {cfg.lr}")
        if cfg.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"training config: `optimizer` must be 'adamw' or 'sgd', got "
                             f"{cfg.optimizer!r}")
        return cfg


def load_config(path) -> TrainConfig:
    """Read a TOML (``.toml``) or JSON (``.json``) training configuration."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config not found: {path}")
    if path.suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            try:
                import tomli as tomllib
            except ImportError as e:
                raise ImportError("reading a .toml config needs Python >= 3.11 or the "
                                  "`tomli` package; or use a .json config") from e

        with open(path, "rb") as f:
            d = tomllib.load(f)
    elif path.suffix == ".json":
        d = json.loads(path.read_text())
    else:
        raise ValueError(f"training config {path}: expected a .toml or .json file")
    return TrainConfig.from_dict(d)
