"""``python -m sd_transfer.check_stack`` tells a user of an existing environment what pyproject.toml
asks for that the environment lacks."""
import subprocess
import sys

from conftest import REPO, tool_env

from sd_transfer.check_stack import requirements, version_problems


def test_this_environment_meets_pyproject():
    """The lower bounds are the versions tested here (setup installs requirements.txt's pins)."""
    required = requirements()
    assert {'torch', 'mmdet', 'mmsegmentation', 'mmcv'} <= {r.split('>')[0] for r in required}
    assert version_problems(required) == []
    assert version_problems(['sd-transfer-no-such-package>=1']) == [
        'missing: sd-transfer-no-such-package (needs sd-transfer-no-such-package>=1)']


def _installed_metadata(folder, name, version):
    """What pip leaves of an installed distribution that importlib.metadata reads."""
    info = folder / f'{name}-{version}.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text(f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n')


def test_old_and_too_new_packages_are_named_one_line_each(tmp_path):
    """Older mmdet and torch and a setuptools without pkg_resources, installed (as metadata)
    ahead of this environment's on the path: the check names each and stops before mmcv."""
    for name, version in (('mmdet', '3.1.0'), ('torch', '2.1.2'), ('setuptools', '82.0.0')):
        _installed_metadata(tmp_path, name, version)
    proc = subprocess.run([sys.executable, '-m', 'sd_transfer.check_stack'], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env=tool_env({'PYTHONPATH': str(tmp_path)}))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [
        'too old: torch 2.1.2 (needs torch>=2.14.1)',
        'too old: mmdet 3.1.0 (needs mmdet>=3.3.0)',
        'too new: setuptools 82.0.0 (needs setuptools<82,>=81.0.0)',
        'install them with `pip install -e .` (mmcv: docs/get_started.md or tools/setup_env.sh)']
    assert 'stack ok' not in proc.stdout
