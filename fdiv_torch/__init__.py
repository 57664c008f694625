"""The torch side of the symbolic core: torch functions and fused loss kernels generated
from :mod:`theory`'s sympy generators (``theory`` itself never imports torch)."""
