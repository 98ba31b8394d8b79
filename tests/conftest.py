"""Shared fixtures: the tiny generated datasets, made once per test session."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def tiny_imagenet(tmp_path_factory):
    from sd_transfer.datasets import make_tiny_imagenet
    root = tmp_path_factory.mktemp('data') / 'imagenet'
    make_tiny_imagenet(str(root), seed=0)
    return str(root)


@pytest.fixture(scope='session')
def tiny_voc(tmp_path_factory):
    from sd_transfer.datasets import make_tiny_voc
    root = tmp_path_factory.mktemp('data') / 'VOCdevkit'
    make_tiny_voc(str(root), seed=0)
    return str(root)


def tool_env(env=None) -> dict:
    """The environment of a tool run, with this checkout first on the module path: the shared
    venv's editable install points at one checkout, and ``tools/*.py`` (whose own folder comes
    first on the path, not the repo) would import that one's ``sd_transfer``."""
    env = {**os.environ, **(env or {})}
    env['PYTHONPATH'] = os.pathsep.join(p for p in (REPO, env.get('PYTHONPATH')) if p)
    return env


def run_tool(*args, timeout=600, check=True, env=None):
    """Run a repo command the way a user does; return the CompletedProcess (output captured)."""
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=tool_env(env))
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} exited {proc.returncode}\n{proc.stdout[-3000:]}\n'
                             f'{proc.stderr[-3000:]}')
    return proc


class Exploit:
    """Pickled, it runs ``touch MARKER`` when unpickled: what weights-only loading must refuse."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))
