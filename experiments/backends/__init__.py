"""Execution backends for sweeps: ``local`` (worker processes,
:mod:`experiments.backends.local`) and ``ray`` (:mod:`experiments.backends.ray_backend`,
optional extra ``w2sg[ray]``).  A backend runs phases of opaque jobs with the job function
it is given; it never imports the runner."""
