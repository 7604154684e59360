"""Joining a Ray cluster, or starting a local Ray instance, for a sweep's trials.

Ray is joined at once (giving up after a timeout), before the first trial is asked for, so a
cluster that cannot be joined fails before any progress shows; a Ray started here is stopped
when the sweep ends.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from insitu.errors import ConfigError


def _cannot_join(address: str, why: str) -> ConfigError:
    return ConfigError(
        f"cannot join the Ray cluster at --address {address}: {why} (start one with "
        "`ray start --head`, or leave out --address to start a local one)"
    )


def probe_address(address: str, timeout_s: float) -> None:
    """Fail at once if nothing listens at a ``host:port`` (or ``ray://host:port``) address.

    ray.init would retry such an address for minutes; "auto" and other forms Ray resolves
    itself are left to it (and to the timeout around it).
    """
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as err:
        why = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise _cannot_join(address, f"nothing answers there ({why.lower()})") from None


@contextmanager
def time_limit(seconds: float, on_timeout: Callable[[], Exception]) -> Iterator[None]:
    """Raise ``on_timeout()`` if the body runs longer than ``seconds``.

    A real-time timer interrupts the main thread (where the command line runs ray.init);
    elsewhere, or without SIGALRM, the body runs unbounded.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise on_timeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def import_ray(backend: str) -> Any:
    """The ray module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--backend {backend} needs the ray package: pip install ray") from None
    return ray


@contextmanager
def ray_session(
    address: str | None, num_cpus: int | None, connect_timeout_s: float, backend: str = "ray"
) -> Iterator[Any]:
    """The ray module, joined to the cluster at ``address`` ("auto": the one this machine
    belongs to) or to a local instance started here with ``num_cpus`` CPUs (stopped on exit).
    A Ray this process already joined is used as it is (and left running)."""
    ray = import_ray(backend)
    started_here = not ray.is_initialized()
    if started_here:
        env = {"env_vars": {"OMP_NUM_THREADS": "1"}}  # one trial per CPU: no inner threads
        if address is None:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                runtime_env=env,
                configure_logging=False,
            )
        else:
            probe_address(address, connect_timeout_s)
            late = _cannot_join(address, f"no answer within {connect_timeout_s:g} s")
            try:
                with time_limit(connect_timeout_s, lambda: late):
                    ray.init(address=address, log_to_driver=False, runtime_env=env)
            except ConfigError:  # the time limit's own error
                raise
            except (ConnectionError, ValueError, RuntimeError) as err:
                raise _cannot_join(address, str(err)) from None
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()
