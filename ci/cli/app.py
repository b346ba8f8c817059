"""What every command handler receives: config (loaded on first use), runner, clock, env."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ci.core import config as config_module
from ci.core.clock import Clock, SystemClock
from ci.core.config import Config
from ci.core.gate import GateContext, context
from ci.core.http import HttpClient, Retry, UrllibClient
from ci.core.runner import ProcessRunner, Runner
from ci.gates import registry

Handler = Callable[[argparse.Namespace, "App"], int]


@dataclass(slots=True, kw_only=True)
class App:
    """The outside world as the commands see it; tests build one with fakes."""

    config_file: Path | None = None
    cwd: Path = field(default_factory=Path.cwd)
    runner: Runner = field(default_factory=ProcessRunner)
    clock: Clock = field(default_factory=SystemClock)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    http: HttpClient = field(default_factory=UrllibClient)
    sleep: Callable[[float], None] = time.sleep
    _config: Config | None = None

    @property
    def config(self) -> Config:
        """The validated ``[tool.ci]`` (loaded once; ConfigError when malformed)."""
        if self._config is None:
            loaded = config_module.load(self.config_file, cwd=self.cwd)
            registry.validate(loaded)  # gate tables are checked against the gate registry
            self._config = loaded
        return self._config

    def retry(self) -> Retry:
        """The retry policy for HTTP calls, sleeping with ``sleep``."""
        return Retry(sleep=self.sleep)

    def gate_context(self) -> GateContext:
        """A GateContext for gates run by this process."""
        return context(self.config, self.runner, self.clock, self.env, self.http)
