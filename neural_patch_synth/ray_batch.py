"""``nps batch --ray``: a batch run's photos spread over Ray actors, on one machine or many.

Only where a photo is computed changes (see :class:`~neural_patch_synth.batch.Executor`): the
driver, ``nps batch`` itself, finds the photos, writes the report and shows progress as without
``--ray``. Each actor holds one :class:`~neural_patch_synth.batch.Worker` (networks loaded once),
takes one photo at a time and writes its output itself, atomically, so every node must see the
photos, masks and output folder at the same paths (a shared file system). A photo whose actor
dies (node lost, out of memory, killed) is retried once on a new actor, then recorded failed.

Importing this module imports ray (the ``ray`` extra).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import ray
import torch
from ray.exceptions import RayActorError

from .batch import (
    LOGGER,
    Job,
    Message,
    Record,
    Setup,
    Started,
    Worker,
    deliver,
    forward_logs,
    work,
    worker_died,
)
from .errors import NPSError

RETRIES = 1
"""How many times a photo whose actor died is tried again on a new actor."""
REACH_TIMEOUT = 10.0
"""Seconds to wait for a cluster ADDRESS to accept a connection before giving up."""


@ray.remote(max_restarts=0, max_task_retries=0)
class _Actor:
    """One worker on the cluster: an engine built once, one photo at a time."""

    def __init__(self, setup: Setup, threads: int, level: int) -> None:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
        except ValueError:  # not the main thread: nothing to ignore
            pass
        torch.set_num_threads(threads)
        self._messages: list[Message] = []
        forward_logs(self._messages.append, level)
        self._worker = Worker(setup)

    def where(self) -> tuple[int, str]:
        """Process id and Ray node id of this actor."""
        return os.getpid(), ray.get_runtime_context().get_node_id()

    def run(self, job: Job) -> list[Message]:
        """Process ``job``: its log messages, then its record (or the engine's failure)."""
        answer = work(self._worker, job)
        messages, self._messages[:] = [*self._messages, answer], []
        return messages


@dataclass
class _Member:
    """One actor of the run and the job it holds."""

    actor: ray.actor.ActorHandle
    pid: int = 0
    node: str = ""
    job: Job | None = None
    deaths: int = 0
    """How many actors died holding ``job``."""


def _why(err: RayActorError) -> str:
    """A short reason for an actor's death, from Ray's long message."""
    text = str(err)
    found = (re.search(r"Worker exit detail: (.+?)\.(?: |$)", text)
             or re.search(r"The actor is dead because (.+?)\.(?: |$)", text))
    lines = text.strip().splitlines()
    return f"Ray actor died: {found[1] if found else lines[0] if lines else 'no reason given'}"


def _check_reachable(address: str) -> None:
    """Refuse a ``HOST:PORT`` or ``ray://HOST:PORT`` that takes no connection (ray.init would
    retry for minutes); ``auto`` and other forms are left to Ray."""
    match = re.fullmatch(r"(?:ray://)?\[?([^\[\]]+?)\]?:(\d+)", address)
    if not match:
        return
    try:
        socket.create_connection((match[1], int(match[2])), timeout=REACH_TIMEOUT).close()
    except OSError as err:
        raise NPSError(f"cannot reach the Ray cluster at {address}: "
                       f"{err.strerror or err}") from None


class RayExecutor:
    """Runs a batch's photos on Ray actors; see the module docstring.

    ``address``: None starts a local Ray instance with all cores; ``auto``, ``HOST:PORT`` or
    ``ray://HOST:PORT`` joins a running cluster. A process already connected to Ray (e.g. a
    script that called ``ray.init``) keeps its connection. ``workers`` actors (default: the
    cluster's CPUs / ``threads``, or its GPUs / ``gpus`` when fewer), each given ``threads``
    CPUs (torch threads) and ``gpus`` GPUs; without GPUs the engine's ``auto`` device is the
    CPU.
    """

    def __init__(self, address: str | None = None, workers: int | None = None,
                 gpus: float = 0.0, threads: int = 1) -> None:
        if workers is not None and workers < 1:
            raise NPSError(f"--ray-workers must be at least 1, got {workers}")
        if not gpus >= 0:
            raise NPSError(f"--gpus-per-worker must be 0 or more, got {gpus}")
        if threads < 1:
            raise NPSError(f"--threads-per-worker must be at least 1, got {threads}")
        self.address, self.workers, self.gpus, self.threads = address, workers, gpus, threads
        self._owned = False
        self._sigterm: Any = None

    def __enter__(self) -> RayExecutor:
        """Connect (or start a local instance) and check the cluster can hold one actor."""
        if self.address:
            _check_reachable(self.address)
        if not ray.is_initialized():
            self._sigterm = signal.getsignal(signal.SIGTERM)  # ray.init replaces it
            try:
                ray.init(address=self.address or "local", include_dashboard=False,
                         log_to_driver=False, logging_level=logging.ERROR)
            except (ConnectionError, ValueError, RuntimeError) as err:
                first = (str(err).strip().splitlines() or ["no reason given"])[0]
                raise NPSError(f"could not start or join Ray at {self.address or 'local'}: "
                               f"{first.split('. ')[0]}") from None
            self._owned = True
        totals = ray.cluster_resources()
        for name, need in (("CPU", self.threads), ("GPU", self.gpus)):
            if need and totals.get(name, 0) < need:
                self.__exit__()
                raise NPSError(f"the Ray cluster has {totals.get(name, 0):g} {name}s, "
                               f"a worker needs {need:g}")
        return self

    def __exit__(self, *exc: object) -> None:
        """Shut down the Ray connection or instance this executor made, if any."""
        if self._owned:
            ray.shutdown()
            self._owned = False
            try:
                signal.signal(signal.SIGTERM, self._sigterm)
            except (ValueError, TypeError):  # not the main thread, or no Python-level handler
                pass

    def _default_workers(self) -> int:
        totals = ray.cluster_resources()
        count = totals.get("CPU", 1) // self.threads
        if self.gpus:
            count = min(count, totals.get("GPU", 0) // self.gpus)
        return max(1, int(count))

    def __call__(self, jobs: list[Job], setup: Setup, started: Started) -> Iterator[Record]:
        """Records of ``jobs``, in the order they finish; ``started`` as each is handed over.

        Actors that die are replaced; an actor that dies before it is ready (nps missing on a
        node, a broken installation) stops the run. Once every photo is done, actors still
        waiting for resources are not waited for. When the run stops, its actors are killed and
        waited for, so none is still writing.
        """
        level = logging.getLogger(LOGGER).getEffectiveLevel()
        if not self.gpus and setup.config.device == "auto":  # none allotted: none taken
            setup = replace(setup, config=replace(setup.config, device="cpu"))
        make = _Actor.options(num_cpus=self.threads, num_gpus=self.gpus)
        todo = deque((job, 0) for job in jobs)
        pending: dict[ray.ObjectRef, _Member] = {}

        def spawn() -> None:
            member = _Member(make.remote(setup, self.threads, level))
            pending[member.actor.where.remote()] = member

        def hand_out(member: _Member) -> None:
            if not todo:
                ray.kill(member.actor)
                return
            member.job, member.deaths = todo.popleft()
            started(member.job, member.pid, member.node)
            pending[member.actor.run.remote(member.job)] = member

        try:
            for _ in range(min(self.workers or self._default_workers(), len(todo))):
                spawn()
            while todo or any(member.job for member in pending.values()):
                [ref], _ = ray.wait(list(pending), num_returns=1)
                member = pending.pop(ref)
                try:
                    answer = ray.get(ref)
                except RayActorError as err:
                    if member.job is None:
                        raise NPSError(f"a Ray worker could not start ({_why(err)})") from None
                    if member.deaths < RETRIES:
                        todo.appendleft((member.job, member.deaths + 1))
                    else:
                        yield worker_died(member.job, f"{_why(err)}; tried {RETRIES + 1} times")
                    if todo:
                        spawn()
                    continue
                if member.job is None:
                    member.pid, member.node = answer
                else:
                    for message in answer:
                        record = deliver(message)
                        if record is not None:
                            yield record
                    member.job = None
                hand_out(member)
        finally:
            for member in pending.values():
                ray.kill(member.actor)
            if pending:
                ray.wait(list(pending), num_returns=len(pending), timeout=30)
