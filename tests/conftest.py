import os

from hypothesis import HealthCheck, settings

from tconv.frameworks.jax import disable_crashing_pass

# Test modules import jax themselves: turn off the XLA pass that aborts the process on some
# lhs-dilated convolutions (jaxlib 0.10.2) before any of them does, as the JAX adapter would.
disable_crashing_pass()

settings.register_profile(
    "default", deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")
