"""Compiled XLA programs kept between runs (JAX), and where the command lines keep them by default.

The command lines read the default before Keras loads, so Keras is imported only to apply a folder.
"""

import os

from keras_qa.runtime.cpu import cpu_fingerprint

# The compilation cache's bound: a MiniLM training step is about 0.4 MB, so a gigabyte holds thousands.
COMPILATION_CACHE_BYTES = 2**30


def use_compilation_cache(directory):
    """On JAX, keep every compiled XLA program of over a second in `directory` and load it from
    there in later processes, so that a run whose model and batch lengths were compiled before
    (each training length's step, each prediction length's) starts without compiling them again.

    JAX's own setting wins: where `JAX_COMPILATION_CACHE_DIR` (or `jax_compilation_cache_dir`) is
    set, that cache is used as it is. The folder is created readable by its owner only, since
    JAX runs the programs it finds there. JAX drops the least recently used programs past
    `COMPILATION_CACHE_BYTES`. Other backends compile nothing that could be kept, and are left alone.

    Args:
        directory: the folder, or None for no cache.

    Returns:
        The folder in use, or None.

    Example:
    >>> use_compilation_cache(None) is None
    True
    """
    from keras_qa.runtime.backend import backend_name

    if backend_name() != "jax":
        return None
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    if jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir
    if directory is None:
        return None
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if jax.config.jax_compilation_cache_max_size == -1:  # JAX's default: no bound
        jax.config.update("jax_compilation_cache_max_size", COMPILATION_CACHE_BYTES)
    jax.config.update("jax_compilation_cache_dir", directory)
    # JAX reads the setting when it first compiles; a process that compiled before reads it again.
    compilation_cache.reset_cache()
    return directory


# Where the command lines keep compiled XLA programs (`default_compilation_cache`), and the words that
# turn that off.
COMPILATION_CACHE_VARIABLE = "KERAS_QA_COMPILATION_CACHE"
NO_CACHE_WORDS = ("none", "0", "")


def default_compilation_cache(environment=None):
    """Where the command lines keep compiled XLA programs: `$KERAS_QA_COMPILATION_CACHE` if set
    (`none` or `0`: nowhere, None), else a folder of `$XDG_CACHE_HOME/keras_qa` (`~/.cache`) named
    after this CPU's model and instruction sets, since a program compiled for one CPU may not run
    on another that shares the home folder.

    Example:
    >>> default_compilation_cache({"KERAS_QA_COMPILATION_CACHE": "none"}) is None
    True
    """
    environment = os.environ if environment is None else environment
    chosen = environment.get(COMPILATION_CACHE_VARIABLE)
    if chosen is not None:
        return None if chosen.strip().lower() in NO_CACHE_WORDS else chosen
    home = environment.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(home, "keras_qa", f"xla-{cpu_fingerprint()}")
