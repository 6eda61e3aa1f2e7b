"""Loaded-model bookkeeping: keep-alive, parallel slots, the pending queue, /api/ps."""

import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from . import envconfig, gofmt

ERR_MAX_QUEUE = "server busy, please try again.  maximum pending requests exceeded"
DEFAULT_NUM_CTX = 4096  # Ollama's default for hosts with less than 23 GiB of VRAM (no GPU here)
KV_BYTES_PER_CTX_TOKEN = 2048  # nominal memory per context token reported in /api/ps


class QueueFull(Exception):
    pass


# Ollama's api.Runner options: a loaded runner is reused only while a request asks for the same
# values (its scheduler's needsReload compares the whole struct); any other value reloads the model.
# The defaults are api.DefaultOptions' (num_gpu -1: as many layers as fit, which needsReload treats
# as "any", like the stand-in).
RUNNER_OPTION_DEFAULTS = {"num_batch": 512, "num_gpu": -1, "main_gpu": 0, "use_mmap": None, "num_thread": 0}


def runner_options(options: Dict[str, Any], num_ctx: int) -> Tuple[Any, ...]:
    values = dict(RUNNER_OPTION_DEFAULTS)
    values.update({k: options[k] for k in RUNNER_OPTION_DEFAULTS if options.get(k) is not None})
    if isinstance(values["num_gpu"], (int, float)) and values["num_gpu"] < 0:
        values["num_gpu"] = -1
    return (num_ctx,) + tuple(values[k] for k in sorted(values))


class Runner:
    def __init__(self, key: str, model: Any, opts: Tuple[Any, ...], slots: int) -> None:
        self.key = key
        self.model = model
        self.opts = opts  # runner_options(): num_ctx first
        self.num_ctx = opts[0]
        self.slots = threading.Semaphore(slots)
        self.refcount = 0
        self.session_ns = 0
        self.expires_at = 0.0  # UNIX time; 0 = not set yet
        self.expires_text = ""


class Scheduler:
    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.runners: Dict[str, Runner] = {}
        self.pending = 0

    def effective_num_ctx(self, model: Any, options: Dict[str, Any]) -> int:
        num_ctx = options.get("num_ctx") or model.options.get("num_ctx") or envconfig.context_length() or DEFAULT_NUM_CTX
        num_ctx = max(int(num_ctx), 4)
        trained = model.trained_context_length()
        return min(num_ctx, trained) if trained else num_ctx

    def acquire(
        self, model: Any, options: Dict[str, Any], keep_alive_ns: Optional[int], load_seconds: float
    ) -> Runner:
        """Get a runner slot for the model, loading it (taking load_seconds) if needed.

        Raises QueueFull when OLLAMA_MAX_QUEUE requests are already waiting.
        """
        key = model.name.full()
        num_ctx = self.effective_num_ctx(model, options)
        opts = runner_options(options, num_ctx)
        with self.lock:
            self._expire_idle()
            if self.pending >= envconfig.max_queue():
                raise QueueFull(ERR_MAX_QUEUE)
            self.pending += 1
        try:
            runner = self._runner_for(key, model, opts, load_seconds)
            runner.slots.acquire()
        finally:
            with self.lock:
                self.pending -= 1
        with self.lock:
            runner.refcount += 1
            runner.session_ns = envconfig.keep_alive_ns() if keep_alive_ns is None else keep_alive_ns
            self._set_expiry(runner)
        return runner

    def _runner_for(self, key: str, model: Any, opts: Tuple[Any, ...], load_seconds: float) -> Runner:
        with self.lock:
            while True:
                runner = self.runners.get(key)
                if runner is not None and runner.opts == opts and runner.model.digest == model.digest:
                    return runner
                if runner is None or runner.refcount == 0:
                    break
                self.lock.wait(0.05)  # a reload must wait for the old runner to go idle
            if runner is not None:
                del self.runners[key]
            self._make_room()
            new = Runner(key, model, opts, envconfig.num_parallel())
            self.runners[key] = new
        if load_seconds > 0:
            time.sleep(load_seconds)
        return new

    def _make_room(self) -> None:
        limit = envconfig.max_loaded_models() or 3
        while len(self.runners) >= limit:
            idle = [r for r in self.runners.values() if r.refcount == 0]
            if not idle:
                return
            victim = min(idle, key=lambda r: r.expires_at)
            del self.runners[victim.key]

    def release(self, runner: Runner) -> None:
        runner.slots.release()
        with self.lock:
            runner.refcount -= 1
            if runner.refcount <= 0:
                if runner.session_ns <= 0:
                    self.runners.pop(runner.key, None)
                else:
                    self._set_expiry(runner)
            self.lock.notify_all()

    def _set_expiry(self, runner: Runner) -> None:
        now = time.time()
        if runner.session_ns >= gofmt.MAX_DURATION:
            runner.expires_at = float("inf")
            runner.expires_text = gofmt.rfc3339_far_future(runner.session_ns)
        else:
            runner.expires_at = now + runner.session_ns / 1e9
            runner.expires_text = gofmt.rfc3339(runner.expires_at)

    def _expire_idle(self) -> None:
        now = time.time()
        for key in [k for k, r in self.runners.items() if r.refcount == 0 and r.expires_at <= now]:
            del self.runners[key]

    def unload(self, model: Any) -> None:
        """expireRunner: unload now if idle, otherwise as soon as the last request ends."""
        with self.lock:
            runner = self.runners.get(model.name.full())
            if runner is None:
                return
            runner.session_ns = 0
            if runner.refcount == 0:
                del self.runners[runner.key]

    def unload_all(self) -> None:
        with self.lock:
            self.runners.clear()

    def ps(self) -> List[Dict[str, Any]]:
        with self.lock:
            self._expire_idle()
            runners = list(self.runners.values())
        out = []
        for r in sorted(runners, key=lambda r: -r.expires_at):
            name = r.model.short_name
            details = dict(r.model.details(), parent_model="")
            out.append(
                {
                    "name": name,
                    "model": name,
                    "size": r.model.size() + r.num_ctx * KV_BYTES_PER_CTX_TOKEN,
                    "digest": r.model.digest,
                    "details": details,
                    "expires_at": r.expires_text,
                    "size_vram": 0,
                    "context_length": r.num_ctx,
                }
            )
        return out
