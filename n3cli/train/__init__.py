"""`n3 train`: configs, tasks, the loop, checkpoints, export.

Imports only torch, numpy, pillow, safetensors, rich and the project's models/data, so it
runs on a bare GPU machine (no platformdirs/pooch/rawpy needed).
"""

from n3cli.train.config import TrainConfig, load_config
from n3cli.train.loop import TrainOptions, TrainResult, TrainingInterrupted, train
from n3cli.train.tasks import BlindGaussTask, GaussTask, Task, make_task

__all__ = ["TrainConfig", "load_config", "TrainOptions", "TrainResult", "TrainingInterrupted",
           "train", "Task", "GaussTask", "BlindGaussTask", "make_task"]
